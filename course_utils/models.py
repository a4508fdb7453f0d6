"""The ``UNet2DModel`` presets of Unit 1, and counting a model's parameters.

The presets are used by "Introduction to Diffusers" (section "The model"), by the DDPM sections
of the from-scratch notebook, and by the training script (``--model_preset``). The hand-built
``BasicUNet`` is lesson code: notebook 02 defines it, ``basic_unet`` holds the exported copy.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["UNET_PRESETS", "butterflies_preset_for", "count_parameters", "make_unet", "unet_config"]


#: ``UNet2DModel`` configurations by name. "butterflies" is the unit's model; "butterflies-cpu"
#: is the same design at a size a 2-core CPU trains in minutes; "mnist" is the from-scratch
#: notebook's comparison model (the original unit's); "mnist-cpu" is the DDPM model that notebook
#: trains on a CPU (one ResNet block per level down, two up, 16/32/64 channels, attention only in the middle block).
UNET_PRESETS: dict[str, dict] = {
    "butterflies": dict(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
        block_out_channels=(64, 128, 128, 256),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    ),
    "butterflies-cpu": dict(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=(32, 64, 64, 128),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
    ),
    "mnist": dict(
        sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    ),
    "mnist-cpu": dict(
        sample_size=28, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    ),
}


def unet_config(preset: str, **overrides) -> dict:
    """The ``UNet2DModel`` keyword arguments of a preset, with ``overrides`` applied."""
    if preset not in UNET_PRESETS:
        raise ValueError(f"Unknown UNet preset {preset!r}: choose one of {', '.join(UNET_PRESETS)}")
    config = copy.deepcopy(UNET_PRESETS[preset])
    config.update(overrides)
    return config


def make_unet(preset: str, **overrides):
    """Build a ``diffusers.UNet2DModel`` from a preset name (see ``UNET_PRESETS``).

    Used in "Introduction to Diffusers" (section "The model"), in the DDPM comparison of
    "Diffusion Models from Scratch" and by the training script.
    """
    from diffusers import UNet2DModel  # imported here: diffusers is slow to import

    return UNet2DModel(**unet_config(preset, **overrides))


def butterflies_preset_for(device: torch.device | str) -> str:
    """The butterflies preset for a device: the unit's size on a GPU, the CPU size otherwise."""
    return "butterflies" if torch.device(device).type == "cuda" else "butterflies-cpu"


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (quoted in both notebooks' model sections)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
