"""The diagram of a diffusers ``UNet2DModel``, drawn from its own config.

Used in "Introduction to Diffusers" (section "The model"), as ``draw_basic_unet`` draws BasicUNet in
"Diffusion Models from Scratch". ``unet_layout`` reads the config (a model, its ``config``, or the
keyword arguments of ``unet_config``) the way ``UNet2DModel.__init__`` and ``forward`` in
diffusers 0.42 use it: every down block has ``layers_per_block`` ResNet layers and, except the
last, a downsampler; the mid block is ResNet, attention, ResNet; every up block has
``layers_per_block + 1`` ResNet layers, each concatenating one skip connection (the output of
``conv_in``, of every down ResNet layer and of every downsampler, last in first out), and, except
the last, an upsampler. So the picture always matches the model the notebook builds.
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
