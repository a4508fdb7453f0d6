"""Notebook 02 (Diffusion Models from Scratch): how it is stored, and the lesson's numbers.

Fast checks only: nbmake runs the whole notebook (see pyproject's addopts). Here we read the
notebook's own code cells and run small pieces of them (the sampler's mixing factor, the epoch
count, the training loop on a fixed batch), and compare the numbers its text states with what
that code does.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn
from tqdm.auto import tqdm

import course_utils as cu

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_diffusion_models_from_scratch.ipynb"


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def code_cells(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def cell_with(nb, *needles: str) -> str:
    """The first code cell containing every needle."""
    for source in code_cells(nb):
        if all(n in source for n in needles):
            return source
    raise AssertionError(f"no code cell contains all of {needles}")


def assignment(nb, name: str, *needles: str) -> str:
    """The right-hand side of ``name = ...`` (one line) in the first code cell with the needles."""
    match = re.search(rf"^{name} = (.+?)(\s+#.*)?$", cell_with(nb, f"{name} = ", *needles), re.M)
    assert match, f"no assignment to {name}"
    return match.group(1)


def test_sampler_mixing_factors(nb):
    """Every sampling loop uses mix_factor = 1 / (n_steps - i): 1/5, 1/4, 1/3, 1/2, 1 for 5 steps."""
    expressions = set(re.findall(r"^\s*mix_factor = ([^#\n]+?)\s*(?:#.*)?$", "\n".join(code_cells(nb)), re.M))
    assert expressions == {"1 / (n_steps - i)"}
    (expression,) = expressions
    factors = [eval(expression, {}, {"n_steps": 5, "i": i}) for i in range(5)]
    assert factors == pytest.approx([1 / 5, 1 / 4, 1 / 3, 1 / 2, 1])
    assert "1/5, 1/4, 1/3, 1/2 and\nfinally 1" in markdown(nb) or "1/5, 1/4, 1/3, 1/2 and finally 1" in markdown(nb)
    # the first sampler really takes 5 steps, the second 40 for 64 images
    assert "n_steps = 5\n" in cell_with(nb, "step_history")
    second = cell_with(nb, "xs, preds = [], []")
    assert "n_steps = 40\n" in second and "cu.pick(full=64," in second
    assert "40 steps for 64 images" in markdown(nb).replace("\n", " ")


def test_parameter_counts_quoted_in_the_text(nb):
    text = markdown(nb)
    quoted = {int(n.replace(",", "")) for n in re.findall(r"(\d{1,3}(?:,\d{3})+)[- ]parameter", text)}
    basic = cu.count_parameters(cu.BasicUNet())
    assert quoted == {basic} == {309_057}
    unet = cu.count_parameters(cu.make_unet("mnist"))
    assert "about 1.7 million parameters" in text and round(unet / 1e6, 1) == 1.7
    assert "more than five times as many" in text and 5 < unet / basic < 6


def test_corrupt_at_amount_zero_and_one():
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(cu.corrupt(x, 0.0), x)
    torch.manual_seed(1)
    pure = cu.corrupt(x, torch.ones(4))
    torch.manual_seed(1)
    assert torch.equal(pure, cu.corrupt(torch.zeros_like(x), 1.0))  # nothing of x is left
    assert 0 <= pure.min() and pure.max() < 1


def test_epochs_and_steps_quoted_in_the_text(nb, monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    rhs = assignment(nb, "n_epochs", "loss.backward()")
    steps = {}
    for n_images in (60_000, 5_000):
        epochs = eval(rhs, {"cu": cu, "max": max, "round": round}, {"data": range(n_images)})
        steps[n_images] = (epochs, epochs * math.ceil(n_images / 32))
    assert steps == {60_000: (3, 5625), 5_000: (36, 5652)}
    text = markdown(nb).replace("\n", " ")
    assert "3 epochs of the 60,000 Hub images" in text and "5,625 steps of 32 images" in text
    assert "36 epochs of 157 batches: 5,652 steps" in text
    assert "shuffled batches of 32 images" in text and "where the unit used 128" in text
    assert assignment(nb, "batch_size", "BatchIterator") == "32"


def test_unet2d_steps_quoted_in_the_text(nb, monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    rhs = assignment(nb, "unet_steps", "net2(noisy_x, 0)")
    names = {"cu": cu, "losses": [0.0] * 5652}
    assert eval(rhs, names, {"device": torch.device("cpu")}) == 60
    assert eval(rhs, names, {"device": torch.device("cuda")}) == 5652
    assert "train it for 60 steps" in markdown(nb).replace("\n", " ")


def blocks(n: int) -> torch.Tensor:
    """``n`` digit-sized stand-ins in [0, 1]: a bright bar and a bright box on black."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    for img in x:
        r, c = torch.randint(4, 14, (2,), generator=g).tolist()
        img[0, r:r + 10, c:c + 3] = 1.0
        img[0, 4:24, 20:22] = 0.8
    return x


def test_training_loop_lowers_the_loss(nb, monkeypatch):
    """The notebook's training cell, run on one fixed batch of 16 images for 25 steps (seeded)."""
    monkeypatch.setenv("COURSE_QUICK", "1")  # n_epochs = 1
    source = cell_with(nb, "loss.backward()", "net = cu.BasicUNet()")
    x = blocks(16)
    y = torch.zeros(16, dtype=torch.long)
    namespace = {"cu": cu, "torch": torch, "nn": nn, "tqdm": tqdm, "time": time, "math": math,
                 "device": torch.device("cpu"), "data": range(5000), "train_batches": [(x, y)] * 25}
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and robust on a busy machine
    try:
        exec(compile(source, "training cell", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    losses = namespace["losses"]
    assert len(losses) == 25
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_sample_quality_benchmark_follows_the_notebook(nb):
    """benchmarks/mnist_sample_quality.py runs the notebook's cells up to its 40-step sampler."""
    from benchmarks import mnist_sample_quality as bench

    last = cell_with(nb, bench.LAST_CELL_MARK)
    assert "samples = x.cpu()" in last and "n_steps = 40" in last
    assert bench.BATCH_SIZE_LINE in cell_with(nb, "BatchIterator")  # what --batch-size replaces
    x = torch.rand(6, 1, 28, 28)
    shifted = bench.shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    result = bench.verdict(bench.make_classifier().eval(), x)
    assert result["n"] == 6 and sum(result["counts"]) == 6 and 0 <= result["confident"] <= 6
