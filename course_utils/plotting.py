"""What the notebooks show: image grids, titled panels of grids, the noise-schedule plot, the loss
plot, and a helper's source code.

No torchvision: a grid is a reshape, and PIL does the rest.
"""
from __future__ import annotations

import inspect
import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def value_range_of(images) -> tuple[float, float]:
    """Which of the unit's two conventions a batch (or a list of batches) is in: (-1, 1) when any
    value is below -0.5, else (0, 1). The one rule of the package (grids, widgets, their checks).

    Not "any negative value": the from-scratch BasicUNet ends in a SiLU, so its [0, 1]
    predictions dip to -0.28, while [-1, 1] images and sampling runs go far below -0.5.
    """
    batches = [images] if isinstance(images, torch.Tensor) else list(images)
    low = min(float(b.min()) for b in batches)
    return (-1.0, 1.0) if low < -0.5 else (0.0, 1.0)


def to_unit_range(x: torch.Tensor, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Map images to [0, 1]; ``value_range`` None tells the range with ``value_range_of``."""
    x = x.detach().float().cpu()
    if value_range is None:
        value_range = value_range_of(x)
    low, high = value_range
    return ((x - low) / (high - low)).clamp(0, 1)


def make_grid(x: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile a (N, C, H, W) batch into one (C, H', W') image, ``nrow`` images per row."""
    if x.ndim == 3:
        x = x.unsqueeze(1)
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, dtype=x.dtype)
    for i in range(n):
        r, k = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """A (C, H, W) image in [0, 1] to a PIL image (L for one channel, RGB for three)."""
    array = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(array[0], "L") if array.shape[0] == 1 else Image.fromarray(array.transpose(1, 2, 0), "RGB")


def show_images(x: torch.Tensor, nrow: int = 8, value_range: tuple[float, float] | None = None,
                scale: int = 1) -> Image.Image:
    """A batch of images (in [-1, 1] or [0, 1]) as one PIL grid image, ``scale`` times enlarged.

    Used wherever a notebook shows a batch: data, noisy images, samples (both notebooks).
    """
    grid = tensor_to_pil(make_grid(to_unit_range(x, value_range), nrow=nrow))
    if scale != 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    return grid


def image_grid(images: Sequence[Image.Image], rows: int | None = None, cols: int | None = None,
               size: int | None = None) -> Image.Image:
    """Paste PIL images (a pipeline's output) into a ``rows`` x ``cols`` grid, each ``size`` px.

    Used in "Introduction to Diffusers" (sneak peek and generating).
    """
    if not images:
        raise ValueError("image_grid needs at least one image")
    if cols is None:
        cols = math.ceil(len(images) / rows) if rows else min(len(images), 8)
    rows = rows or math.ceil(len(images) / cols)
    w, h = (size, size) if size else images[0].size
    grid = Image.new("RGB", (cols * w, rows * h), "white")
    for i, img in enumerate(images[: rows * cols]):
        grid.paste(img.convert("RGB").resize((w, h)), ((i % cols) * w, (i // cols) * h))
    return grid


def schedule_curves(alphas_cumprod: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t): how much signal and noise x_t holds (DDPM eq. 4)."""
    a = alphas_cumprod.detach().double().cpu().numpy()
    return np.sqrt(a), np.sqrt(1 - a)


def plot_schedule(scheduler_or_alphas_cumprod, ax=None, title: str | None = None):
    """Plot sqrt(alpha_bar_t) (signal) and sqrt(1 - alpha_bar_t) (noise) against t; returns the axes.

    Takes a diffusers scheduler or its ``alphas_cumprod``. Used in "Introduction to Diffusers"
    (section "The scheduler"), the DDPM part of "Diffusion Models from Scratch" and the widgets.
    """
    import matplotlib.pyplot as plt

    alphas = getattr(scheduler_or_alphas_cumprod, "alphas_cumprod", scheduler_or_alphas_cumprod)
    signal, noise = schedule_curves(alphas)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(signal, label=r"$\sqrt{\bar{\alpha}_t}$ (signal)")
    ax.plot(noise, label=r"$\sqrt{1-\bar{\alpha}_t}$ (noise)")
    ax.set_xlabel("timestep t")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="center right")
    if title:
        ax.set_title(title)
    return ax


def plot_losses(losses: Sequence[float], smooth: int = 0, title: str = "Training loss"):
    """The loss curve twice: linear scale (left) and log scale (right); returns the figure.

    ``smooth`` > 1 overlays a running mean over that many steps. Used after the training loops
    of both notebooks.
    """
    import matplotlib.pyplot as plt

    losses = np.asarray(list(losses), dtype=float)
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.5))
    for ax, scale in zip(axs, ("linear", "log")):
        ax.plot(losses, alpha=0.4 if smooth > 1 else 1.0, label="per step")
        if smooth > 1 and len(losses) >= smooth:
            running = np.convolve(losses, np.ones(smooth) / smooth, mode="valid")
            ax.plot(np.arange(smooth - 1, len(losses)), running, label=f"mean of {smooth}")
            ax.legend()
        ax.set_yscale(scale)
        ax.set_xlabel("step")
        ax.set_title(f"{title} ({scale})")
    fig.tight_layout()
    return fig


def plot_panels(panels: dict, ncols: int = 1, value_range: tuple[float, float] | None = (0.0, 1.0), nrow: int = 8,
                cmap: str = "gray", panel_width: float = 12.0):
    """Titled image grids, one per entry of ``panels`` (title -> batch), ``ncols`` per row.

    A value may also be ``(batch, value_range)`` to override ``value_range`` for that panel.
    ``value_range`` (low, high) maps low to black and high to white with ``cmap="gray"``
    (values outside are clipped by the colour map); None lets each panel span its own range.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("plot_panels needs at least one panel")
    items = []
    for title, value in panels.items():
        batch, vr = value if isinstance(value, tuple) else (value, value_range)
        batch = batch.detach().float().cpu()
        if batch.ndim == 3:
            batch = batch.unsqueeze(1)
        items.append((title, make_grid(batch, nrow=nrow, pad_value=float("nan"))[0], vr))
    nrows = -(-len(items) // ncols)
    height, width = items[0][1].shape
    cell_w = panel_width / ncols
    fig, axs = plt.subplots(nrows, ncols, figsize=(panel_width, nrows * (cell_w * height / width + 0.45)),
                            squeeze=False)
    for ax in axs.flat:
        ax.axis("off")
    for ax, (title, grid, vr) in zip(axs.flat, items):
        low, high = (None, None) if vr is None else vr
        if vr is None:
            low, high = float(torch.nan_to_num(grid, nan=float("inf")).min()), float(
                torch.nan_to_num(grid, nan=float("-inf")).max())
        ax.imshow(grid.numpy(), cmap=cmap, vmin=low, vmax=high)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_source(obj) -> None:
    """Display the source of a function or class with syntax highlighting (plain text outside
    Jupyter). Used in "Diffusion Models from Scratch" to show ``BasicUNet`` and ``corrupt``."""
    code = inspect.getsource(obj)
    try:
        from IPython import get_ipython
        from IPython.display import Code, display

        if get_ipython() is not None:
            display(Code(code, language="python"))
            return
    except ImportError:
        pass
    print(code)
