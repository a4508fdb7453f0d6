"""Turn images of any mode, size and source into one tensor, once, and cache it.

Used by the data loaders (section "Data" of both notebooks) and by the training script. The
original course decoded and resized every full-size JPEG on every training step; here each
image is decoded once (JPEGs at reduced scale), stored as a tensor and cached on disk.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from .settings import cache_dir
from .user_warnings import warn_user

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
CACHE_VERSION = 2  # 2: EXIF orientation applied, 16-bit images scaled, not stretched
MAX_SIZE = 1024  # pixels a side: 1,000 images at 1024 px are already 12 GB of float32


def check_size_and_crop(size, crop: str) -> None:
    """``size`` a whole number of pixels from 1 to ``MAX_SIZE``, ``crop`` a known way: checked before any image is read."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be a whole number of pixels from 1 to {MAX_SIZE}, not {size!r}")
    if crop not in ("squash", "center"):
        raise ValueError(f"crop must be 'squash' or 'center', not {crop!r}")


def check_limit(limit) -> None:
    """``limit`` is None (every image) or a whole number of at least 1."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a whole number of at least 1, or None for every image, not {limit!r}")


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode (L, RGB, RGBA, P, CMYK, I;16, ...) to RGB or L.

    Transparent pixels are laid on white, as a photo of a specimen on paper would be.
    """
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # A fixed scale, never a per-image stretch (which would turn a flat grey black and a dark
        # image bright): 16-bit (and 32-bit integer) images span 0..65535, float images 0..1.
        scale = 255.0 if img.mode == "F" else 255.0 / 65535.0
        array = np.clip(np.asarray(img, dtype=np.float64) * scale, 0, 255)
        img = Image.fromarray(np.round(array).astype(np.uint8), "L")
    return img.convert("RGB" if channels == 3 else "L")


def resize_image(img: Image.Image, size: int, crop: str = "squash") -> Image.Image:
    """Resize to ``size`` x ``size``: ``"squash"`` (the unit's ``Resize((size, size))``) or
    ``"center"`` (shorter side to ``size``, then a centre crop, keeping proportions)."""
    if crop == "center":
        return ImageOps.fit(img, (size, size), Image.Resampling.BICUBIC)
    if crop == "squash":
        return img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    raise ValueError(f"crop must be 'squash' or 'center', not {crop!r}")


ORIENTATION = 0x0112  # the EXIF tag


def image_to_array(img: Image.Image, size: int, channels: int = 3, crop: str = "squash") -> np.ndarray:
    """One PIL image to a uint8 array of shape (channels, size, size)."""
    if img.format == "JPEG":
        img.draft("RGB" if channels == 3 else "L", (size, size))  # decode at 1/2..1/8 scale: much faster
    if img.getexif().get(ORIENTATION, 1) != 1:  # a phone photo stored sideways: turn it as a viewer does
        img = ImageOps.exif_transpose(img)
    img = resize_image(to_mode(img, channels), size, crop)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def to_range(images_uint8: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """uint8 images to float32 in ``value_range`` ([-1, 1] for diffusers models, [0, 1] for BasicUNet)."""
    low, high = value_range
    return images_uint8.float().div_(255).mul_(high - low).add_(low)


def open_image(item) -> Image.Image:
    """A PIL image from any item ``stack_images`` accepts (see there); opened lazily where possible."""
    if isinstance(item, Image.Image):
        return item
    if callable(item):
        return item()
    if isinstance(item, dict):  # a datasets image stored undecoded: bytes, or a path to a local file
        return Image.open(io.BytesIO(item["bytes"])) if item.get("bytes") is not None else Image.open(item["path"])
    return Image.open(item)


def stack_images(images: Iterable, size: int, channels: int = 3, crop: str = "squash",
                 workers: int | None = None) -> torch.Tensor:
    """Preprocess images in parallel to a uint8 (N, C, H, W) tensor.

    Each item is a PIL image, a callable that returns one, a file path, or an undecoded
    ``datasets`` image (``{"bytes": ..., "path": ...}``, from ``Image(decode=False)``). Undecoded
    items are best: each JPEG is then decoded in a worker thread at reduced scale (draft mode),
    about 3x faster than a full-size decode. PIL releases the GIL while decoding and resizing,
    so threads use every core.
    """
    def one(item):
        if isinstance(item, Image.Image):  # the caller's image: use it, leave it open
            return image_to_array(item, size, channels, crop)
        with open_image(item) as img:  # opened here: closed here
            return image_to_array(img, size, channels, crop)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        arrays = list(pool.map(one, images))
    if not arrays:
        return torch.empty(0, channels, size, size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), chosen by extension; hidden files skipped.

    Symlinked sub-folders are followed (a data set is often assembled from links), each real
    folder once, so a link loop ends.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"Image folder {str(folder)!r} does not exist: check the path you passed.")
    found, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(p for p in found if p.is_file())


def load_folder(folder: str | os.PathLike, size: int, channels: int = 3, crop: str = "squash",
                limit: int | None = None) -> torch.Tensor:
    """Read every readable image of a user's folder as a uint8 tensor.

    A corrupt or unreadable file is reported by name and skipped, so one bad download never
    stops an epoch half-way. A folder without a single readable image is an error.
    """
    files = list_image_files(folder)[:limit]

    def read(path: Path):
        try:
            with Image.open(path) as img:  # no img.load() here: it would decode at full size, defeating draft
                return image_to_array(img, size, channels, crop)
        except Exception as error:  # PIL raises many types for broken files
            return f"{path} ({type(error).__name__}: {error})"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(read, files))
    good = [r for r in results if not isinstance(r, str)]
    bad = [r for r in results if isinstance(r, str)]
    if bad:
        warn_user(f"Skipped {len(bad)} unreadable image file(s): " + "; ".join(bad))
    if not good:
        raise ValueError(f"No readable images in {str(folder)!r}: put .jpg or .png files there "
                         f"(found {len(files)} image file(s), all unreadable)." if files else
                         f"No images in {str(folder)!r}: put .jpg or .png files there (searched "
                         f"sub-folders too; extensions {', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return torch.from_numpy(np.stack(good))


def folder_fingerprint(files: Sequence[Path]) -> str:
    """Changes when a file is added, removed or modified: part of a folder's cache key."""
    digest = hashlib.sha1()
    for path in files:
        stat = path.stat()
        # os.fsencode: a file name that is not valid UTF-8 (bytes from another system) is fine too.
        digest.update(os.fsencode(path) + f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cached(key: dict, build: Callable[[], dict], valid: Callable[[dict], bool] = lambda tensors: True) -> dict:
    """The tensors stored under ``key``, or built by ``build`` and stored.

    The file is written to a temporary name and renamed, so an interrupted run never leaves a
    half-written cache behind. A cache file that cannot be read, or whose tensors ``valid``
    rejects (another shape or type: a file damaged or replaced), is rebuilt. A failed write (a
    full disk, a read-only home) is a warning, and its partial file is deleted at once.
    """
    name = hashlib.sha1(json.dumps({**key, "v": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir() / f"{name}.pt"
    if path.is_file():
        try:
            tensors = torch.load(path, weights_only=True)
            if isinstance(tensors, dict) and valid(tensors):
                return tensors
        except Exception:
            pass  # corrupt or from an older torch: rebuild below
    tensors = build()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tensors, tmp)
        os.replace(tmp, path)
    except Exception as error:  # torch reports a full disk as a RuntimeError, not an OSError
        warn_user(f"Could not cache preprocessed images in {path.parent} ({str(error).splitlines()[0][:200]}); "
                  "free some space or set COURSE_CACHE to a writable folder to skip preprocessing next time.")
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return tensors
