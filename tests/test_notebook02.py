"""Diffusion Models from Scratch (notebooks/02_diffusion_models_from_scratch.ipynb) as a specification.

nbmake runs the whole notebook in quick mode; these tests run its own cells (``run_cells``) on
small stand-ins (block images, a tiny model) and compare what they do: the corruption, the
samplers' mixing, the training loop, the hand-written DDPM step against ``DDPMScheduler.step``,
the demos. ``STATED`` holds every number the prose states, with its value from code or from the
measured figures (docs/figures.json). Conventions: tests/notebook_helpers.py.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch
from notebook_helpers import assigned, missing_phrases, prose, read_notebook, sizes_on

import course_utils as cu
from tools import figures
from tools.notebook_code import code_cells, run_cells

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)
NOTEBOOK = "02_diffusion_models_from_scratch.ipynb"

#: Every number the prose states, as a phrase with ``{field}``s from ``facts``: a rewording changes one row.
STATED = [
    "It has {basic_params:,} parameters",
    "a {basic_params:,}-parameter model",
    "{hub_epochs} epochs of the {hub_images:,} Hub images",
    "{hub_steps:,} steps of {batch_size} images",
    "({offline_epochs} epochs of {offline_batches} batches: {offline_steps:,} steps)",
    "With {n_steps_5} steps that is {mix_factors}",
    "about {unet_millions} million parameters, more than {unet_ratio_word} times as many as `BasicUNet`",
    "(`cu.make_unet(\"mnist\")`, {unet_millions} million parameters)",
    "we train it for {unet_cpu_steps} steps",
    "the scheduler's subset of {ddpm_cpu_sampling_steps}",
    # measured (docs/figures.json, "mnist_sample_quality")
    "runs in about {minutes} minutes on a 2-core CPU offline",
    "{basic_pct}% of the {n_samples} samples of our full-size run offline",
    "against {real_pct}% of held-out real digits",
    "at least 90% sure of {basic_pct_with_ddpm}% of BasicUNet's {n_samples} samples, {ddpm_pct}% of the DDPM model's "
    "with our {ddpm_cpu_sampling_steps}-step sampler and {ddim_pct}% with DDIM's {ddim_steps} steps",
]


@pytest.fixture(scope="module")
def cells():
    return code_cells(NOTEBOOK)


class ZeroNet(torch.nn.Module):
    """Predicts a black image (BasicUNet's interface) or zero noise (UNet2DModel's ``.sample``)."""

    def forward(self, x, t=None):
        return torch.zeros_like(x) if t is None else SimpleNamespace(sample=torch.zeros_like(x))


@pytest.fixture(scope="module")
def lesson():
    """The notebook's imports, corrupt and BasicUNet, defined by running their cells."""
    return run_cells(NOTEBOOK, ["imports", "corrupt", "basic-unet"])


def blocks(n: int) -> torch.Tensor:
    """``n`` digit-sized stand-ins in [0, 1]: a bright bar and a bright box on black."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    for img in x:
        r, c = torch.randint(4, 14, (2,), generator=g).tolist()
        img[0, r:r + 10, c:c + 3] = 1.0
        img[0, 4:24, 20:22] = 0.8
    return x


@pytest.fixture(scope="module")
def ddpm_names(lesson):
    """The notebook's DDPM schedule and hand-written step, with a small untrained UNet2DModel."""
    import matplotlib
    from diffusers import DDIMScheduler, DDPMScheduler

    matplotlib.use("Agg")
    names = dict(lesson, DDPMScheduler=DDPMScheduler, DDIMScheduler=DDIMScheduler)  # imported by the cell "unet2d"
    run_cells(NOTEBOOK, ["ddpm-schedule", "ddpm-step"], namespace=names)
    torch.manual_seed(0)
    names["ddpm"] = cu.make_unet("mnist-cpu").eval()
    return names


@pytest.fixture(scope="module")
def facts(cells, lesson, ddpm_names):
    """The value of every {field} of STATED, computed from the notebook's cells (and the measured figures)."""
    mp = pytest.MonkeyPatch()
    try:
        sizes_on(mp, gpu=False, quick=False)
        epochs = {n: assigned(cells["training"].source, "n_epochs", cu=cu, max=max, round=round, data=range(n))
                  for n in (60_000, 5_000)}
        batch_size = assigned(cells["data"].source, "batch_size")
        n_samples = assigned(cells["sampling-40"].source, "n_samples", cu=cu)
        unet_cpu_steps = assigned(cells["unet2d-training"].source, "unet_steps", cu=cu, losses=[0.0] * 5652,
                                  device=torch.device("cpu"))
        sampled = run_cells(NOTEBOOK, ["sampling-5"], namespace=dict(lesson, net=ZeroNet(), device=torch.device("cpu")))
        ddpm = run_cells(NOTEBOOK, ["ddpm-sampling", "ddim-sampling"],
                         namespace=dict(ddpm_names, ddpm=ZeroNet(), samples=torch.zeros(1, 1, 28, 28)),
                         replace={"n_ddpm": 1})
    finally:
        mp.undo()
    history = sampled["step_history"]  # with a black prediction each step keeps (1 - mix_factor) of the image
    mix = [Fraction(1 - float(b.sum() / a.sum())).limit_denominator(50) for a, b in zip(history, history[1:])]
    basic = cu.count_parameters(lesson["BasicUNet"]())
    unet = cu.count_parameters(cu.make_unet("mnist"))
    return dict(
        basic_params=basic, hub_images=60_000, hub_epochs=epochs[60_000], batch_size=batch_size,
        hub_steps=epochs[60_000] * math.ceil(60_000 / batch_size), offline_epochs=epochs[5_000],
        offline_batches=math.ceil(5_000 / batch_size), offline_steps=epochs[5_000] * math.ceil(5_000 / batch_size),
        n_steps_5=sampled["n_steps"], mix_factors=", ".join(map(str, mix[:-1])) + f" and finally {mix[-1]}",
        unet_millions=round(unet / 1e6, 1), unet_ratio_word={5: "five"}.get(unet // basic, str(unet // basic)),
        unet_cpu_steps=unet_cpu_steps, n_samples=n_samples,
        ddpm_cpu_sampling_steps=len(ddpm["step_scheduler"].timesteps), ddim_steps=len(ddpm["ddim"].timesteps),
        **figures.load("mnist_sample_quality"),
    )


def test_the_prose_states_the_numbers_the_code_computes(facts):
    assert not missing_phrases(prose(read_notebook(NOTEBOOK)), STATED, facts), "reword the row of STATED, or correct the prose"


def test_the_offline_run_takes_about_as_many_steps_as_the_hub_run(facts):
    assert abs(facts["offline_steps"] - facts["hub_steps"]) / facts["hub_steps"] < 0.05


# --- the lesson code: defined in the cells ------------------------------------------------------------
def test_corrupt_at_amount_zero_and_one(lesson):
    """The cell's corrupt (the package's copy is the same code: tests/test_lesson_code.py)."""
    corrupt = lesson["corrupt"]
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


def test_the_40_step_sampler_leaves_1_minus_i_over_n_of_the_noise(lesson, monkeypatch):
    """Exercise 5's hint: when each prediction is the clean image, step i's input holds (1 - i/n_steps) of the noise."""
    monkeypatch.setenv("COURSE_QUICK", "1")
    ns = run_cells(NOTEBOOK, ["sampling-40"], namespace=dict(lesson, net=ZeroNet(), device=torch.device("cpu")))
    n = ns["n_steps"]
    shares = [float(x.sum() / ns["xs"][0].sum()) for x in ns["xs"]]
    assert shares == pytest.approx([1 - i / n for i in range(n)], abs=1e-5)
    assert ns["samples"].abs().max() == 0  # the last step returns the prediction


def test_training_loop_lowers_the_loss(lesson, monkeypatch):
    """The notebook's training cell, run on one fixed batch of 16 images for 25 steps (seeded)."""
    monkeypatch.setenv("COURSE_QUICK", "1")  # n_epochs = 1
    x = blocks(16)
    y = torch.zeros(16, dtype=torch.long)
    torch.manual_seed(0)
    ns = run_cells(NOTEBOOK, ["training"], namespace=dict(lesson, device=torch.device("cpu"), data=range(5000),
                                                          train_batches=[(x, y)] * 25))
    losses = ns["losses"]
    assert len(losses) == 25
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


# --- the DDPM part --------------------------------------------------------------------------------
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


def test_step_check_cell_prints_float_rounding(ddpm_names, capsys):
    run_cells(NOTEBOOK, ["ddpm-step-check"], namespace=dict(ddpm_names, xb=torch.rand(8, 1, 28, 28) * 2 - 1))
    difference = float(re.search(r"DDPMScheduler.step: (\S+)", capsys.readouterr().out).group(1))
    assert difference < 1e-5


def test_conditioning_demo_feeds_identical_inputs(lesson, ddpm_names, capsys):
    """One image corrupted once and repeated: only t differs between the three outputs."""
    ns = run_cells(NOTEBOOK, ["conditioning"], namespace=dict(ddpm_names, net2=cu.make_unet("mnist-cpu").eval(),
                                                               x=torch.rand(4, 1, 28, 28), device=torch.device("cpu")))
    noisy = ns["noisy"]
    assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[0], noisy[2])
    out = capsys.readouterr().out
    assert float(re.search(r"t=0 and t=0 again: ([\d.]+)", out).group(1)) == 0
    assert float(re.search(r"t=0 and t=999: ([\d.]+)", out).group(1)) > 0


def test_samplers_demo_shows_spacing_and_stochastic_step(ddpm_names, capsys):
    names = dict(ddpm_names, xb=torch.rand(8, 1, 28, 28) * 2 - 1, noise=torch.randn(8, 1, 28, 28))
    run_cells(NOTEBOOK, ["samplers"], namespace=names)
    out = capsys.readouterr().out
    assert re.search(r"'leading'\s+\[900, 800, 700, 600, 500, 400, 300, 200, 100, 0\]", out)
    assert re.search(r"'trailing'\s+\[999, 899, 799, 699, 599, 499, 399, 299, 199, 99\]", out)
    ddpm_diff = float(re.search(r"DDPMScheduler .* up to (\S+)", out).group(1))
    ddim_diff = float(re.search(r"DDIMScheduler .* up to (\S+)", out).group(1))
    assert ddpm_diff > 0.1 and ddim_diff == 0


@pytest.mark.parametrize("gpu", [True, False])
def test_ddpm_cells_run_with_the_gpu_and_the_cpu_model(ddpm_names, gpu, monkeypatch):
    """The DDPM cells in quick mode with the model each device gets (cell "ddpm-model": "mnist" on a GPU)."""
    monkeypatch.setenv("COURSE_QUICK", "1")
    ns = dict(ddpm_names, device=torch.device("cuda" if gpu else "cpu"))
    run_cells(NOTEBOOK, ["ddpm-model"], namespace=ns, replace={"ddpm": torch.nn.Linear(1, 1)})  # the model is made below
    torch.manual_seed(0)
    ns.update(device=torch.device("cpu"), ddpm=cu.make_unet(ns["ddpm_preset"]), data=SimpleNamespace(images=blocks(32)),
              samples=blocks(16))
    run_cells(NOTEBOOK, ["ddpm-training", "ddpm-sampling", "ddim-sampling"], namespace=ns)
    assert ns["ddpm_preset"] == ("mnist" if gpu else "mnist-cpu")
    assert len(ns["ddpm_losses"]) == ns["ddpm_steps"] and all(math.isfinite(v) for v in ns["ddpm_losses"])
    assert ns["ddpm_samples"].shape == ns["ddim_samples"].shape == (8, 1, 28, 28)
    assert len(ns["ddim_xs"]) == len(ns["ddim_x0s"]) == len(ns["ddim"].timesteps)


def test_ddpm_training_is_longer_on_a_gpu_and_short_in_quick_mode(cells, monkeypatch):
    steps = {}
    for gpu, quick in [(True, False), (False, False), (False, True)]:
        sizes_on(monkeypatch, gpu=gpu, quick=quick)
        steps[gpu, quick] = assigned(cells["ddpm-training"].source, "ddpm_steps", cu=cu)
    assert steps[True, False] >= steps[False, False] >= 1000 > 10 >= steps[False, True]
