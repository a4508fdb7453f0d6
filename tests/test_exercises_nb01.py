"""Notebook 01's exercise checks: each rejects the typical wrong answer with its own sentence, in
both languages, and accepts the solution it prints."""
import re

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

import course_utils as cu
from course_utils.exercises import nb01


@pytest.fixture(autouse=True)
def english(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")


def _solution_code(exercise) -> str:
    return re.search(r"```python\n(.*?)```", exercise.solution().en, re.S).group(1)


def _rejects(exercise, *args, says: str):
    result = exercise.check(*args)
    assert not result, f"{exercise.name} accepted a wrong answer"
    assert says in result.text.en, result.text.en
    assert result.text.zh and result.text.zh != result.text.en  # a Chinese sentence too
    return result


@pytest.mark.parametrize("kwargs, says", [
    ({}, "at t = 500 only 0.28 of the image is left"),  # the default linear schedule
    ({"beta_start": 0.001, "beta_end": 0.004}, "at t = 999 there is still 0.29 of the image"),
    ({"num_train_timesteps": 500}, "it has 500 steps"),
])
def test_schedule_rejects_the_linear_schedules(kwargs, says):
    _rejects(nb01.schedule, DDPMScheduler(**{"num_train_timesteps": 1000, **kwargs}), says=says)


def test_schedule_rejects_what_is_not_a_scheduler():
    _rejects(nb01.schedule, [0.1, 0.2], says="not a scheduler")


def test_schedule_accepts_the_solution_and_sigmoid():
    namespace = {"DDPMScheduler": DDPMScheduler}
    exec(_solution_code(nb01.schedule), namespace)
    result = nb01.schedule.check(namespace["my_scheduler"])
    assert result and "0.70 at t = 500" in result.text.en
    assert nb01.schedule.check(DDPMScheduler(num_train_timesteps=1000, beta_schedule="sigmoid"))


def _add_noise_answer(body: str, scheduler):
    namespace = {"noise_scheduler": scheduler, "torch": torch}
    exec("def my_add_noise(x0, noise, t):\n"
         "    alpha_bar = noise_scheduler.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)\n"
         f"    {body}\n", namespace)
    return namespace["my_add_noise"]


@pytest.mark.parametrize("body, says", [
    ("return alpha_bar.sqrt() * x0", "it returns only the image part"),  # the notebook's starting point
    ("return x0", "it returns x0 unchanged"),
    ("return noise", "it returns the noise alone"),
    ("return alpha_bar * x0 + (1 - alpha_bar) * noise", "they must be their square roots"),
    ("return (1 - alpha_bar).sqrt() * x0 + alpha_bar.sqrt() * noise", "the two weights are swapped"),
    ("a = noise_scheduler.alphas_cumprod[(t - 1).clamp(min=0)].view(-1, 1, 1, 1)\n"
     "    return a.sqrt() * x0 + (1 - a).sqrt() * noise", "it uses alphas_cumprod[t - 1]"),
    ("a = noise_scheduler.alphas[t].view(-1, 1, 1, 1)\n"
     "    return a.sqrt() * x0 + (1 - a).sqrt() * noise", "alpha_t = 1 - beta_t of a single step"),
    ("return None", "it returned NoneType"),
    ("return (alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise)[0]", "it returned shape (3, 8, 8)"),
    ("return alpha_bar.sqrt() * x0 + (1 - alpha_bar) * noise", "differs from noise_scheduler.add_noise, most at t = "),
])
def test_add_noise_names_the_mistake(body, says):
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    _rejects(nb01.add_noise, _add_noise_answer(body, scheduler), scheduler, says=says)


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
def test_add_noise_accepts_the_solution(schedule):
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule=schedule)
    namespace = {"noise_scheduler": scheduler, "torch": torch}
    exec(_solution_code(nb01.add_noise), namespace)
    assert nb01.add_noise.check(namespace["my_add_noise"], scheduler)


def _tiny(**overrides):
    # butterflies-cpu's design at 16 px with few channels: seconds to build and run
    kwargs = cu.unet_config("butterflies-cpu", sample_size=16, block_out_channels=(16, 16, 16, 16), norm_num_groups=8,
                            attention_head_dim=8)
    kwargs.update(overrides)
    return UNet2DModel(**kwargs)


def test_no_attention_rejects_the_preset_and_a_forgotten_middle_block():
    _rejects(nb01.no_attention, _tiny(), says="down block 2 (AttnDownBlock2D) still has attention")
    plain = {"down_block_types": ("DownBlock2D",) * 4, "up_block_types": ("UpBlock2D",) * 4}
    _rejects(nb01.no_attention, _tiny(**plain), says="the middle block still has self-attention: add add_attention=False")
    _rejects(nb01.no_attention, torch.nn.Linear(2, 2), says="pass the UNet2DModel you built")


def test_no_attention_accepts_the_solution():
    namespace = {"cu": cu, "UNet2DModel": UNet2DModel, "preset": "butterflies-cpu"}
    exec(_solution_code(nb01.no_attention), namespace)
    result = nb01.no_attention.check(namespace["small_model"])
    assert result and "no attention anywhere" in result.text.en
