"""Run settings shared by both notebooks: the device, quick mode and seeding.

Used in the set-up section of every notebook and by the training script.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}


def is_quick() -> bool:
    """True when ``COURSE_QUICK`` is set: every notebook runs on a reduced step count.

    Used by both notebooks (set-up) and the training script. Quick mode changes sizes only,
    never which code runs, so CI and a curious reader exercise every cell in minutes.
    """
    return os.environ.get("COURSE_QUICK", "").strip().lower() in _TRUE


def pick(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise.

    Used wherever a notebook chooses a size: ``epochs = pick(full=30, quick=1)``.
    """
    return quick if is_quick() else full


def get_device() -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    Used in the set-up section of both notebooks.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (every device) so a run can be repeated exactly.

    Used in the set-up section of both notebooks and by the training script. Returns a
    CPU ``torch.Generator`` seeded the same way, for code that wants its own stream.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    return torch.Generator().manual_seed(seed)
