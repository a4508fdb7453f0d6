"""Images per second of the training script's step, next to the notebook's plain loop, in one run.

Default mode (any machine): the butterflies UNet2DModel, one batch size, two ways interleaved step by
step so that a busy shared machine slows both alike:

1. script:   ``course_utils.train`` exactly as ``python -m course_utils.train`` runs it (its ``setup`` and
             ``update``: Accelerate, keyed noise generator, clipping, LR schedule), fed by its BatchIterator.
2. notebook: the loop of "Introduction to Diffusers" written out as the notebook has it (randn, randint,
             add_noise, model, MSE, ``loss.backward()``, AdamW), same model, same batch, same data.

The ratio script / notebook should be close to 1: the script adds features, not cost.

``--original`` (for a GPU): the original course's code path - every full-size JPEG decoded and resized
per sample by a DataLoader (``num_workers=0``), the butterflies model in fp32 - against the script in
``--mixed_precision`` (bf16 by default), and the 30-epoch time of each on 1000 butterflies (target: the
script 10x faster). The JPEGs are a stand-in of the Smithsonian photographs written once to the course cache by
``benchmarks.data_pipeline``'s ``standin_folder`` (drawn butterflies at 1600x1200, JPEG quality 90). This needs a
GPU to mean anything; on a CPU both are compute-bound and it only checks that the mode runs.

Run from the repository root: ``python -m benchmarks.train_speed`` (CPU preset, ~1-2 min on 2 cores),
``python -m benchmarks.train_speed --preset butterflies`` (the unit's model), on a GPU
``python -m benchmarks.train_speed --preset butterflies --original``.
A benchmark, not a test: it prints figures (and PASS/MISS for the --original target) and exits 0.
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

import course_utils as cu
from benchmarks.data_pipeline import original_loader, standin_folder  # the original course's JPEG path, shared
from course_utils.train import args as train_args
from course_utils.train import loop

TARGET_SPEEDUP = 10.0  # 30 epochs: the script (bf16, tensors on the GPU) vs the original course's path
HUB_IMAGES = 1000  # images in huggan/smithsonian_butterflies_subset


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def script_run(preset: str, batch_size: int, resolution: int, mixed_precision: str, images: int, output_dir: str):
    """The training script's own state, built by its own ``setup`` from its own command line."""
    args = train_args.parse_args([
        "--model_preset", preset, "--resolution", str(resolution), "--train_batch_size", str(batch_size),
        "--max_train_samples", str(images), "--mixed_precision", mixed_precision, "--random_flip",
        "--report_to", "none", "--lr_warmup_steps", "0", "--output_dir", output_dir])
    return loop.setup(args)


def script_step(run, batches, step: int) -> None:
    """One optimizer step exactly as the script's loop takes it: next batch, ``loop.update``."""
    try:
        clean = next(batches[0])
    except StopIteration:
        batches[0] = iter(run.batches)
        clean = next(batches[0])
    loop.update(run, [clean], step)


class NotebookLoop:
    """The notebook's training loop, one step at a time (model, scheduler and optimizer as in section "Training")."""

    def __init__(self, preset: str, resolution: int, device: torch.device, batch_iter):
        from diffusers import DDPMScheduler

        cu.seed_everything(0)
        self.model = cu.make_unet(preset, sample_size=resolution).to(device)
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=4e-4)
        self.batch_iter, self.batches, self.device = batch_iter, iter(batch_iter), device

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.batch_iter)
            return next(self.batches)

    def step(self) -> None:
        clean_images = self.next_batch().to(self.device)
        noise = torch.randn(clean_images.shape, device=clean_images.device)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (clean_images.shape[0],),
                                  device=clean_images.device).long()
        noisy_images = self.noise_scheduler.add_noise(clean_images, noise, timesteps)
        noise_pred = self.model(noisy_images, timesteps, return_dict=False)[0]
        loss = F.mse_loss(noise_pred, noise)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


# --- Measurement -----------------------------------------------------------------------------------

def interleaved(steps: int, warmup: int, device: torch.device, **paths) -> dict[str, list[float]]:
    """Seconds per step of each path, taking one step of each in turn (after ``warmup`` untimed rounds)."""
    times = {name: [] for name in paths}
    for round_ in range(warmup + steps):
        for name, step in paths.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="butterflies-cpu", choices=["butterflies-cpu", "butterflies"],
                        help="The UNet preset (butterflies is the unit's model).")
    parser.add_argument("--batch-size", type=int, default=64, help="Images per step (the notebook's 64).")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per path (default: 8, 30 on a GPU).")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed rounds first.")
    parser.add_argument("--original", action="store_true",
                        help="Compare with the original course's per-sample JPEG DataLoader path in fp32 (GPU).")
    parser.add_argument("--mixed-precision", default=None, choices=["no", "bf16", "fp16"],
                        help="The script's precision (default: no; bf16 with --original).")
    parser.add_argument("--jpegs", type=int, default=HUB_IMAGES, help="Stand-in JPEGs for --original.")
    args = parser.parse_args(argv)

    device = cu.get_device()
    steps = args.steps or (30 if device.type == "cuda" else 8)
    precision = args.mixed_precision or ("bf16" if args.original else "no")
    with tempfile.TemporaryDirectory() as output_dir:
        run = script_run(args.preset, args.batch_size, args.resolution, precision, 4 * args.batch_size, output_dir)
        script_batches = [iter(run.batches)]
        counter = iter(range(10 ** 9))
        paths = {"script": lambda: script_step(run, script_batches, next(counter))}
        if args.original:
            loader = original_loader(standin_folder(args.jpegs), args.batch_size, workers=0, size=args.resolution)
            baseline = NotebookLoop(args.preset, args.resolution, device, loader)
            label = "original (per-sample JPEG DataLoader, fp32)"
        else:
            data = cu.load_butterflies(size=args.resolution, limit=4 * args.batch_size)
            baseline = NotebookLoop(args.preset, args.resolution, device,
                                    cu.BatchIterator(data.images, args.batch_size, device, seed=0))
            label = "notebook loop"
        paths["baseline"] = baseline.step
        print(f"Device: {device}; preset {args.preset} ({cu.count_parameters(baseline.model):,} parameters), "
              f"batch {args.batch_size}, {args.resolution} px; script precision {precision}; "
              f"{steps} timed steps each, interleaved, after {args.warmup} warm-up rounds.", flush=True)
        times = interleaved(steps, args.warmup, device, **paths)

    rate = {name: args.batch_size / statistics.median(t) for name, t in times.items()}
    for name, shown in (("script", f"script (course_utils.train, {precision})"), ("baseline", label)):
        t = times[name]
        print(f"  {shown:<48} {rate[name]:8.1f} images/s   (median {statistics.median(t) * 1000:7.1f} ms/step, "
              f"min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f})")
    ratio = rate["script"] / rate["baseline"]
    print(f"  ratio script / {'original' if args.original else 'notebook'}: {ratio:.2f}x")
    if args.original:
        steps_30 = 30 * math.ceil(HUB_IMAGES / args.batch_size)
        for name, shown in (("script", "script"), ("baseline", "original")):
            print(f"  30 epochs ({steps_30} steps) with the {shown}: {steps_30 * statistics.median(times[name]) / 60:.1f} min")
        verdict = "PASS" if ratio >= TARGET_SPEEDUP else "MISS"
        note = "" if device.type == "cuda" else " (on a CPU both are compute-bound: the target is for a GPU)"
        print(f"  target >= {TARGET_SPEEDUP:.0f}x: {verdict}{note}")


if __name__ == "__main__":
    main()
