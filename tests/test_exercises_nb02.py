"""Notebook 02's exercise checks: each rejects a typical wrong answer with its own sentence and
accepts the solution (or a stand-in that behaves like a trained solution, where training one would
take minutes)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from course_utils.basic_unet import BasicUNet
from course_utils.exercises import nb02

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def english(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")



def says(result, phrase: str) -> bool:
    return phrase in str(result)


def digits(n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(n, 1, 28, 28)
    for img in x:
        r = torch.randint(3, 12, (1,), generator=g).item()
        img[0, r:r + 14, 12:15] = 1.0
    return x


# --- 1 -------------------------------------------------------------------------------------------
def test_ex1_rejects_digits_and_accepts_fashion():
    from course_utils.data_sources import DIGIT_CLASSES, FASHION_CLASSES

    mnist = SimpleNamespace(images=torch.rand(4, 1, 28, 28), classes=DIGIT_CLASSES, source="Hub: ylecun/mnist")
    result = nb02.ex1.check(mnist)
    assert not result and says(result, "These are digits") and says(result, 'cu.load_mnist("fashion_mnist")')
    shaped = SimpleNamespace(images=torch.rand(4, 28, 28), classes=FASHION_CLASSES, source="x")
    assert says(nb02.ex1.check(shaped), "FashionMNIST's are (N, 1, 28, 28)")
    fashion = SimpleNamespace(images=torch.rand(4, 1, 28, 28), classes=FASHION_CLASSES, source="Hub: fashion")
    assert nb02.ex1.check(fashion)


# --- 2 -------------------------------------------------------------------------------------------
def solution_sample(model, n_steps, n_images=8):
    x = torch.rand(n_images, 1, 28, 28)
    for i in range(n_steps):
        with torch.no_grad():
            pred = model(x)
        mix_factor = 1 / (n_steps - i)
        x = x * (1 - mix_factor) + pred * mix_factor
    return x


def test_ex2_accepts_the_sampler_and_names_a_wrong_step_size():
    assert nb02.ex2.check(solution_sample)

    def constant_step(model, n_steps, n_images=8):
        x = torch.rand(n_images, 1, 28, 28)
        for _ in range(n_steps):
            x = x * 0.5 + model(x) * 0.5
        return x

    result = nb02.ex2.check(constant_step)
    assert not result and says(result, "Step 0 moved 0.500 of the way") and says(result, "should move 1 / (n_steps - i) = 0.250")

    def gaussian_start(model, n_steps, n_images=8):
        x = torch.randn(n_images, 1, 28, 28)
        for i in range(n_steps):
            x = x + (model(x) - x) / (n_steps - i)
        return x

    assert says(nb02.ex2.check(gaussian_start), "start from torch.rand")
    assert says(nb02.ex2.check(lambda m, n, n_images=8: solution_sample(m, n, n_images)[0]), "expected a tensor of shape")


# --- 3 -------------------------------------------------------------------------------------------
def test_ex3_accepts_a_schedule_and_says_how_much_noise_it_leaves():
    result = nb02.ex3.check(lambda n: [0.3] * (n - 1) + [1.0])
    assert result and says(result, "leaves 0.0% of the starting noise")
    constant = nb02.ex3.check(lambda n: [0.3] * n)
    assert constant and says(constant, f"leaves {0.7 ** 10:.1%}")
    assert says(nb02.ex3.check(lambda n: [1 / (n - i) for i in range(1, n + 1)]), "raised ZeroDivisionError")
    assert says(nb02.ex3.check(lambda n: [2.0] * n), "The fraction of step 0 is 2")
    assert says(nb02.ex3.check(lambda n: [0.5] * (n - 1)), "returned 9 fractions")


# --- 4 -------------------------------------------------------------------------------------------
class Wider(nn.Module):
    """A wider BasicUNet, written out (a little wider than the unit's, to keep the test quick)."""

    def __init__(self):
        super().__init__()
        self.down_layers = nn.ModuleList([nn.Conv2d(1, 40, 5, padding=2), nn.Conv2d(40, 64, 5, padding=2),
                                          nn.Conv2d(64, 64, 5, padding=2)])
        self.up_layers = nn.ModuleList([nn.Conv2d(64, 64, 5, padding=2), nn.Conv2d(64, 40, 5, padding=2),
                                        nn.Conv2d(40, 1, 5, padding=2)])
        self.act, self.downscale, self.upscale = nn.SiLU(), nn.MaxPool2d(2), nn.Upsample(scale_factor=2)

    forward = BasicUNet.forward


def test_ex4_rejects_the_unchanged_model_and_accepts_a_wider_one():
    result = nb02.ex4.check(BasicUNet)
    assert not result and says(result, "It still has the unit's 309,057 parameters")

    class Detached(Wider):
        def forward(self, x):
            return super().forward(x).detach()

    assert says(nb02.ex4.check(Detached), "with nothing detached")

    class Frozen(Wider):
        def forward(self, x):
            return super().forward(x) * 0 + self.down_layers[0].bias.sum() * 0  # ignores its input

    assert says(nb02.ex4.check(Frozen), "Its loss did not fall")
    assert nb02.ex4.check(Wider)


# --- 5 -------------------------------------------------------------------------------------------
class ToldAmount(nn.Module):
    """Stands in for a trained answer: recovers the clean images when told the input's true amount
    of noise, and returns its input unchanged when told a wrong one (or, ``use_t=False``, always
    the same, whatever it is told)."""

    def __init__(self, x0: torch.Tensor, use_t: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.x0, self.use_t = x0, use_t

    def forward(self, x, t):
        true_amount = ((x - self.x0).mean() / (0.5 - self.x0).mean()).item()  # x = (1 - a) x0 + a noise
        told = t[0].item() / 999 if self.use_t else true_amount
        return SimpleNamespace(sample=self.x0 * self.weight if abs(told - true_amount) < 0.1 else x)


def test_ex5_rejects_a_model_trained_at_t0_and_accepts_one_that_uses_the_amount():
    x = digits()
    result = nb02.ex5.check(ToldAmount(x, use_t=False), x)
    assert not result and says(result, "the same output whatever timestep it is told")
    assert says(nb02.ex5.check(BasicUNet(), x), "Calling model(x, t) raised TypeError")
    assert nb02.ex5.check(ToldAmount(x), x)


# --- 6 -------------------------------------------------------------------------------------------
class Oracle(nn.Module):
    """Stands in for a trained noise predictor: knows x0 and the check's timesteps (300, 500, 700,
    in that order), so it recovers the noise from x_t exactly."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.x0, self.calls = x0 * 2 - 1, 0
        self.a_bar = nb02._linear_alphas_cumprod()

    def forward(self, x_t):
        t = (300, 500, 700)[self.calls % 3]
        self.calls += 1
        return (x_t - self.a_bar[t].sqrt() * self.x0) / (1 - self.a_bar[t]).sqrt() * self.weight


def test_ex6_names_the_last_silu_an_untrained_model_and_accepts_a_noise_predictor():
    x = digits()
    result = nb02.ex6.check(BasicUNet(), x)
    assert not result and says(result, "the SiLU after the last layer is still there")

    class NoSiLU(BasicUNet):
        def forward(self, x):
            return super().forward(x) - 0.5  # below the floor, but knows nothing

    assert says(nb02.ex6.check(NoSiLU(), x), "hardly better than predicting zeros")
    assert nb02.ex6.check(Oracle(x), x)


def test_every_exercise_has_a_hint_and_a_solution_in_both_languages():
    for k in range(1, 7):
        exercise = getattr(nb02, f"ex{k}")
        for text in (exercise.hint(), exercise.solution()):
            assert text.en.strip() and text.zh.strip() and text.en != text.zh or "```" in text.en
