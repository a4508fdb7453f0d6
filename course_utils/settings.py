"""Run settings shared by both notebooks: the device, quick mode, seeding, and the environment.

Used in the set-up section of every notebook and by the training script. The package reads
environment variables here only.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` says yes (``1``, ``true``, ``yes`` or ``on``,
    in any case). The one reader of boolean flags such as ``COURSE_QUICK``, ``HF_HUB_OFFLINE`` and
    ``ACCELERATE_USE_CPU``, so every flag accepts the same spellings."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def cache_dir() -> Path:
    """Where preprocessed tensors are cached: ``$COURSE_CACHE``, else ``$XDG_CACHE_HOME/diffusion-course``,
    else ``~/.cache/diffusion-course``. An empty or relative value is ignored, as the XDG convention
    says, so the cache never lands in whatever folder a notebook happens to run in."""
    course = os.environ.get("COURSE_CACHE", "").strip()
    if course:
        return Path(course).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return root / "diffusion-course"


def hub_endpoint() -> str:
    """The Hub address: ``HF_ENDPOINT`` (a mirror, e.g. in mainland China) or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co").rstrip("/")


def is_quick() -> bool:
    """True when ``COURSE_QUICK`` is set: every notebook runs on a reduced step count.

    Used by both notebooks (set-up) and the training script. Quick mode changes sizes only,
    never which code runs, so CI and a curious reader exercise every cell in minutes.
    """
    return env_flag("COURSE_QUICK")


_MISSING = object()


def pick(full=_MISSING, quick=_MISSING, *, gpu=_MISSING, cpu=_MISSING):
    """Choose a size for this run: ``quick`` in quick mode, else ``gpu`` on a CUDA GPU and
    ``cpu`` elsewhere; ``full`` stands for both when they are the same.

    Used wherever a notebook chooses a size, in both notebooks:
    ``epochs = pick(gpu=30, cpu=8, quick=1)`` or ``batch = pick(full=64, quick=16)``.
    """
    if quick is _MISSING:
        raise TypeError("pick() needs quick=: the size for quick mode (COURSE_QUICK=1)")
    if full is not _MISSING and (gpu is not _MISSING or cpu is not _MISSING):
        raise TypeError("pick() takes either full= or gpu= and cpu=, not both")
    if full is _MISSING and (gpu is _MISSING or cpu is _MISSING):
        raise TypeError("pick() needs full= (one size for every device) or both gpu= and cpu=")
    if is_quick():
        return quick
    if full is not _MISSING:
        return full
    return gpu if torch.cuda.is_available() else cpu


def get_device() -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    Used in the set-up section of both notebooks, and by the training script to choose its
    default model size.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (every device) so a run can be repeated exactly.

    Used in the set-up section of both notebooks (the training script seeds through Accelerate's
    ``set_seed``). Returns a CPU ``torch.Generator`` seeded the same way, for code that wants its
    own stream.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be a whole number from 0 to {2 ** 32 - 1} (NumPy's range), not {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    return torch.Generator().manual_seed(seed)


def exercise_language() -> str:
    """The language the exercise checks speak: ``"en"``, ``"zh"`` or ``"both"``.

    ``COURSE_LANG`` (``en`` or ``zh``) decides when set. Otherwise the notebook's file name, where
    the front-end gives it to the kernel (Jupyter Server sets ``JPY_SESSION_NAME``): a ``_CN``
    notebook speaks Chinese, any other English. Where nothing says (Colab, nbclient), both.
    """
    chosen = os.environ.get("COURSE_LANG", "").strip().lower()
    if chosen in ("en", "zh"):
        return chosen
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    if notebook.endswith(".ipynb"):
        return "zh" if notebook.endswith("_CN.ipynb") else "en"
    return "both"
