"""Figures of "Diffusion Models from Scratch": titled rows of image grids and the BasicUNet diagram.

``plot_panels`` draws the side-by-side comparisons of the sections "The corruption process",
"Training the network", "Sampling" and "Comparison with DDPM"; ``draw_basic_unet`` the diagram
of section "The model", read from a ``BasicUNet`` instance (its convolutions' channel counts)
so that the picture always matches the model the notebook trains.
"""
from __future__ import annotations

import torch

from .plotting import make_grid


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


def basic_unet_layout(model=None, image_size: int = 28) -> list[dict]:
    """The layers of a BasicUNet in forward order: name, path, channels in/out, spatial size.

    Sizes follow ``BasicUNet.forward``: max-pooling after the first two down layers halves the
    size, upsampling before the last two up layers doubles it.
    """
    from .models import BasicUNet

    model = BasicUNet() if model is None else model
    layers, size = [], image_size
    for i, conv in enumerate(model.down_layers):
        layers.append(dict(name=f"down {i + 1}", path="down", c_in=conv.in_channels, c_out=conv.out_channels,
                           size=size, skip=i < len(model.down_layers) - 1))
        if i < len(model.down_layers) - 1:
            size //= 2
    for i, conv in enumerate(model.up_layers):
        if i > 0:
            size *= 2
        layers.append(dict(name=f"up {i + 1}", path="up", c_in=conv.in_channels, c_out=conv.out_channels,
                           size=size, skip=i > 0))
    return layers


def draw_basic_unet(model=None, image_size: int = 28, ax=None):
    """Draw BasicUNet as a "U": the down path on the left, the up path on the right, the skip
    connections across. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    layers = basic_unet_layout(model, image_size)
    down = [layer for layer in layers if layer["path"] == "down"]
    up = [layer for layer in layers if layer["path"] == "up"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 4.3))
    else:
        fig = ax.figure
    ax.set_xlim(0, 10)
    ax.set_ylim(0.4, 4.85)
    ax.axis("off")
    w, h = 2.1, 0.62
    levels = {image_size // 2 ** k: 3.6 - 1.35 * k for k in range(len(down))}

    def box(x, y, text, color):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.03",
                                    facecolor=color, edgecolor="0.25"))
        ax.text(x, y, text, ha="center", va="center", fontsize=9)

    def arrow(p, q, **kw):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=12, color=kw.pop("color", "0.2"), **kw))

    xs_down = [1.6 + 0.55 * i for i in range(len(down))]
    xs_up = [8.4 - 0.55 * (len(up) - 1 - i) for i in range(len(up))]
    pos = []
    for layer, x in zip(down, xs_down):
        y = levels[layer["size"]]
        box(x, y, f"conv 5x5 + SiLU\n{layer['c_in']} -> {layer['c_out']} ch, {layer['size']}x{layer['size']}",
            "#cfe3f7")
        pos.append((x, y))
    for layer, x in zip(up, xs_up):
        y = levels[layer["size"]]
        box(x, y, f"conv 5x5 + SiLU\n{layer['c_in']} -> {layer['c_out']} ch, {layer['size']}x{layer['size']}", "#f9dcc4")
        pos.append((x, y))
    top = levels[image_size]
    ax.text(xs_down[0], top + 0.95, f"input (noisy image)\n{down[0]['c_in']} x {image_size} x {image_size}",
            ha="center", va="center", fontsize=9)
    ax.text(xs_up[-1], top + 0.95, f"output (predicted clean image)\n{up[-1]['c_out']} x {image_size} x {image_size}",
            ha="center", va="center", fontsize=9)
    arrow((xs_down[0], top + 0.68), (xs_down[0], top + h / 2 + 0.03))
    arrow((xs_up[-1], top + h / 2 + 0.03), (xs_up[-1], top + 0.68))
    for (x0, y0), (x1, y1) in zip(pos[:-1], pos[1:]):
        if y1 == y0:  # the bottom of the U
            arrow((x0 + w / 2, y0), (x1 - w / 2, y1))
        elif y1 < y0:  # going down: max-pooling halves the size
            arrow((x0, y0 - h / 2), (x1, y1 + h / 2))
            ax.text((x0 + x1) / 2 + 0.12, (y0 + y1) / 2, "max-pool /2", fontsize=8, ha="left", va="center",
                    color="0.3")
        else:  # going up: upsampling doubles the size
            arrow((x0, y0 + h / 2), (x1, y1 - h / 2))
            ax.text((x0 + x1) / 2 - 0.12, (y0 + y1) / 2, "upsample x2", fontsize=8, ha="right", va="center",
                    color="0.3")
    # skip connections: each down output kept (before pooling) is added to the up path
    skips = [layer for layer in down if layer["skip"]]
    for layer, (x, y) in zip(down, pos):
        if not layer["skip"]:
            continue
        target = next(xu for lu, xu in zip(up, xs_up) if lu["skip"] and lu["size"] == layer["size"])
        arrow((x + w / 2, y), (target - w / 2, y), color="#2a7f3f", linestyle="--")
        ax.text((x + target) / 2, y + 0.13, f"skip: add ({layer['c_out']} ch)", ha="center", fontsize=8,
                color="#2a7f3f")
    ax.set_title(f"BasicUNet: {len(down)} convolutions down, {len(up)} up, {len(skips)} skip connections",
                 fontsize=11)
    return fig
