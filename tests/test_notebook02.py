"""Notebook 02 (Diffusion Models from Scratch): how it is stored, its lesson code, and its numbers.

Fast checks only: nbmake runs the whole notebook (see pyproject's addopts). Here we find the
notebook's cells by id, run small pieces of them (the corruption, the sampler's mixing factor,
the training loop on a fixed batch, the hand-written DDPM step, the demos) and compare the
numbers its text states with what that code does. Prose is compared with whitespace normalised.
"""
from __future__ import annotations

import math
import re
import time

import pytest
import torch
from notebook_helpers import cells_by_id, prose, read_notebook, says
from torch import nn
from tqdm.auto import tqdm

import course_utils as cu

NAME = "02_diffusion_models_from_scratch.ipynb"


@pytest.fixture(scope="module")
def nb():
    return read_notebook(NAME)


@pytest.fixture(scope="module")
def cells(nb):
    return cells_by_id(nb)


@pytest.fixture(scope="module")
def text(nb):
    return prose(nb)


@pytest.fixture(scope="module")
def bench():
    from benchmarks import mnist_sample_quality

    return mnist_sample_quality


def run_cell(cells, cell_id: str, **names) -> dict:
    """Execute one code cell (found by id) in a namespace holding ``names``; return the namespace."""
    namespace = {"torch": torch, "nn": nn, "cu": cu, "math": math, "time": time, "tqdm": tqdm, **names}
    exec(compile(cells[cell_id].source, f"cell {cell_id}", "exec"), namespace)
    return namespace


def assignment(source: str, name: str) -> str:
    """The right-hand side of ``name = ...`` (one line) in ``source``."""
    match = re.search(rf"^{name} = (.+?)(\s+#.*)?$", source, re.M)
    assert match, f"no assignment to {name}"
    return match.group(1)


def test_cells_have_meaningful_ids(nb):
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids)
    assert not [i for i in ids if re.fullmatch(r"cell-\d+", i)]
    for needed in ("setup", "corrupt", "basic-unet", "training", "sampling-40", "ddpm-training", "ddpm-step",
                   "ddpm-step-check", "ddim-sampling", "conditioning", "samplers"):
        assert needed in ids, needed


def test_first_code_cell_is_the_setup_cell(nb):
    """Its content is checked for all four notebooks in tests/test_notebooks_stored.py."""
    assert next(c for c in nb.cells if c.cell_type == "code").id == "setup"


# --- the lesson code: defined in the cells ------------------------------------------------------------
def test_lesson_code_is_defined_in_cells_not_imported(nb, cells):
    assert "def corrupt(" in cells["corrupt"].source
    assert "class BasicUNet(nn.Module)" in cells["basic-unet"].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"cu\.(corrupt|BasicUNet|show_source)\b", code)
    assert "cu.corruption_widget(corrupt, net," in cells["corruption-widget"].source


def test_corrupt_at_amount_zero_and_one(cells):
    """The cell's corrupt (the package's copy is the same code: tests/test_lesson_code.py)."""
    corrupt = run_cell(cells, "corrupt")["corrupt"]
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(corrupt(x, 0.0), x)
    assert torch.equal(corrupt(x, torch.zeros(4)), x)
    torch.manual_seed(1)
    pure = corrupt(x, torch.ones(4))
    torch.manual_seed(1)
    assert torch.equal(pure, torch.rand_like(x))  # pure noise: nothing of x is left
    half = corrupt(x, 0.5)
    assert 0 <= half.min() and half.max() <= 1
    with pytest.raises(ValueError, match="one value per image"):
        corrupt(x, torch.rand(3))


def test_sampler_mixing_factors(nb, cells, text):
    """Every sampling loop uses mix_factor = 1 / (n_steps - i): 1/5, 1/4, 1/3, 1/2, 1 for 5 steps."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    expressions = set(re.findall(r"^\s*mix_factor = ([^#\n]+?)\s*(?:#.*)?$", code, re.M))
    assert expressions == {"1 / (n_steps - i)"}
    (expression,) = expressions
    factors = [eval(expression, {}, {"n_steps": 5, "i": i}) for i in range(5)]
    assert factors == pytest.approx([1 / 5, 1 / 4, 1 / 3, 1 / 2, 1])
    assert says(text, "1/5, 1/4, 1/3, 1/2 and finally 1")
    assert "n_steps = 5\n" in cells["sampling-5"].source
    assert "n_steps = 40\n" in cells["sampling-40"].source and "cu.pick(full=64," in cells["sampling-40"].source
    assert says(text, "takes 40 steps for 64 images")


def test_exercise_5_hint_matches_the_sampler(text):
    """At step i of the sampler the input holds (n_steps - i) / n_steps of noise when each
    prediction is the clean image: the amount the hint turns into a timestep."""
    n_steps, x, clean, noise = 40, None, torch.zeros(1), torch.ones(1)
    x = noise.clone()
    for i in range(n_steps):
        assert float(x) == pytest.approx(1 - i / n_steps)  # the noise share of the input of step i
        mix_factor = 1 / (n_steps - i)
        x = x * (1 - mix_factor) + clean * mix_factor
    assert says(text, "`amount = 1 - i / n_steps`") and says(text, "`round((1 - i / n_steps) * 999)`")


def test_parameter_counts_quoted_in_the_text(cells, text):
    quoted = {int(n.replace(",", "")) for n in re.findall(r"(\d{1,3}(?:,\d{3})+)[- ]parameter", text)}
    basic = cu.count_parameters(run_cell(cells, "basic-unet")["BasicUNet"]())
    assert quoted == {basic} == {309_057}
    unet = cu.count_parameters(cu.make_unet("mnist"))
    assert says(text, "about 1.7 million parameters") and round(unet / 1e6, 1) == 1.7
    assert says(text, "more than five times as many") and 5 < unet / basic < 6
    assert says(text, '`cu.make_unet("mnist")`, 1.7 million parameters')


def test_epochs_and_steps_quoted_in_the_text(cells, text, monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    rhs = assignment(cells["training"].source, "n_epochs")
    steps = {}
    for n_images in (60_000, 5_000):
        epochs = eval(rhs, {"cu": cu, "max": max, "round": round}, {"data": range(n_images)})
        steps[n_images] = (epochs, epochs * math.ceil(n_images / 32))
    assert steps == {60_000: (3, 5625), 5_000: (36, 5652)}
    assert says(text, "3 epochs of the 60,000 Hub images") and says(text, "5,625 steps of 32 images")
    assert says(text, "36 epochs of 157 batches: 5,652 steps")
    assert says(text, "shuffled batches of 32 images") and says(text, "where the unit used 128")
    assert assignment(cells["data"].source, "batch_size") == "32"


def test_unet2d_steps_quoted_in_the_text(cells, text, monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    rhs = assignment(cells["unet2d-training"].source, "unet_steps")
    names = {"cu": cu, "losses": [0.0] * 5652}
    assert eval(rhs, names, {"device": torch.device("cpu")}) == 60
    assert eval(rhs, names, {"device": torch.device("cuda")}) == 5652
    assert says(text, "train it for 60 steps")
    assert "In our CPU run" not in text  # the printout says which loss is lower, in the reader's run
    assert "is lower in this run" in cells["unet2d-training"].source


def blocks(n: int) -> torch.Tensor:
    """``n`` digit-sized stand-ins in [0, 1]: a bright bar and a bright box on black."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    for img in x:
        r, c = torch.randint(4, 14, (2,), generator=g).tolist()
        img[0, r:r + 10, c:c + 3] = 1.0
        img[0, 4:24, 20:22] = 0.8
    return x


def test_training_loop_lowers_the_loss(cells, monkeypatch):
    """The notebook's training cell, run on one fixed batch of 16 images for 25 steps (seeded)."""
    monkeypatch.setenv("COURSE_QUICK", "1")  # n_epochs = 1
    lesson = {**run_cell(cells, "corrupt"), **run_cell(cells, "basic-unet")}
    x = blocks(16)
    y = torch.zeros(16, dtype=torch.long)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and robust on a busy machine
    try:
        namespace = run_cell(cells, "training", corrupt=lesson["corrupt"], BasicUNet=lesson["BasicUNet"],
                             device=torch.device("cpu"), data=range(5000), train_batches=[(x, y)] * 25)
    finally:
        torch.set_num_threads(threads)
    losses = namespace["losses"]
    assert len(losses) == 25
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


# --- the DDPM part --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ddpm_names(cells):
    """The notebook's scheduler and hand-written step, with a small untrained UNet2DModel."""
    from diffusers import DDIMScheduler, DDPMScheduler

    names = run_cell(cells, "ddpm-schedule", plt=_NoPlot(), DDPMScheduler=DDPMScheduler)
    names.update(DDPMScheduler=DDPMScheduler, DDIMScheduler=DDIMScheduler, device=torch.device("cpu"))
    exec(compile(cells["ddpm-step"].source, "cell ddpm-step", "exec"), names)
    torch.manual_seed(0)
    names["ddpm"] = cu.make_unet("mnist-cpu").eval()
    return names


class _NoPlot:
    """Stands in for matplotlib.pyplot (and cu's plotting) where a cell only draws."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@pytest.mark.parametrize("n_steps", [None, 100, 7])
def test_hand_written_step_equals_ddpm_scheduler_step(ddpm_names, n_steps):
    """ddpm_step (Ho et al., Algorithm 2 / Eq. 6-7) against DDPMScheduler.step, the same noise."""
    from diffusers import DDPMScheduler

    ddpm_step, scheduler = ddpm_names["ddpm_step"], ddpm_names["noise_scheduler"]
    reference = DDPMScheduler.from_config(scheduler.config)
    if n_steps is not None:
        reference.set_timesteps(n_steps)
    timesteps = reference.timesteps.tolist() if n_steps else [999, 500, 1, 0]
    jump = 1 if n_steps is None else 1000 // n_steps
    g = torch.Generator().manual_seed(3)
    x_t = torch.randn(4, 1, 28, 28, generator=g)
    for t in timesteps[:3] + timesteps[-2:]:
        noise_pred = torch.randn(x_t.shape, generator=g) * 1.5  # large enough for the clipping to matter
        mine = ddpm_step(noise_pred, t, x_t, t - jump, generator=torch.Generator().manual_seed(t))
        theirs = reference.step(noise_pred, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    other = ddpm_step(noise_pred, 500, x_t, 499, generator=torch.Generator().manual_seed(99))
    same = ddpm_step(noise_pred, 500, x_t, 499, generator=torch.Generator().manual_seed(0))
    assert (other - same).abs().max() > 0.01  # the noise matters: the test compares like with like


def test_step_check_cell_prints_float_rounding(cells, ddpm_names, capsys):
    names = dict(ddpm_names, xb=torch.rand(8, 1, 28, 28) * 2 - 1)
    exec(compile(cells["ddpm-step-check"].source, "cell ddpm-step-check", "exec"), names)
    difference = float(re.search(r"DDPMScheduler.step: (\S+)", capsys.readouterr().out).group(1))
    assert difference < 1e-5


def test_conditioning_demo_feeds_identical_inputs(cells, ddpm_names, capsys):
    """One image corrupted once and repeated: only t differs between the three outputs."""
    corrupt = run_cell(cells, "corrupt")["corrupt"]
    net2 = cu.make_unet("mnist-cpu").eval()
    names = run_cell(cells, "conditioning", corrupt=corrupt, net2=net2, x=torch.rand(4, 1, 28, 28),
                     device=torch.device("cpu"))
    noisy = names["noisy"]
    assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[0], noisy[2])
    out = capsys.readouterr().out
    assert "t=0 and t=0 again: 0.0000" in out
    assert float(re.search(r"t=0 and t=999: (\S+)", out).group(1)) > 0


def test_samplers_demo_shows_spacing_and_stochastic_step(cells, ddpm_names, capsys):
    names = dict(ddpm_names, xb=torch.rand(8, 1, 28, 28) * 2 - 1)
    names["noise"] = torch.randn(8, 1, 28, 28)
    exec(compile(cells["samplers"].source, "cell samplers", "exec"), names)
    out = capsys.readouterr().out
    assert re.search(r"'leading'\s+\[900, 800, 700, 600, 500, 400, 300, 200, 100, 0\]", out)
    assert re.search(r"'trailing'\s+\[999, 899, 799, 699, 599, 499, 399, 299, 199, 99\]", out)
    ddpm_diff = float(re.search(r"DDPMScheduler .* up to (\S+)", out).group(1))
    ddim_diff = float(re.search(r"DDIMScheduler .* up to (\S+)", out).group(1))
    assert ddpm_diff > 0.1 and ddim_diff == 0


@pytest.mark.parametrize("preset", ["mnist", "mnist-cpu"])
def test_ddpm_cells_run_on_the_gpu_and_the_cpu_model(cells, ddpm_names, preset, monkeypatch):
    """The DDPM training and sampling cells in quick mode, with the GPU's model (the unit's
    "mnist") and the CPU's ("mnist-cpu"): the cell "ddpm-model" picks one by device."""
    from types import SimpleNamespace

    monkeypatch.setenv("COURSE_QUICK", "1")
    torch.manual_seed(0)
    names = dict(ddpm_names, ddpm=cu.make_unet(preset), data=SimpleNamespace(images=blocks(32)), plt=_NoPlot(),
                 samples=blocks(16))
    for cell_id in ("ddpm-training", "ddpm-sampling", "ddim-sampling"):
        exec(compile(cells[cell_id].source, f"cell {cell_id}", "exec"), names)
    assert len(names["ddpm_losses"]) == 4 and all(math.isfinite(v) for v in names["ddpm_losses"])
    assert names["ddpm_samples"].shape == names["ddim_samples"].shape == (8, 1, 28, 28)
    assert len(names["ddim_xs"]) == len(names["ddim_x0s"]) == 5


def test_ddpm_sizes_by_device(cells, text, monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    source = cells["ddpm-model"].source
    assert 'ddpm_preset = "mnist" if device.type == "cuda" else "mnist-cpu"' in source
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu_steps = eval(assignment(cells["ddpm-training"].source, "ddpm_steps"), {"cu": cu})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu_steps = eval(assignment(cells["ddpm-training"].source, "ddpm_steps"), {"cu": cu})
    assert gpu_steps >= cpu_steps >= 1000
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert eval(assignment(cells["ddpm-training"].source, "ddpm_steps"), {"cu": cu}) <= 10
    assert says(text, "the scheduler's subset of 100") and "cpu=100" in cells["ddpm-sampling"].source
    assert "cu.pick(full=50, quick=5)" in cells["ddim-sampling"].source


def test_credits_and_citations(text):
    for link in ("https://github.com/huggingface/diffusion-models-class", "https://arxiv.org/abs/2006.11239",
                 "https://arxiv.org/abs/2202.00512", "https://arxiv.org/abs/2303.09556",
                 "https://arxiv.org/abs/2204.00227"):
        assert link in text, link
    assert says(text, "rewritten edition")
    assert says(text, "For data with unit variance")


# --- the figures the text states: the benchmark measures them -------------------------------------
def test_stated_figures_are_the_benchmarks(text, bench):
    stated = bench.STATED
    assert says(text, f"runs in about {stated['budget_minutes']} minutes on a 2-core CPU offline")
    assert stated["budget_minutes"] <= 20  # the issue asked for 15: missed, see the README
    assert says(text, f"{stated['basic_pct']}% of the 64 samples of our full-size run offline")
    assert says(text, f"against {stated['real_pct']}% of held-out real digits")
    assert says(text, "asks the digit classifier above about all three sets of samples in one run")
    assert says(text, f"at least 90% sure of {stated['basic_pct_with_ddpm']}% of BasicUNet's 64 samples, "
                      f"{stated['ddpm_pct']}% of the DDPM model's with our 100-step sampler and "
                      f"{stated['ddim_pct']}% with DDIM's 50 steps")


def test_sample_quality_benchmark_follows_the_notebook(cells, bench):
    """benchmarks/mnist_sample_quality.py runs the notebook's cells and finds its samples by cell id."""
    for cell_id, name in bench.SAMPLES.items():
        assert f"{name} = x.cpu()" in cells[cell_id].source, (cell_id, name)
    assert bench.BATCH_SIZE_LINE in cells["data"].source  # what --batch-size replaces
    x = torch.rand(6, 1, 28, 28)
    shifted = bench.shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    result = bench.verdict(bench.make_classifier().eval(), x)
    assert result["n"] == 6 and sum(result["counts"]) == 6 and 0 <= result["confident"] <= 6
