"""Shuffled, flipped mini-batches straight from a tensor on the training device.

Used by the training loops of both notebooks and by the training script. Everything already
lives on the device, so a batch is one index and one ``torch.where``: the data time per step is
a tiny fraction of the compute (see ``benchmarks/data_pipeline.py``).
"""
from __future__ import annotations

import math

import torch


class BatchIterator:
    """Iterate over ``images`` (and ``labels``) in shuffled batches, flipping each image
    left-right with probability 1/2 (whole batch at once, on the device).

    One pass (``for x in batches``) is one epoch; ``len(batches)`` is the number of batches.
    ``seed`` makes the order and the flips repeatable.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device | str = "cpu",
                 labels: torch.Tensor | None = None, shuffle: bool = True, flip: bool = True,
                 drop_last: bool = False, seed: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if len(images) == 0:
            raise ValueError("No images to iterate over: the data set is empty.")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels must have one entry per image: {len(labels)} labels for {len(images)} images.")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = None if labels is None else labels.to(self.device)
        self.batch_size, self.shuffle, self.flip, self.drop_last = batch_size, shuffle, flip, drop_last
        self.generator = torch.Generator(device="cpu")
        if seed is not None:
            self.generator.manual_seed(seed)
        else:
            self.generator.seed()

    def __len__(self) -> int:
        n = len(self.images) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        flips = torch.rand(n, generator=self.generator) < 0.5
        order, flips = order.to(self.device), flips.to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            x = self.images[index]
            if self.flip:
                # One flag per image, shaped to broadcast over (C, H, W) or (H, W): the last axis is the width.
                flip = flips[start:start + len(index)].view(-1, *[1] * (x.ndim - 1))
                x = torch.where(flip, x.flip(-1), x)
            yield x if self.labels is None else (x, self.labels[index])
