"""The widgets, headless: move each slider and compare what is shown with values computed directly."""
import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils as cu
from course_utils.widget_frames import SchedulePlot, split_prediction
from course_utils.widget_view import evenly_spaced

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMScheduler, UNet2DModel  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def same_picture(shown: Image.Image, expected: Image.Image, tolerance: int = 0):
    assert shown.size == expected.size
    diff = np.abs(pixels(shown) - pixels(expected))
    assert diff.max() <= tolerance, f"pixels differ by up to {diff.max()}"


def shown_as(x, value_range, **kw):
    """What a widget panel should show for the float batch ``x``: 4 per row, 3x for 32 px."""
    return cu.show_images(x, nrow=4, value_range=value_range, scale=kw.get("scale", 3))


@pytest.fixture(scope="module")
def scheduler():
    return DDPMScheduler(num_train_timesteps=1000)


@pytest.fixture(scope="module")
def x0():
    return torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.fixture(scope="module")
def forward(scheduler, x0):
    return cu.forward_process_widget(scheduler, x0, seed=3)


class CountingUNet(torch.nn.Module):
    """A tiny UNet2DModel that counts its calls (the widgets must not rerun it on a slider move)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(8, 16), norm_num_groups=4,
                                down_block_types=("DownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "UpBlock2D"))
        self.calls = 0

    def forward(self, x, t):
        self.calls += 1
        return self.unet(x, t)


# --- forward process -------------------------------------------------------------------------------
def test_forward_process_shows_add_noise_with_fixed_noise(forward, scheduler, x0):
    assert torch.equal(forward.noise, torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)))
    for t in (0, 137, 999):
        forward.slider.value = t
        expected = scheduler.add_noise(x0, forward.noise, torch.full((8,), t, dtype=torch.long))
        same_picture(forward.shown_images()[0], shown_as(expected, (-1, 1)))


def test_forward_process_numbers_are_the_schedulers(forward, scheduler):
    forward.slider.value = 500
    assert "t = 500" in forward.label.value
    assert "√ᾱ = 0.279" in forward.label.value  # stored: DDPM's linear schedule at t=500
    for t in (10, 700):
        forward.slider.value = t
        ab = float(scheduler.alphas_cumprod[t])
        assert f"√ᾱ = {ab ** 0.5:.3f}" in forward.label.value
        assert f"√(1-ᾱ) = {(1 - ab) ** 0.5:.3f}" in forward.label.value
        assert f"SNR = {ab / (1 - ab):.3g}" in forward.label.value


def test_forward_process_plot_marks_t(forward):
    plot = forward.schedule_plot
    forward.slider.value = 250
    at_250 = pixels(Image.open(io.BytesIO(forward.plot.value)))
    base = pixels(plot.base)
    column = round(plot.x_pixel(250))
    top, bottom = sorted(int(round(y)) for y in (plot.y_pixel(1.0), plot.y_pixel(0.0)))
    changed_columns = np.nonzero(np.abs(at_250 - base).sum(axis=(0, 2)))[0]
    assert changed_columns.min() >= column - 5 and changed_columns.max() <= column + 5
    # the marker runs down the whole axes, dark
    assert (at_250[top + 5:bottom - 5, column].sum(axis=1) < 300).mean() > 0.8
    forward.slider.value = 900
    assert not np.array_equal(pixels(Image.open(io.BytesIO(forward.plot.value))), at_250)


def test_schedule_plot_pixels_follow_the_axes():
    plot = SchedulePlot(DDPMScheduler(num_train_timesteps=100).alphas_cumprod)
    assert plot.x_pixel(0) < plot.x_pixel(50) < plot.x_pixel(99) < plot.base.width
    assert 0 < plot.y_pixel(1.0) < plot.y_pixel(0.0) < plot.base.height


def test_forward_process_frames_stay_small(forward):
    nbytes = sum(f.nbytes for f in forward.frames.values())
    assert nbytes == 1000 * 8 * 3 * 32 * 32  # uint8: 24.6 MB
    assert nbytes < 50e6


def test_static_fallback_in_the_mime_bundle(forward):
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(forward)
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == forward.ui.model_id
    assert "forward" in data["text/plain"].lower()
    strip = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert strip.size == forward.static_image().size
    assert evenly_spaced(1000) == [0, 250, 500, 749, 999]
    # five frame columns under the plot, each at least a 2x2 grid of 64 px tiles wide, and different
    assert strip.width > 5 * 2 * 64 and strip.height > forward.schedule_plot.base.height + 2 * 64
    cells = pixels(strip)[-70:-10]
    step = strip.width // 5
    assert not np.array_equal(cells[:, step:2 * step], cells[:, 3 * step:4 * step])


# --- schedule explorer --------------------------------------------------------------------------------
def test_schedule_explorer_follows_the_controls(x0):
    w = cu.schedule_explorer(x0, num_train_timesteps=200, seed=5)
    w.slider.value = 60
    for name in ("linear", "scaled_linear", "squaredcos_cap_v2"):
        w.schedule.value = name
        reference = DDPMScheduler(num_train_timesteps=200, beta_schedule=name,
                                  beta_start=w.beta_start.value, beta_end=w.beta_end.value)
        assert torch.allclose(w.scheduler.alphas_cumprod, reference.alphas_cumprod)
        expected = reference.add_noise(x0, w.noise, torch.full((8,), 60, dtype=torch.long))
        same_picture(w.shown_images()[0], shown_as(expected, (-1, 1)))
        assert f"√ᾱ = {float(reference.alphas_cumprod[60]) ** 0.5:.3f}" in w.label.value
        assert w.beta_start.disabled == w.beta_end.disabled == (name == "squaredcos_cap_v2")
    w.schedule.value = "linear"
    before = w.scheduler.alphas_cumprod.clone()
    w.beta_end.value = 0.1
    assert w.scheduler.config.beta_end == pytest.approx(0.1)
    assert float(w.scheduler.alphas_cumprod[60]) < float(before[60])  # more noise per step


# --- corruption ---------------------------------------------------------------------------------------
def test_corruption_widget_shows_corrupt_and_prediction():
    torch.manual_seed(0)
    model = cu.BasicUNet()
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    w = cu.corruption_widget(cu.corrupt, model, x, seed=7, num_frames=11)
    w.slider.value = 0.0
    same_picture(w.shown_images()[0], shown_as(x, (0, 1)))
    w.slider.value = 0.3
    assert w.label.value == "amount = 0.30"
    torch.manual_seed(7)
    noisy = cu.corrupt(x, 0.3)
    with torch.no_grad():
        pred = model(noisy)
    same_picture(w.shown_images()[0], shown_as(noisy, (0, 1)))
    same_picture(w.shown_images()[1], shown_as(pred, (0, 1)), tolerance=1)
    Image.open(io.BytesIO(w.static_png())).verify()


def test_corruption_widget_uses_the_learners_corrupt():
    """An edited corruption cell changes what the slider shows: here the original unit's form
    (``amount.view(-1, 1, 1, 1)``) with a darkening instead of noise, and one with Gaussian noise."""
    def darken(x, amount):
        return x * (1 - amount.view(-1, 1, 1, 1))

    def gaussian(x, amount):
        amount = amount.view(-1, 1, 1, 1)
        return (x * (1 - amount) + torch.randn_like(x) * amount * 0.1).clamp(0, 1)

    model = cu.BasicUNet()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    w = cu.corruption_widget(darken, model, x, num_frames=5)
    w.slider.value = 0.5
    same_picture(w.shown_images()[0], shown_as(x * 0.5, (0, 1)))
    with torch.no_grad():
        same_picture(w.shown_images()[1], shown_as(model(x * 0.5), (0, 1)), tolerance=1)
    w = cu.corruption_widget(gaussian, model, x, seed=3, num_frames=5)
    w.slider.value = 0.75
    torch.manual_seed(3)
    same_picture(w.shown_images()[0], shown_as(gaussian(x, torch.full((3,), 0.75)), (0, 1)))
    w.slider.value = 0.25  # the same noise at every amount: only the amount changes
    torch.manual_seed(3)
    same_picture(w.shown_images()[0], shown_as(gaussian(x, torch.full((3,), 0.25)), (0, 1)))


def test_corruption_widget_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cu.corruption_widget(cu.corrupt, cu.BasicUNet(), torch.rand(2, 1, 28, 28) * 2 - 1)
    with pytest.raises(TypeError, match="corrupt function first"):
        cu.corruption_widget(cu.BasicUNet(), torch.rand(2, 1, 28, 28), "cpu")  # the old order (model, x, device)
    with pytest.raises(ValueError, match="shaped like x"):
        cu.corruption_widget(lambda x, amount: x[:, :, :14], cu.BasicUNet(), torch.rand(2, 1, 28, 28))


# --- model view -----------------------------------------------------------------------------------------
def test_model_view_predictions_and_no_rerun(scheduler, x0):
    model = CountingUNet().train()
    w = cu.model_view_widget(model, scheduler, x0, seed=4, num_frames=5)
    assert w.timesteps == [0, 250, 500, 749, 999]
    assert model.training, "the widget must restore the model's training mode"
    calls = model.calls
    for t in (250, 500):
        w.slider.value = t
        ts = torch.full((8,), t, dtype=torch.long)
        x_t = scheduler.add_noise(x0, w.noise, ts)
        with torch.no_grad():
            eps = model.eval().unet(x_t, ts).sample
        ab = scheduler.alphas_cumprod[t]
        pred_x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        shown = w.shown_images()  # three panels: 2x tiles, so they fit side by side
        same_picture(shown[0], shown_as(x_t, (-1, 1), scale=2))
        same_picture(shown[1], shown_as(eps, (-2, 2), scale=2), tolerance=1)
        same_picture(shown[2], shown_as(pred_x0, (-1, 1), scale=2), tolerance=1)
        assert f"√ᾱ = {float(ab) ** 0.5:.3f}" in w.label.value
    assert model.calls == calls, "moving the slider must not run the model"


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_split_prediction_recovers_noise_and_x0(prediction_type):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.randn(3, 1, 4, 4, generator=g)
    ab = torch.tensor([0.9, 0.5, 0.1])
    a = ab.view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    output = {"epsilon": eps, "sample": x0, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0}[prediction_type]
    got_eps, got_x0 = split_prediction(output, x_t, ab, prediction_type)
    assert torch.allclose(got_eps, eps, atol=1e-5) and torch.allclose(got_x0, x0, atol=1e-5)


# --- trajectory ------------------------------------------------------------------------------------------
def test_trajectory_widget_steps_through_the_run(scheduler):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(8, 3, 32, 32, generator=g) * (1 - i / 6) for i in range(6)]
    preds = [x.clamp(-1, 1) * 0.5 for x in xs]
    steps = scheduler.timesteps[:6]
    w = cu.trajectory_widget(xs, preds, steps=steps)
    w.slider.value = 3
    assert w.label.value == f"step 4/6  |  t = {int(steps[3])}"
    same_picture(w.shown_images()[0], shown_as(xs[3], (-1, 1)))
    same_picture(w.shown_images()[1], shown_as(preds[3], (-1, 1)))
    assert len(w.images) == 2


def test_trajectory_widget_guesses_unit_range_and_takes_one_list():
    xs = [torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    w = cu.trajectory_widget(xs)
    assert w.value_range == (0.0, 1.0) and len(w.images) == 1
    silu_preds = [x - 0.27 for x in xs]  # BasicUNet ends in a SiLU: [0, 1] outputs dip to -0.28
    assert cu.trajectory_widget(xs, silu_preds).value_range == (0.0, 1.0)
    w.slider.value = 2
    same_picture(w.shown_images()[0], shown_as(xs[2], (0, 1)))
    assert w.label.value == "step 3/4"


def test_trajectory_widget_explains_bad_input():
    xs = [torch.rand(2, 1, 28, 28) for _ in range(3)]
    with pytest.raises(ValueError, match="one batch per step"):
        cu.trajectory_widget(xs, xs[:2])
    with pytest.raises(ValueError, match="empty"):
        cu.trajectory_widget([])
    with pytest.raises(ValueError, match="label each"):
        cu.trajectory_widget(xs, steps=[1, 2])


# --- input checks -------------------------------------------------------------------------------------------
def test_forward_process_explains_bad_input(scheduler):
    with pytest.raises(ValueError, match=r"x \* 2 - 1"):
        cu.forward_process_widget(scheduler, torch.rand(2, 3, 8, 8) * 255)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        cu.forward_process_widget(scheduler, torch.rand(8, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        cu.forward_process_widget(scheduler, np.zeros((1, 3, 8, 8)))


def test_more_than_eight_images_are_cut(capsys):
    small = DDPMScheduler(num_train_timesteps=10)
    w = cu.forward_process_widget(small, torch.rand(12, 3, 8, 8) * 2 - 1)
    assert w.frames["x_t"].shape == (10, 8, 3, 8, 8)
    assert "first 8 of 12" in capsys.readouterr().out


# --- in a kernel without a widget front-end (what nbmake and nbconvert do) ------------------------
def test_widgets_execute_in_a_headless_kernel(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from pathlib import Path

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # the kernel imports this checkout
    cells = [
        "import torch\nfrom diffusers import DDPMScheduler\nimport course_utils as cu\n"
        "x0 = torch.rand(4, 3, 16, 16) * 2 - 1",
        "cu.forward_process_widget(DDPMScheduler(num_train_timesteps=20), x0)",
        "w = cu.trajectory_widget([x0 * (1 - i / 5) for i in range(5)])\ndisplay(w)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells[1:]:
        outputs = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
        assert len(outputs) == 1, cell.outputs
        data = outputs[0]["data"]
        assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"} <= set(data)
        Image.open(io.BytesIO(base64.b64decode(data["image/png"]))).verify()
