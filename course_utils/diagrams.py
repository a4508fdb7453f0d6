"""The two UNet diagrams of the unit, each drawn from the model itself so it always matches.

``draw_unet`` draws a diffusers ``UNet2DModel`` ("Introduction to Diffusers", section "The
model"); ``draw_basic_unet`` draws notebook 02's hand-built ``BasicUNet`` (section "The model"),
read from its convolutions' channel counts.

``unet_layout`` reads a ``UNet2DModel`` config (a model, its ``config``, or the keyword arguments
of ``unet_config``) the way ``UNet2DModel.__init__`` and ``forward`` in diffusers 0.42 use it:
every down block has ``layers_per_block`` ResNet layers and, except the last, a downsampler; the
mid block is ResNet, attention, ResNet; every up block has ``layers_per_block + 1`` ResNet layers,
each concatenating one skip connection (the output of ``conv_in``, of every down ResNet layer and
of every downsampler, last in first out), and, except the last, an upsampler.
"""
from __future__ import annotations

import inspect

KNOWN_DOWN = ("DownBlock2D", "AttnDownBlock2D")
KNOWN_UP = ("UpBlock2D", "AttnUpBlock2D")


def _full_config(model_or_config) -> dict:
    """Every ``UNet2DModel`` argument: the given ones over diffusers' defaults."""
    from diffusers import UNet2DModel

    given = getattr(model_or_config, "config", model_or_config)
    if not hasattr(given, "items"):
        raise TypeError("draw_unet needs a UNet2DModel, its .config, or a dict of UNet2DModel arguments "
                        f"(e.g. cu.unet_config('butterflies')), not {type(model_or_config).__name__}")
    defaults = {name: p.default for name, p in inspect.signature(UNet2DModel.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **{k: v for k, v in dict(given).items() if not k.startswith("_")}}


def unet_layout(model_or_config, image_size: int | None = None) -> dict:
    """The blocks of a ``UNet2DModel`` in forward order, with channels, sizes, attention and skips.

    Returns ``dict(down=[...], mid={...}, up=[...], in_channels, out_channels, size, time_embed_dim,
    norm_num_groups)``. Each down or up block is a dict with ``type``, ``attention`` (bool), ``resnets``,
    ``c_in``, ``c_out``, ``size`` (the side it works at) and ``resample`` (True when it ends by halving,
    for down blocks, or doubling, for up blocks, the size); each up block also has ``skips``: the channel
    counts of the skip connections its ResNet layers concatenate, in order.
    """
    config = _full_config(model_or_config)
    channels = list(config["block_out_channels"])
    down_types, up_types = list(config["down_block_types"]), list(config["up_block_types"])
    unknown = [t for t in down_types if t not in KNOWN_DOWN] + [t for t in up_types if t not in KNOWN_UP]
    if unknown:
        raise ValueError(f"draw_unet knows the blocks {KNOWN_DOWN + KNOWN_UP}, not {unknown}")
    if not (len(channels) == len(down_types) == len(up_types)):
        raise ValueError("block_out_channels, down_block_types and up_block_types need the same length")
    size = image_size or config["sample_size"] or 32
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    layers = int(config["layers_per_block"])

    skips = [(channels[0], size)]  # conv_in's output
    down, c_prev, s = [], channels[0], size
    for i, (kind, c) in enumerate(zip(down_types, channels)):
        last = i == len(channels) - 1
        down.append(dict(type=kind, attention=kind.startswith("Attn"), resnets=layers, c_in=c_prev, c_out=c, size=s,
                         resample=not last))
        skips += [(c, s)] * layers
        if not last:
            s //= 2
            skips.append((c, s))  # the downsampler's output
        c_prev = c
    mid = dict(type=config["mid_block_type"], attention=bool(config["add_attention"]) and config["mid_block_type"] is not None,
               c_in=channels[-1], c_out=channels[-1], size=s)
    up, rev = [], channels[::-1]
    c_prev = rev[0]
    for i, kind in enumerate(up_types):
        last = i == len(channels) - 1
        taken = [skips.pop() for _ in range(layers + 1)]
        assert all(size_ == s for _, size_ in taken), "a skip connection of another size: unknown UNet layout"
        up.append(dict(type=kind, attention=kind.startswith("Attn"), resnets=layers + 1, c_in=c_prev, c_out=rev[i], size=s,
                       resample=not last, skips=[c for c, _ in taken]))
        c_prev = rev[i]
        if not last:
            s *= 2
    return dict(down=down, mid=mid, up=up, in_channels=config["in_channels"], out_channels=config["out_channels"],
                size=size, time_embed_dim=config["time_embedding_dim"] or channels[0] * 4,
                norm_num_groups=config["norm_num_groups"])


def draw_unet(model_or_config, image_size: int | None = None, ax=None):
    """Draw a ``UNet2DModel`` as a "U" from its config: down blocks on the left, the mid block at the
    bottom, up blocks on the right, skip connections across, attention blocks shaded. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    layout = unet_layout(model_or_config, image_size)
    down, up, mid = layout["down"], layout["up"], layout["mid"]
    n = len(down)
    if ax is None:
        fig, ax = plt.subplots(figsize=(12, 1.55 * n + 2.6))
    else:
        fig = ax.figure
    top = 1.55 * n + 0.9
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.35, top + 1.1)
    ax.axis("off")
    w, h = 3.0, 0.95
    plain, attn, midc = "#cfe3f7", "#e3d4f5", "#f6e3b4"
    ys = [top - 0.4 - 1.55 * i for i in range(n)]
    x_down, x_up, x_mid = 1.8, 10.2, 6.0

    def box(x, y, text, color):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04", facecolor=color,
                                    edgecolor="0.25"))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(p, q, color="0.2", **kw):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=11, color=color, **kw))

    def side(block):
        return f"{block['size']}x{block['size']}"

    for i, (b, y) in enumerate(zip(down, ys)):
        extra = " + attention" if b["attention"] else ""
        box(x_down, y, f"{b['type']}\n{b['resnets']} ResNet layer{'s' * (b['resnets'] > 1)}{extra}\n"
                       f"{b['c_in']} -> {b['c_out']} ch, {side(b)}", attn if b["attention"] else plain)
        if b["resample"]:
            arrow((x_down, y - h / 2), (x_down, ys[i + 1] + h / 2))
            ax.text(x_down + 0.1, y - 0.78, f"downsample to {b['size'] // 2}x{b['size'] // 2}", fontsize=8,
                    color="0.3", va="center")
    y_mid = ys[-1] - 1.55
    box(x_mid, y_mid, f"mid block\nResNet{', attention,' if mid['attention'] else ','} ResNet\n"
                      f"{mid['c_in']} ch, {mid['size']}x{mid['size']}", midc)
    arrow((x_down, ys[-1] - h / 2), (x_mid - w / 2, y_mid))
    arrow((x_mid + w / 2, y_mid), (x_up, ys[-1] - h / 2))
    for j, b in enumerate(up):
        y = ys[n - 1 - j]
        extra = " + attention" if b["attention"] else ""
        box(x_up, y, f"{b['type']}\n{b['resnets']} ResNet layers{extra}\n{b['c_in']} -> {b['c_out']} ch, {side(b)}",
            attn if b["attention"] else plain)
        if b["resample"]:
            arrow((x_up, y + h / 2), (x_up, ys[n - 2 - j] - h / 2))
            ax.text(x_up - 0.1, y + 0.78, f"upsample to {b['size'] * 2}x{b['size'] * 2}", fontsize=8, color="0.3",
                    ha="right", va="center")
        chans = sorted(set(b["skips"]))
        ax.add_patch(FancyArrowPatch((x_down + w / 2, y), (x_up - w / 2, y), arrowstyle="-|>", mutation_scale=11,
                                     color="#2a7f3f", linestyle="--"))
        ax.text(x_mid, y + 0.13, f"{len(b['skips'])} skip connections, concatenated "
                                 f"({', '.join(str(c) for c in chans)} ch)", ha="center", fontsize=8, color="#2a7f3f")
    size, cin, cout = layout["size"], layout["in_channels"], layout["out_channels"]
    ax.text(x_down, top + 0.75, f"noisy image $x_t$: {cin} x {size} x {size}\nconv_in: {cin} -> {down[0]['c_in']} ch",
            ha="center", va="center", fontsize=9)
    arrow((x_down, top + 0.45), (x_down, ys[0] + h / 2))
    ax.text(x_up, top + 0.75, f"predicted noise: {cout} x {size} x {size}\nGroupNorm, SiLU, conv_out: "
                              f"{up[-1]['c_out']} -> {cout} ch", ha="center", va="center", fontsize=9)
    arrow((x_up, ys[0] + h / 2), (x_up, top + 0.45))
    ax.text(x_mid, top + 0.75, f"timestep $t$: sinusoidal embedding + MLP ({layout['time_embed_dim']} numbers),\n"
                               "added inside every ResNet layer", ha="center", va="center", fontsize=9, color="#8a4b08")
    n_skips = sum(len(b["skips"]) for b in up)
    n_attn = sum(b["attention"] for b in down + up) + mid["attention"]
    ax.set_title(f"UNet2DModel: {n} down blocks, a mid block, {n} up blocks; {n_skips} skip connections; attention in "
                 f"{n_attn} blocks (shaded); GroupNorm with {layout['norm_num_groups']} groups", fontsize=10.5)
    return fig


def basic_unet_layout(model=None, image_size: int = 28) -> list[dict]:
    """The layers of a BasicUNet in forward order: name, path, channels in/out, spatial size.

    Sizes follow ``BasicUNet.forward``: max-pooling after the first two down layers halves the
    size, upsampling before the last two up layers doubles it.
    """
    from .basic_unet import BasicUNet

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
