"""What the training script writes while it trains: the loss log, sample grids, the pipeline, the Hub upload.

Used by ``course_utils.train`` ("Introduction to Diffusers", section "Scaling up"). Everything here
takes the script's ``Run`` (its accelerator, model, EMA and options).
"""
from __future__ import annotations

import contextlib
import csv
import math
from pathlib import Path

import torch


class LossLog:
    """logs/loss.csv (always) and TensorBoard (when on); losses are gathered every few steps, not every step."""

    FIELDS = ["step", "epoch", "loss", "lr"]

    def __init__(self, run):
        self.run, self.pending = run, []
        self.path = Path(run.args.output_dir) / "logs" / "loss.csv"
        if run.accelerator.is_main_process:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = []
            if run.global_step and self.path.exists():  # resuming: drop rows the checkpoint does not cover
                with self.path.open(newline="") as file:
                    kept = [row for row in csv.DictReader(file) if int(row["step"]) <= run.global_step]
            with self.path.open("w", newline="") as file:
                writer = csv.DictWriter(file, self.FIELDS)
                writer.writeheader()
                writer.writerows(kept)
        self.last = None

    def add(self, step: int, epoch: int, loss: torch.Tensor, lr: float) -> None:
        self.pending.append((step, epoch, loss, lr))

    def flush(self) -> float | None:
        """Average the pending losses over processes (every process must call this) and write them."""
        if not self.pending:
            return self.last
        accelerator = self.run.accelerator
        losses = accelerator.reduce(torch.stack([p[2] for p in self.pending]), "mean").tolist()
        rows = [dict(step=s, epoch=e, loss=f"{loss:.6f}", lr=f"{lr:.6g}") for (s, e, _, lr), loss in zip(self.pending, losses)]
        self.pending, self.last = [], losses[-1]
        if accelerator.is_main_process:
            with self.path.open("a", newline="") as file:
                csv.DictWriter(file, self.FIELDS).writerows(rows)
            for row, loss in zip(rows, losses):
                accelerator.log({"loss": loss, "lr": float(row["lr"])}, step=row["step"])
        return self.last


@contextlib.contextmanager
def ema_weights(run):
    """Swap the EMA weights into the model for a while (sampling, saving); a no-op without EMA."""
    if run.ema is None:
        yield
        return
    parameters = list(run.accelerator.unwrap_model(run.model).parameters())
    run.ema.store(parameters)
    run.ema.copy_to(parameters)
    try:
        yield
    finally:
        run.ema.restore(parameters)


def make_pipeline(run):
    """A DDPMPipeline around the model being trained (with a copy of the noise scheduler)."""
    from diffusers import DDPMPipeline, DDPMScheduler

    unet = run.accelerator.unwrap_model(run.model)
    return DDPMPipeline(unet=unet, scheduler=DDPMScheduler.from_config(run.noise_scheduler.config))


def save_samples(run, epoch: int) -> Path:
    """A grid of ``--eval_batch_size`` samples as samples/epoch-<n>.png (main process)."""
    from ..plotting import show_images

    args = run.args
    pipeline = make_pipeline(run)
    pipeline.set_progress_bar_config(desc="Sampling", leave=False)
    with ema_weights(run), run.accelerator.autocast():
        images = pipeline(batch_size=args.eval_batch_size, generator=torch.Generator().manual_seed(args.seed),
                          num_inference_steps=args.ddpm_num_inference_steps, output_type="np").images
    grid = show_images(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=math.ceil(math.sqrt(len(images))),
                       value_range=(0, 1))
    path = Path(args.output_dir) / "samples" / f"epoch-{epoch:04d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def save_pipeline(run) -> None:
    """The pipeline (EMA weights when EMA is on) with ``save_pretrained``: safetensors (main process)."""
    with ema_weights(run):
        make_pipeline(run).save_pretrained(run.args.output_dir, safe_serialization=True)


def write_model_card(run, repo_id: str) -> None:
    """A short README.md for the Hub: what was trained on what, and how to load it."""
    a = run.args
    text = f"""---
library_name: diffusers
tags: [pytorch, diffusers, unconditional-image-generation, diffusion-models-class]
---
# {repo_id}

A DDPM trained with the diffusion course's `course_utils.train` on {run.source}
({run.num_images} images at {a.resolution} px) for {run.global_step} optimizer steps.

```python
from diffusers import DDPMPipeline

pipeline = DDPMPipeline.from_pretrained("{repo_id}")
image = pipeline().images[0]
```
"""
    (Path(a.output_dir) / "README.md").write_text(text)


def push(run, repo_id: str) -> None:
    """Upload the output folder (without checkpoints and per-process logs) with a model card (main process)."""
    from huggingface_hub import upload_folder

    write_model_card(run, repo_id)
    upload_folder(repo_id=repo_id, folder_path=run.args.output_dir, commit_message=f"Training: {run.global_step} steps",
                  ignore_patterns=["checkpoint-*", ".checkpoint-*", "logs/rank*"])
    print(f"Pushed to https://huggingface.co/{repo_id}", flush=True)
