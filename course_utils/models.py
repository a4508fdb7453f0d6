"""The models of Unit 1: the hand-built BasicUNet and named UNet2DModel presets.

BasicUNet is shown in "Diffusion Models from Scratch" (section "The model"); the presets are
used by "Introduction to Diffusers" (section "The model"), by the DDPM comparison of the
from-scratch notebook, and by the training script (``--model_preset``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class BasicUNet(nn.Module):
    """A minimal UNet: three convolutions down, three up, two skip connections.

    Exactly the unit's model (309,057 parameters for one channel in and out). Each 5x5
    convolution keeps the size; max-pooling halves it on the way down and nearest-neighbour
    upsampling doubles it on the way up, so the input needs a size divisible by 4 (28 is).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1):
        super().__init__()
        self.down_layers = nn.ModuleList([
            nn.Conv2d(in_channels, 32, kernel_size=5, padding=2),
            nn.Conv2d(32, 64, kernel_size=5, padding=2),
            nn.Conv2d(64, 64, kernel_size=5, padding=2),
        ])
        self.up_layers = nn.ModuleList([
            nn.Conv2d(64, 64, kernel_size=5, padding=2),
            nn.Conv2d(64, 32, kernel_size=5, padding=2),
            nn.Conv2d(32, out_channels, kernel_size=5, padding=2),
        ])
        self.act = nn.SiLU()
        self.downscale = nn.MaxPool2d(2)
        self.upscale = nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = []  # outputs kept for the skip connections
        for i, layer in enumerate(self.down_layers):
            x = self.act(layer(x))
            if i < 2:  # all but the last down layer: keep the output, then halve the size
                h.append(x)
                x = self.downscale(x)
        for i, layer in enumerate(self.up_layers):
            if i > 0:  # all but the first up layer: double the size, add the matching skip
                x = self.upscale(x)
                x = x + h.pop()
            x = self.act(layer(x))
        return x


#: ``UNet2DModel`` configurations by name. "butterflies" is the unit's model; "butterflies-cpu"
#: is the same design at a size a 2-core CPU trains in minutes; "mnist" is the from-scratch
#: notebook's comparison model.
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
