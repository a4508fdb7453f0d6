"""How much of a butterflies training step is spent waiting for data? The course's pipeline vs the original's.

Times one training step of the butterflies UNet2DModel (batch 64, 32 px, noise-prediction MSE,
forward + backward + AdamW step) fed two ways, interleaved step by step in one run so that a busy
shared machine slows both alike:

1. course:   every image decoded and resized once (``cu.load_butterflies`` on a folder, which
             uses ``image_prep``), then served from one tensor by ``cu.BatchIterator`` (shuffled,
             flipped per batch).
2. original: the original course's per-sample pipeline, a torch ``Dataset`` whose ``__getitem__``
             decodes the full-size JPEG with PIL, converts to RGB, resizes to 32x32, flips at
             random, makes a tensor and normalises it to [-1, 1], served by a ``DataLoader``
             (shuffle, ``num_workers=0`` as in the unit's notebook; ``--workers 0 2`` adds 2).
             Written with PIL/numpy/torch only, like the rest of the course (no torchvision).

The Hub's Smithsonian butterflies cannot be downloaded everywhere, so the images are a stand-in
made once and cached: 1000 drawn butterflies upscaled to 1600x1200 (the Smithsonian photographs
are roughly 1000-2500 px on the long side), with a little sensor-like grain so that the files are
~230 KB like the real ones, saved as JPEG quality 90.

Also times preprocessing those 1000 JPEGs once with the course's code, cold (no tensor cache).

Run from the repository root: ``python -m benchmarks.data_pipeline`` (a few minutes on 2 CPU
cores), or faster: ``python -m benchmarks.data_pipeline --preset butterflies-cpu --steps 3``.
A benchmark, not a test: it prints PASS/MISS per target and exits 0 either way.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import course_utils as cu
from course_utils import image_prep
from course_utils.butterfly_art import draw_butterfly

PREPROCESS_TARGET_S = 15.0  # 1000 butterfly-sized JPEGs, cold, 2 cores
DATA_SHARE_TARGET = 0.02  # data time as a share of the whole step, course pipeline


# --- The stand-in for the Hub's full-size photographs -------------------------------------------

def write_standin_jpeg(path: Path, seed: int, width: int, height: int, quality: int, draw_size: int = 256) -> None:
    """Butterfly ``seed`` drawn at ``draw_size``, upscaled to ``width`` x ``height``, with grain, as a JPEG.

    The grain matters: a smooth upscaled drawing compresses to a file (and a decode) cheaper than
    a photograph's. Squashing the picture back to a square undoes the stretch.
    """
    big = draw_butterfly(seed, draw_size).resize((width, height), Image.Resampling.BICUBIC)
    grain = np.random.default_rng(seed).integers(-4, 5, size=(height, width, 3), dtype=np.int16)
    pixels = np.clip(np.asarray(big, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=quality)


def make_standin_folder(folder: Path, count: int, width: int, height: int, quality: int) -> Path:
    """Write ``count`` stand-in JPEGs into ``folder`` unless a complete copy is already there.

    Written to a temporary sibling and renamed at the end, so an interrupted run never leaves a
    half-filled folder that later runs would take for a complete one.
    """
    folder = Path(folder)
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + f".partial{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    write = functools.partial(write_standin_jpeg, width=width, height=height, quality=quality)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # PIL and numpy release the GIL
        list(pool.map(lambda i: write(partial / f"butterfly_{i:04d}.jpg", i), range(count)))
    try:
        os.replace(partial, folder)
    except OSError:  # another run finished first: use its copy
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def standin_folder(count: int = 1000, width: int = 1600, height: int = 1200, quality: int = 90) -> Path:
    """The cached stand-in folder (under the course's cache directory), made on first use."""
    folder = image_prep.cache_dir() / "benchmark-jpegs" / f"butterflies-{count}-{width}x{height}-q{quality}"
    if not folder.is_dir():
        print(f"Writing {count} stand-in JPEGs ({width}x{height}, quality {quality}) to {folder} (once) ...",
              flush=True)
    return make_standin_folder(folder, count, width, height, quality)


# --- Pipeline 2: the original course's per-sample loading ---------------------------------------

class FullSizeJpegDataset(torch.utils.data.Dataset):
    """The original course's data path, per image and on every step.

    Equivalent to its ``transforms.Compose([Resize((32, 32)), RandomHorizontalFlip(), ToTensor(),
    Normalize([0.5], [0.5])])`` applied to ``image.convert("RGB")``; torchvision's ``Resize`` on a
    PIL image is PIL's bilinear ``resize``.
    """

    def __init__(self, folder: str | os.PathLike, size: int = 32):
        self.files = image_prep.list_image_files(folder)
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.files[index]) as img:  # full-size decode: no draft mode in the original
            img = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        if torch.rand(()) < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy())
        return x.float().div(255).sub(0.5).div(0.5)  # ToTensor then Normalize([0.5], [0.5])


def original_loader(folder, batch_size: int = 64, workers: int = 0, size: int = 32, seed: int = 0):
    """The original's ``DataLoader(dataset, batch_size, shuffle=True)`` over the per-sample dataset."""
    return torch.utils.data.DataLoader(
        FullSizeJpegDataset(folder, size), batch_size=batch_size, shuffle=True, num_workers=workers,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))


# --- Pipeline 1: the course's ------------------------------------------------------------------

@contextmanager
def course_cache(path: str | os.PathLike):
    """Point the course's tensor cache at ``path`` for a while (a fresh folder makes a cold load)."""
    before = os.environ.get("COURSE_CACHE")
    os.environ["COURSE_CACHE"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COURSE_CACHE", None)
        else:
            os.environ["COURSE_CACHE"] = before


def course_batches(folder, batch_size: int = 64, size: int = 32, seed: int = 0, device="cpu"):
    """The course's pipeline: preprocess the folder once (``load_butterflies``), then ``BatchIterator``.

    Returns (batches, seconds spent loading).
    """
    start = time.perf_counter()
    data = cu.load_butterflies(size=size, source=Path(folder))
    seconds = time.perf_counter() - start
    return cu.BatchIterator(data.images, batch_size, device, flip=True, seed=seed), seconds


# --- Timing -------------------------------------------------------------------------------------

def forever(iterable, device):
    """Batches on ``device`` without end: a new epoch starts (reshuffled) when one runs out.

    Copying to the device is part of the data time, as in the original's training loop.
    """
    while True:
        for batch in iterable:
            yield batch.to(device)


def synchronize(device) -> None:
    """Wait for queued GPU work, so that the clock measures it (CPU work is never queued)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def make_train_step(model, learning_rate: float = 4e-4):
    """One training step of the unit: noise a batch, predict the noise, MSE, backward, AdamW step."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()

    def step(clean: torch.Tensor) -> float:
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (clean.shape[0],), device=clean.device)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        loss = F.mse_loss(model(noisy, timesteps).sample, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return step


def time_pipelines(pipelines: dict, train_step, steps: int, warmup: int = 1, device="cpu") -> dict:
    """Data and compute seconds per measured step of each pipeline, taken in turn step by step.

    Interleaving (A, B, A, B, ...) means a neighbour's burst of work on a shared machine lands on
    both pipelines rather than on whichever ran at that moment. The first ``warmup`` steps
    (allocator, DataLoader workers starting) are not counted.
    """
    iterators = {name: forever(batches, device) for name, batches in pipelines.items()}
    times = {name: {"data": [], "compute": []} for name in pipelines}
    for i in range(warmup + steps):
        for name, iterator in iterators.items():
            synchronize(device)
            start = time.perf_counter()
            batch = next(iterator)
            synchronize(device)
            loaded = time.perf_counter()
            train_step(batch)
            synchronize(device)
            done = time.perf_counter()
            if i >= warmup:
                times[name]["data"].append(loaded - start)
                times[name]["compute"].append(done - loaded)
    return times


def batch_summary(batch: torch.Tensor) -> str:
    return f"{tuple(batch.shape)} {str(batch.dtype).replace('torch.', '')} in [{batch.min():.2f}, {batch.max():.2f}]"


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="butterflies", choices=sorted(cu.UNET_PRESETS),
                        help="UNet2DModel preset (butterflies-cpu is ~10x faster)")
    parser.add_argument("--steps", type=int, default=5, help="measured steps per pipeline")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps per pipeline first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0],
                        help="num_workers of the original's DataLoader, one pipeline each (e.g. 0 2)")
    parser.add_argument("--images", type=int, default=1000, help="stand-in JPEGs (the Hub subset has 1000)")
    parser.add_argument("--jpeg-size", default="1600x1200", help="WIDTHxHEIGHT of the stand-in JPEGs")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the stand-in")
    parser.add_argument("--folder", type=Path, help="use this folder of images instead of the stand-in")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the course's choice, a GPU if there is one)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device) if args.device else cu.get_device()
    width, height = (int(n) for n in args.jpeg_size.lower().split("x"))
    folder = args.folder or standin_folder(args.images, width, height, args.quality)
    files = image_prep.list_image_files(folder)
    print(f"Images: {len(files)} files in {folder}; torch threads: {torch.get_num_threads()}, "
          f"CPU cores: {os.cpu_count()}")

    # Cold: a fresh, empty tensor cache, so every file is decoded (the OS may still cache the files).
    with tempfile.TemporaryDirectory() as empty_cache, course_cache(empty_cache):
        course, cold_s = course_batches(folder, args.batch_size, args.image_size, args.seed, device)
        hit = any(Path(empty_cache).glob("*.pt"))  # the cold load wrote the cache the warm one reads
        _, warm_s = course_batches(folder, args.batch_size, args.image_size, args.seed)
    print(f"Course preprocessing of {len(files)} JPEGs to {args.image_size} px: {cold_s:.2f} s cold, "
          f"{warm_s:.2f} s from its tensor cache{'' if hit else ' (cache not used!)'}")

    pipelines = {"course: tensor + BatchIterator": course}
    for workers in args.workers:
        pipelines[f"original: JPEG Dataset, workers={workers}"] = original_loader(
            folder, args.batch_size, workers, args.image_size, args.seed)
    for name, batches in pipelines.items():
        print(f"  {name:<38} batches {batch_summary(next(iter(batches)))}")

    model = cu.make_unet(args.preset, sample_size=args.image_size).to(device)
    print(f"Model: UNet2DModel preset {args.preset!r}, {cu.count_parameters(model) / 1e6:.1f} M parameters, "
          f"on {device}; {args.warmup} warm-up + {args.steps} measured steps per pipeline, interleaved (medians below)")
    times = time_pipelines(pipelines, make_train_step(model), args.steps, args.warmup, device)

    print(f"\n{'pipeline':<40}{'data/step':>12}{'compute/step':>14}{'whole step':>12}{'data share':>12}")
    summary = {}
    for name, t in times.items():
        data, compute = statistics.median(t["data"]), statistics.median(t["compute"])
        summary[name] = (data, compute, data / (data + compute))
        print(f"{name:<40}{fmt_seconds(data):>12}{fmt_seconds(compute):>14}{fmt_seconds(data + compute):>12}"
              f"{summary[name][2]:>11.2%}")
    course_data, _, course_share = summary["course: tensor + BatchIterator"]
    for name, (data, _, _) in summary.items():
        if name.startswith("original"):
            print(f"Data time, {name.split(': ')[1]} / course: {data / course_data:,.0f}x")
    if any(workers > 0 for workers in args.workers):
        # Worker processes decode while the model computes, so they hide the wait but take the
        # same cores from the compute: on a CPU-only machine compare whole steps, not data times.
        print("(workers > 0 decode in the background on the cores the model uses: compare whole steps)")

    print()
    print(f"{verdict(cold_s < PREPROCESS_TARGET_S)}: preprocessing {len(files)} JPEGs cold took {cold_s:.2f} s "
          f"(target < {PREPROCESS_TARGET_S:.0f} s on 2 cores; {os.cpu_count()} here)")
    print(f"{verdict(course_share < DATA_SHARE_TARGET)}: the course pipeline's data time is {course_share:.2%} of "
          f"the step (target < {DATA_SHARE_TARGET:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
