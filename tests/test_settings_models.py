import pytest
import torch

import course_utils as cu
from course_utils.basic_unet import BasicUNet
from course_utils.corruption import corrupt
from course_utils.settings import env_flag


def test_quick_mode_and_pick(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert cu.is_quick() and cu.pick(full=30, quick=1) == 1
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert not cu.is_quick() and cu.pick(full=30, quick=1) == 30


def test_pick_chooses_per_device(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cu.pick(gpu=30, cpu=8, quick=1) == 30
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cu.pick(gpu=30, cpu=8, quick=1) == 8
    monkeypatch.setenv("COURSE_QUICK", "yes")
    assert cu.pick(gpu=30, cpu=8, quick=1) == 1


@pytest.mark.parametrize("kwargs", [dict(full=1, quick=2, gpu=3, cpu=4), dict(gpu=3, quick=1), dict(full=3)])
def test_pick_refuses_ambiguous_sizes(kwargs):
    with pytest.raises(TypeError, match="pick"):
        cu.pick(**kwargs)


@pytest.mark.parametrize("value, expected", [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                             ("0", False), ("", False), ("no", False), ("false", False)])
def test_env_flag_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("SOME_FLAG", value)
    assert env_flag("SOME_FLAG") is expected


def test_device_is_usable():
    device = cu.get_device()
    assert torch.ones(2, device=device).sum().item() == 2


def test_seed_everything_repeats_runs():
    cu.seed_everything(3)
    a = (torch.randn(4), torch.rand(2))
    cu.seed_everything(3)
    b = (torch.randn(4), torch.rand(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_basic_unet_parameters_and_shape():
    net = BasicUNet()
    assert cu.count_parameters(net) == 309_057  # "about 309k parameters" in notebook 02
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_basic_unet_stored_output():
    # Guards the architecture against silent edits: a seeded net on a fixed input.
    torch.manual_seed(0)
    net = BasicUNet()
    x = torch.linspace(0, 1, 28 * 28).view(1, 1, 28, 28)
    y = net(x)
    assert abs(y.mean().item() - 0.051285) < 1e-4, y.mean()
    expected_row = torch.tensor([0.063925, 0.069728, 0.081136, 0.065109])
    assert torch.allclose(y[0, 0, 14, :4], expected_row, atol=1e-4), y[0, 0, 14, :4]


def test_unet_presets():
    assert cu.count_parameters(cu.make_unet("butterflies")) == 18_536_323
    model = cu.make_unet("butterflies-cpu")
    x = torch.randn(2, 3, 32, 32)
    assert model(x, torch.tensor([0, 999])).sample.shape == x.shape
    assert cu.make_unet("mnist")(torch.randn(1, 1, 28, 28), 5).sample.shape == (1, 1, 28, 28)
    assert cu.butterflies_preset_for("cpu") == "butterflies-cpu"
    assert cu.butterflies_preset_for("cuda") == "butterflies"


def test_unknown_preset_names_the_choices():
    import pytest
    with pytest.raises(ValueError, match="butterflies-cpu"):
        cu.make_unet("butterfly")


def test_a_few_training_steps_lower_the_loss():
    # The from-scratch objective on a fixed batch: predict the clean image from a corrupted one.
    cu.seed_everything(0)
    net = BasicUNet()
    x = torch.rand(16, 1, 28, 28)
    amount = torch.rand(16)
    noisy = corrupt(x, amount)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.mse_loss(net(noisy), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
