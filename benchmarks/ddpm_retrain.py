"""How far apart do two trainings of notebook 02's DDPM model land? The same cells, other random numbers.

``benchmarks/mnist_sample_quality.py`` trains each of the notebook's models once and scores it. One
training run is one draw: the model's initial weights and every step's noise and timesteps are
random. This benchmark trains the DDPM model again with the notebook's own cells ("ddpm-model" and
"ddpm-training", the same data and settings), once per ``--seeds`` value (``torch.manual_seed``),
samples 256 digits with the notebook's hand-written DDPM step from the quality benchmark's starting
noise, and scores them with the quality benchmark's judge (KID against the same 500 real digits).
Compare the figures with that benchmark's ``ddpm_kid``: the spread is how much one training's score
can be trusted.

Run: ``HF_HUB_OFFLINE=1 python -m benchmarks.ddpm_retrain`` (seeds 0, 1 and 2) on an otherwise idle machine
(about 6 minutes per seed on a 2-core CPU). ``--record RUN`` stores the figures in docs/figures.json.
A benchmark, not a test: it prints figures and exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from benchmarks import mnist_sample_quality as quality
from tools import figures
from tools.notebook_code import run_cells

SECTION = "mnist_ddpm_retrain"  # this benchmark's section of docs/figures.json


def notebook_names(quick: bool) -> dict:
    """The names the DDPM cells need, defined by the notebook's own cells (no training)."""
    import matplotlib

    matplotlib.use("Agg")
    if quick:
        os.environ["COURSE_QUICK"] = "1"
    else:  # a full-size run, whatever the shell exported
        os.environ.pop("COURSE_QUICK", None)
    return quality.ddpm_names(run_cells(quality.NOTEBOOK, ["imports", "data"], quiet=True))


def retrain(ns: dict, seed: int) -> dict:
    """The notebook's DDPM model, trained again by its cells from ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return run_cells(quality.NOTEBOOK, ["ddpm-model", "ddpm-training"], namespace=dict(ns), quiet=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one training per seed")
    parser.add_argument("--n", type=int, default=256, help="samples per training")
    parser.add_argument("--steps", type=int, default=100, help="DDPM sampling steps (the notebook's CPU number)")
    parser.add_argument("--quick", action="store_true", help="the notebook's quick mode (smoke run)")
    parser.add_argument("--classifier", type=Path, help="the quality benchmark's --classifier cache (reused if present, else written)")
    parser.add_argument("--record", metavar="RUN", help="store the figures in docs/figures.json, RUN naming the run")
    args = parser.parse_args(argv)
    if args.record and args.quick:
        parser.error("--record stores a full-size run's figures: drop --quick")
    ns = notebook_names(args.quick)
    if args.quick:  # a smoke run: an untrained judge is enough to run the code path
        classifier, held_out = quality.make_classifier().eval(), ns["data"].images[:744].cpu()
    else:
        classifier, _, held_out, _ = quality.cached_classifier(args.classifier)
    reference, calibration, _ = quality.split_held_out(held_out)
    judge = quality.Judge(classifier, reference, calibration)
    start_noise = torch.randn(args.n, 1, 28, 28, generator=torch.Generator().manual_seed(2))  # its starting noise
    values = {}
    for seed in args.seeds:
        began = time.perf_counter()
        trained = retrain(ns, seed)
        result = judge.score(quality.ddpm_samples(trained, start_noise, args.steps))
        steps, batch = len(trained["ddpm_losses"]), trained["ddpm_batches"].batch_size
        print(f"seed {seed}: {steps:,} steps of {batch}, last-50 loss {sum(trained['ddpm_losses'][-50:]) / 50:.4f}; "
              + quality.line(f"our DDPM step, {args.steps} steps", result)
              + f" [{time.perf_counter() - began:.0f} s]", flush=True)
        values[f"seed{seed}_kid"] = round(result["kid"], 1)
        values[f"seed{seed}_not_digit_pct"] = round(100 * result["not_a_digit"])
    if args.quick:
        print("(quick mode: a smoke run of the code path; the figures mean nothing)")
    if args.record:
        figures.record(SECTION, args.record, **values)
        print(f"Recorded in {figures.PATH} (section {SECTION!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
