"""Diffusion Models from Scratch (notebooks/02_diffusion_models_from_scratch.ipynb) as a specification.

tests/test_book.py runs the whole notebook in quick mode; these tests run its own cells (``run_cells``) on
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
from course_utils.exercises.nb02 import stand_in_digits
from tools import figures
from tools.notebook_code import code_cells, run_cells

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)
NOTEBOOK = "02_diffusion_models_from_scratch.ipynb"

#: Every number the prose states, as a phrase with ``{field}``s from ``facts``: a rewording changes one row.
STATED = [
    "It has {basic_params:,} parameters",
    "We train for {hub_epochs_phrase} of the {hub_images:,} Hub images (the original unit: {unit_epochs})",
    "in batches of {batch_size} images (the unit: {unit_batch}): {hub_steps:,} steps "
    "against the unit's {unit_steps:,}, {update_ratio} times as many (noisier) updates for {work_share} of the work",
    "({offline_epochs} epochs of {offline_batches} batches: {offline_steps:,} steps)",
    "With {n_steps_5} steps that is {mix_factors}",
    "The next cell takes {n_steps_40} steps for {n_samples} images, and the first {n_shared} start from the same "
    "noise as the 5-step run above",
    "about {unet_millions} million parameters, more than {unet_ratio_word} times as many as `BasicUNet`",
    "(`cu.make_unet(\"mnist\")`, {unet_millions} million parameters)",
    "{cpu_unet_channels} channels, {cpu_unet_params:,} parameters, with attention only in its middle block",
    "which a CPU trains in {ddpm_cpu_steps:,} steps of {ddpm_batch} images",
    "this one uses {ddpm_lr} with `OneCycleLR`",
    "not even $t = {last_t}$ is pure noise ($\\sqrt{{\\bar\\alpha_{{{last_t}}}}} \\approx {sqrt_ab_last}$)",
    "visits 900, 800, ..., 0 in 10 steps",
    "For a step from $t = {coef_t}$ to $t = {coef_prev}$",
    "told $t = {told[0]}$ (too little noise), $t = {told[1]}$ (the truth) and $t = {told[2]}$ (too much)",
    "the scheduler's subset of {ddpm_cpu_sampling_steps}",
    "for example for {ex5_steps:,} steps of 32 images",
    "for example for {ex6_steps:,} steps of 64 images",
    # measured figures (docs/figures.json, "mnist_sample_quality")
    "the whole notebook took {minutes:.0f} minutes offline on an otherwise idle 2-core CPU, {training_minutes:.0f} of them in its "
    "two training loops",
    "BasicUNet's samples scored a KID of {basic_kid}. For scale: other real digits scored {real_kid} (0 up to the "
    "estimate's noise), two real digits overlaid on each other {overlaid_kid}, and uniform noise {noise_kid}.",
    "A per-sample check tells more: {basic_not_digit_pct}% of BasicUNet's samples are \"not a digit\"",
    "real digits themselves score {real_not_digit_pct}%), and the classifier is at least 90% sure of the class of "
    "{basic_confident_pct}% of them (of real digits: {real_confident_pct}%)",
    "{ddpm_cpu_sampling_steps} steps each, by their KID to real digits (lower is closer: real digits {real_kid}, "
    "uniform noise {noise_kid}). Our DDPM step scored {ddpm_kid}, DDIM with the defaults {ddim_kid}, and DDIM with "
    "`use_clipped_model_output=True` {ddim_clipped_kid}: no better by KID, although the per-sample check calls fewer of "
    "its samples \"not a digit\" ({ddim_clipped_not_digit_pct}% against {ddim_not_digit_pct}%)",
    "(`clip_sample=False`), {ddim_noclip_kid}, most of the way to uniform noise",
    "(`eta=1`), {ddim_eta1_kid}: about as close as DDPM's step (the per-sample check calls more of its samples "
    "\"not a digit\": {ddim_eta1_not_digit_pct}% against {ddpm_not_digit_pct}%)",
    "not on one trained for {ddpm_cpu_steps:,} steps of {ddpm_batch} images",
    "instead of 990, 980, ..., 0, {ddim_trailing_kid}: no change",
    "with {half_sampling_steps} steps our DDPM step scored {ddpm_half_kid}, the consistent DDIM step "
    "{ddim_clipped_half_kid}, and DDIM with the defaults {ddim_half_kid}",
    "`BasicUNet`'s samples scored {basic_kid}: as close to real digits as our DDPM step",
    "trained the DDPM model on batches of {longer_ddpm_batch_size} instead of {ddpm_batch} (twice the images for the same "
    "{longer_ddpm_steps:,} updates, about twice the training time); there our DDPM step scored {longer_ddpm_kid}",
    "run three more times with other random initial weights, noise and timesteps, trained models whose samples with "
    "our DDPM step scored {retrain_seed0_kid}, {retrain_seed1_kid} and {retrain_seed2_kid}",
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


blocks = stand_in_digits  # n digit-sized stand-ins in [0, 1]: a bright bar and a bright box on black


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
        sampled = run_cells(NOTEBOOK, ["sampling-5"], namespace=dict(lesson, net=ZeroNet(), device=torch.device("cpu")))
        ddpm = run_cells(NOTEBOOK, ["ddpm-sampling", "ddim-sampling"],
                         namespace=dict(ddpm_names, ddpm=ZeroNet(), samples=torch.zeros(1, 1, 28, 28), xs=[None] * 40),
                         replace={"n_ddpm": 1})
        ddpm_steps = assigned(cells["ddpm-training"].source, "ddpm_steps", cu=cu)
        ddpm_batch = assigned(cells["ddpm-training"].source, "ddpm_batches", cu=cu, device="cpu", data=SimpleNamespace(
            images=torch.zeros(64, 1, 28, 28))).batch_size
    finally:
        mp.undo()
    history = sampled["step_history"]  # with a black prediction each step keeps (1 - mix_factor) of the image
    mix = [Fraction(1 - float(b.sum() / a.sum())).limit_denominator(50) for a, b in zip(history, history[1:])]
    basic = cu.count_parameters(lesson["BasicUNet"]())
    unet = cu.count_parameters(cu.make_unet("mnist"))
    cpu_unet = cu.make_unet("mnist-cpu")
    attention = [name for name, _ in cpu_unet.named_modules() if name.endswith("attentions.0")]
    assert attention == ["mid_block.attentions.0"]  # "with attention only in its middle block"
    a_bar = ddpm_names["alphas_cumprod"]
    coefficients = run_cells(NOTEBOOK, ["coefficients"], namespace=dict(ddpm_names), quiet=True)
    told = re.search(r"for t_told in \((\d+), t_true, (\d+)\)", cells["conditioning"].source).groups()
    t_true = assigned(cells["conditioning"].source, "t_true")
    from course_utils.exercises import nb02

    return dict(
        basic_params=basic, hub_images=60_000, hub_epochs=epochs[60_000], batch_size=batch_size,
        hub_steps=epochs[60_000] * math.ceil(60_000 / batch_size), offline_epochs=epochs[5_000],
        offline_batches=math.ceil(5_000 / batch_size), offline_steps=epochs[5_000] * math.ceil(5_000 / batch_size),
        n_steps_5=sampled["n_steps"], mix_factors=", ".join(map(str, mix[:-1])) + f" and finally {mix[-1]}",
        unet_millions=round(unet / 1e6, 1), unet_ratio_word={5: "five"}.get(unet // basic, str(unet // basic)),
        n_samples=n_samples, n_steps_40=assigned(cells["sampling-40"].source, "n_steps"),
        n_shared=len(sampled["start_noise"]),
        unit_epochs=3, unit_batch=128,  # the original unit's training (its notebook's n_epochs and batch size)
        hub_epochs_phrase="one epoch" if epochs[60_000] == 1 else f"{epochs[60_000]} epochs",
        work_share={Fraction(1, 3): "a third", Fraction(2, 3): "two thirds"}.get(
            Fraction(epochs[60_000], 3), str(Fraction(epochs[60_000], 3))),  # of the unit's 3 epochs
        unit_steps=3 * math.ceil(60_000 / 128),  # the unit's 3 epochs of 128
        update_ratio=round(epochs[60_000] * math.ceil(60_000 / batch_size) / (3 * math.ceil(60_000 / 128)), 1),
        cpu_unet_channels="/".join(map(str, cpu_unet.config.block_out_channels)),
        cpu_unet_params=cu.count_parameters(cpu_unet), ddpm_cpu_steps=ddpm_steps, ddpm_batch=ddpm_batch,
        ddpm_lr=re.search(r"AdamW\(ddpm\.parameters\(\), lr=([^)]+)\)", cells["ddpm-training"].source).group(1),
        last_t=len(a_bar) - 1, sqrt_ab_last=f"{a_bar[-1].sqrt():.3f}",
        coef_t=coefficients["t"], coef_prev=coefficients["prev_t"], told=(int(told[0]), t_true, int(told[1])),
        ex5_steps=int(re.search(r"range\((\d+)\)", nb02.ex5.solution().en).group(1)),
        ex6_steps=int(re.search(r"range\((\d+)\)", nb02.ex6.solution().en).group(1)),
        ddpm_cpu_sampling_steps=len(ddpm["step_scheduler"].timesteps),
        half_sampling_steps=len(ddpm["step_scheduler"].timesteps) // 2,  # the benchmark's "half the steps" runs
        **figures.load("mnist_sample_quality"),
        **{f"longer_{k}": v for k, v in figures.load("mnist_sample_quality_longer").items()},  # the earlier run
        **{f"retrain_{k}": v for k, v in figures.load("mnist_ddpm_retrain").items()},  # benchmarks/ddpm_retrain.py
    )


def test_the_prose_states_the_numbers_the_code_computes(facts):
    assert not missing_phrases(prose(read_notebook(NOTEBOOK)), STATED, facts), "reword the row of STATED, or correct the prose"


def test_the_measured_comparisons_the_prose_draws_hold(facts):
    """What the prose concludes from the benchmark's KIDs (docs/figures.json), checked on the figures."""
    kid = {k[:-4]: v for k, v in facts.items() if k.endswith("_kid") and not k.startswith(("longer_", "retrain_"))}
    retrained = [facts[f"retrain_seed{seed}_kid"] for seed in (0, 1, 2)]  # the same cells, trained three more times
    few = 5  # "two sets of samples from the same sampler can score several units apart"
    deterministic = [v for k, v in kid.items() if k.startswith("ddim") and k != "ddim_eta1"]  # DDIM without fresh noise
    assert abs(kid["real"]) < 0.01 * kid["noise"]  # "0 up to the estimate's noise"
    assert kid["basic"] > kid["overlaid"]  # "farther from real digits than overlaid pairs of real digits do"
    assert abs(kid["basic"] - kid["ddpm"]) < few  # "as close to real digits as our DDPM step"
    assert kid["basic"] < min(deterministic)  # "closer than any run of DDIM without fresh noise"
    assert abs(kid["ddim_clipped"] - kid["ddim"]) < few  # the consistent step: "no better by KID"
    assert facts["ddim_clipped_not_digit_pct"] < facts["ddim_not_digit_pct"]  # "although ... fewer ... not a digit"
    assert abs(kid["ddim_noclip"] - kid["noise"]) < abs(kid["ddim_noclip"] - kid["ddim"])  # "most of the way to noise"
    # eta=1: "about as close as DDPM's step", and far closer than DDIM without fresh noise
    assert abs(kid["ddim_eta1"] - kid["ddpm"]) < 0.25 * (min(deterministic) - kid["ddpm"])
    assert facts["ddim_eta1_not_digit_pct"] > facts["ddpm_not_digit_pct"]  # "though ... more ... not a digit"
    assert kid["ddim_eta1"] < min(deterministic)  # "fresh noise is the one change that helped"
    assert abs(kid["ddim_trailing"] - kid["ddim"]) < 0.05 * kid["ddim"]  # trailing: "no change"
    assert min(deterministic) > max(kid["ddpm"], kid["ddim_eta1"])  # "the deterministic step itself costs quality"
    for half, full in (("ddpm_half", "ddpm"), ("ddim_half", "ddim"), ("ddim_clipped_half", "ddim_clipped")):
        assert abs(kid[half] - kid[full]) < few  # "Halving the steps changed little"
    trainings = retrained + [kid["ddpm"]]  # the DDPM cells' four trainings
    assert max(trainings) - min(trainings) > abs(kid["basic"] - kid["ddpm"])  # "one training's score moves far more"
    assert facts["longer_ddpm_kid"] < min(trainings)  # "closer than any of the four trainings"
    assert facts["longer_ddpm_batch_size"] == 2 * facts["ddpm_batch"]  # "twice the images"
    assert facts["longer_ddpm_steps"] == facts["ddpm_cpu_steps"]  # "for the same 1,000 updates"


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
    ns = run_cells(NOTEBOOK, ["sampling-5", "sampling-40"], namespace=dict(lesson, net=ZeroNet(), device=torch.device("cpu")))
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
              samples=blocks(16), xs=[None] * 40)
    run_cells(NOTEBOOK, ["ddpm-training", "ddpm-sampling", "ddim-sampling"], namespace=ns)
    assert ns["ddpm_preset"] == ("mnist" if gpu else "mnist-cpu")
    assert len(ns["ddpm_losses"]) == ns["ddpm_steps"] and all(math.isfinite(v) for v in ns["ddpm_losses"])
    assert ns["ddpm_samples"].shape == ns["ddim_samples"].shape == (8, 1, 28, 28)
    assert len(ns["ddim_xs"]) == len(ns["ddim_x0s"]) == ns["sampling_steps"]


def test_ddpm_training_is_longer_on_a_gpu_and_short_in_quick_mode(cells, monkeypatch):
    steps = {}
    for gpu, quick in [(True, False), (False, False), (False, True)]:
        sizes_on(monkeypatch, gpu=gpu, quick=quick)
        steps[gpu, quick] = assigned(cells["ddpm-training"].source, "ddpm_steps", cu=cu)
    assert steps[True, False] >= steps[False, False] >= 1000 > 10 >= steps[False, True]


# --- issue 19: the bridge, the coefficients, conditioning on the trained model, re-run safety ------
def test_toy_sampler_is_ddim_for_the_toy_corruption(lesson, capsys):
    """The cell "bridge": our step equals DDIM's two moves (noise estimate, re-noise) for the
    toy corruption, for every step of every run length, not only the one the cell prints."""
    torch.manual_seed(0)
    names = dict(lesson, net=lesson["BasicUNet"]().eval(), digits=blocks(8), device=torch.device("cpu"))
    run_cells(NOTEBOOK, ["bridge"], namespace=names)
    out = capsys.readouterr().out
    assert float(re.search(r"largest difference of the two steps: (\S+)", out).group(1)) < 1e-5
    factor, ratio = (float(v) for v in re.search(r"mix_factor (\S+) = 1 - a_next/a = (\S+);", out).groups())
    assert factor == ratio == pytest.approx(1 / 3, abs=1e-4)
    for n in (5, 40):
        for i in range(n - 1):  # the last step (a_next = 0) lands on the prediction in both
            a, a_next = 1 - Fraction(i, n), 1 - Fraction(i + 1, n)
            assert 1 - a_next / a == Fraction(1, n - i)


def test_ddpm_step_keeps_part_of_the_noise_ddim_all_of_it(ddpm_names, capsys):
    """The cell "coefficients" against the schedulers themselves (clipping off, so that the
    predicted noise is the model's): DDIM's step = sqrt(a_prev) x0_hat + 0.898 eps_hat, DDPM's mean
    = sqrt(a_prev) x0_hat + 0.532 eps_hat, plus 0.723 z; both reach the noise level 0.898."""
    from diffusers import DDIMScheduler, DDPMScheduler

    run_cells(NOTEBOOK, ["coefficients"], namespace=dict(ddpm_names))
    out = capsys.readouterr().out
    keep_ddim = float(re.search(r"DDIM: (\S+) noise_hat", out).group(1))
    keep_ddpm, fresh = (float(v) for v in re.search(r"DDPM: (\S+) noise_hat \+ (\S+) z", out).groups())
    assert (keep_ddim, keep_ddpm, fresh) == (0.898, 0.532, 0.723)
    assert math.hypot(keep_ddpm, fresh) == pytest.approx(keep_ddim, abs=2e-3)
    a_bar = DDPMScheduler(num_train_timesteps=1000).alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x_t, eps_hat = torch.randn(2, 1, 8, 8, generator=g), torch.randn(2, 1, 8, 8, generator=g)
    x0_hat = (x_t - (1 - a_bar[500]).sqrt() * eps_hat) / a_bar[500].sqrt()
    ddim = DDIMScheduler(num_train_timesteps=1000, clip_sample=False)
    ddim.set_timesteps(10)
    torch.testing.assert_close(ddim.step(eps_hat, 500, x_t).prev_sample,
                               a_bar[400].sqrt() * x0_hat + keep_ddim * eps_hat, atol=2e-3, rtol=0)
    ddpm = DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    ddpm.set_timesteps(10)
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))
    step = ddpm.step(eps_hat, 500, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    torch.testing.assert_close(step, a_bar[400].sqrt() * x0_hat + keep_ddpm * eps_hat + fresh * z, atol=2e-3, rtol=0)


class TellMeT(torch.nn.Module):
    """Stands in for a trained DDPM model: knows the true noise and the true timestep, and
    predicts the noise the worse the further the t it is told is from the truth."""

    def __init__(self, noise, t_true):
        super().__init__()
        self.noise, self.t_true = noise, t_true

    def forward(self, x, t):
        t = int(torch.as_tensor(t).flatten()[0])
        return SimpleNamespace(sample=self.noise + abs(t - self.t_true) / 1000 * torch.ones_like(x))


def test_conditioning_demo_changes_only_the_told_timestep(ddpm_names, capsys):
    """The cell "conditioning": one x_t, three told timesteps; it prints each one's errors."""
    noise = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    seen = []

    class Recording(TellMeT):
        def forward(self, x, t):
            seen.append(x.clone())
            return super().forward(x, t)

    names = dict(ddpm_names, xb=blocks(8) * 2 - 1, noise=noise, ddpm=Recording(noise, 500),
                 device=torch.device("cpu"))
    run_cells(NOTEBOOK, ["conditioning"], namespace=names)
    assert len(seen) == 3 and all(torch.equal(seen[0], s) for s in seen)  # the same x_t each time
    errors = {int(t): float(e) for t, e in re.findall(r"told t = (\d+): MSE of the noise (\S+),", capsys.readouterr().out)}
    assert set(errors) == {200, 500, 800} and min(errors, key=errors.get) == 500


def test_sampler_comparison_starts_from_the_same_noise_with_equal_steps(ddpm_names, monkeypatch):
    """DDPM and both DDIM runs start from start_x and take sampling_steps steps."""
    monkeypatch.setenv("COURSE_QUICK", "1")
    torch.manual_seed(0)
    calls = []

    class Zero(torch.nn.Module):
        def forward(self, x, t):
            calls.append(float(torch.as_tensor(t).flatten()[0]))
            return SimpleNamespace(sample=torch.zeros_like(x))

    names = dict(ddpm_names, ddpm=Zero(), device=torch.device("cpu"), samples=blocks(16),
                 xs=[None] * 40)
    run_cells(NOTEBOOK, ["ddpm-sampling", "ddim-sampling"], namespace=names)
    steps = names["sampling_steps"]
    assert len(calls) == 3 * steps and calls[:steps] == calls[steps:2 * steps] == calls[2 * steps:]
    assert len(names["ddim_xs"]) == steps and torch.equal(names["ddim_xs"][0], names["start_x"])


def test_no_cell_reads_a_name_that_a_later_cell_assigns(cells):
    """Re-run safety, statically: rerunning any cell after a whole run sees the values it saw the
    first time (names read before assignment, inside the cell, are never reassigned later)."""
    import ast
    import builtins

    def reads_and_assigns(source):
        assigned, reads = set(), set()

        class Visitor(ast.NodeVisitor):
            def visit_FunctionDef(self, node):  # a body runs when called: its names resolve then
                assigned.add(node.name)

            visit_ClassDef = visit_FunctionDef

            def visit_Import(self, node):
                assigned.update((a.asname or a.name).split(".")[0] for a in node.names)

            visit_ImportFrom = visit_Import

            def visit_Assign(self, node):
                self.visit(node.value)
                for target in node.targets:
                    self.visit(target)

            def visit_For(self, node):
                self.visit(node.iter)
                self.visit(node.target)
                for statement in node.body + node.orelse:
                    self.visit(statement)

            def visit_comprehension(self, node):
                self.visit(node.iter)
                self.visit(node.target)
                for condition in node.ifs:
                    self.visit(condition)

            def visit_ListComp(self, node):
                for generator in node.generators:
                    self.visit(generator)
                self.visit(node.elt)

            visit_GeneratorExp = visit_SetComp = visit_ListComp

            def visit_DictComp(self, node):
                for generator in node.generators:
                    self.visit(generator)
                self.visit(node.key)
                self.visit(node.value)

            def visit_Name(self, node):
                if isinstance(node.ctx, ast.Store):
                    assigned.add(node.id)
                elif node.id not in assigned and not hasattr(builtins, node.id):
                    reads.add(node.id)

        Visitor().visit(ast.parse(source))
        return reads, assigned

    table = [(cell_id, *reads_and_assigns(cell.source)) for cell_id, cell in cells.items()]
    clashes = [f"{cell_id} reads {sorted(reads & later_assigned)}, which {later_id} assigns"
               for k, (cell_id, reads, _) in enumerate(table) for later_id, _, later_assigned in table[k + 1:]
               if reads & later_assigned]
    assert not clashes, clashes


def test_each_exercise_has_its_check_cell(cells):
    from course_utils.exercises import nb02

    for k in range(1, 7):
        source = cells[f"ex{k}-check"].source
        assert f"cu.exercises.nb02.ex{k}.check(" in source and hasattr(nb02, f"ex{k}")
