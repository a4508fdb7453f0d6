"""The linear corruption of "Diffusion Models from Scratch" (section "The corruption process")."""
from __future__ import annotations

import torch


def corrupt(x: torch.Tensor, amount: torch.Tensor | float) -> torch.Tensor:
    """Mix each image with uniform noise: ``x * (1 - amount) + noise * amount``.

    ``amount`` is one number per image in [0, 1] (0 keeps the image, 1 is pure noise).
    The noise is uniform in [0, 1), like the [0, 1] MNIST images it replaces, so every
    corrupted image stays in [0, 1].
    """
    amount = torch.as_tensor(amount, dtype=x.dtype, device=x.device)
    if amount.ndim == 0:
        amount = amount.expand(x.shape[0])
    if amount.shape != (x.shape[0],):
        raise ValueError(f"amount must hold one value per image ({x.shape[0]}), got shape {tuple(amount.shape)}")
    noise = torch.rand_like(x)
    amount = amount.view(-1, *([1] * (x.ndim - 1)))  # broadcast over channels and pixels
    return x * (1 - amount) + noise * amount
