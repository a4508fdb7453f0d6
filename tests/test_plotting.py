import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch
from diffusers import DDPMScheduler
from PIL import Image

import course_utils as cu


def test_show_images_ranges_and_grid_size():
    x = torch.zeros(10, 3, 8, 8)
    x[0] = -1  # black in [-1, 1]
    grid = cu.show_images(x, nrow=4)
    assert grid.size == (4 * 10 + 2, 3 * 10 + 2) and grid.mode == "RGB"
    pixels = np.asarray(grid)
    assert pixels[2, 2].tolist() == [0, 0, 0]  # first image black
    assert pixels[2, 12].tolist() == [128, 128, 128]  # zero in [-1, 1] is mid-grey
    ones = np.asarray(cu.show_images(torch.ones(2, 1, 4, 4), value_range=(0, 1)))
    assert ones.max() == 255 and cu.show_images(torch.ones(2, 1, 4, 4)).mode == "L"
    assert cu.show_images(x, nrow=4, scale=3).size == (3 * 42, 3 * 32)


def test_one_value_range_rule():
    """[-1, 1] when anything is below -0.5: a SiLU-ended model's [0, 1] output (down to -0.28) stays [0, 1]."""
    from course_utils.plotting import value_range_of

    assert value_range_of(torch.rand(2, 1, 4, 4) - 0.28) == (0.0, 1.0)
    assert value_range_of(torch.rand(2, 1, 4, 4) * 2 - 1 - 0.1) == (-1.0, 1.0)
    assert value_range_of([torch.zeros(1), torch.full((1,), -0.9)]) == (-1.0, 1.0)
    silu = torch.full((1, 1, 2, 2), -0.28)
    assert np.asarray(cu.show_images(silu))[2, 2] == 0  # drawn as [0, 1]: black, not mid-grey


def test_image_grid_of_pil_images():
    images = [Image.new("RGB", (5, 5), c) for c in ("red", "green", "blue", "white")]
    grid = cu.image_grid(images, rows=2, cols=2)
    assert grid.size == (10, 10)
    assert grid.getpixel((7, 7)) == (255, 255, 255)
    assert cu.image_grid(images, rows=1).size == (20, 5)


def test_schedule_plot_data_equals_alphas_cumprod():
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    ax = cu.plot_schedule(scheduler)
    signal, noise = (line.get_ydata() for line in ax.get_lines()[:2])
    expected = scheduler.alphas_cumprod.double().numpy()
    assert np.allclose(signal ** 2, expected) and np.allclose(noise ** 2, 1 - expected)
    assert len(signal) == 1000


def test_loss_plot_linear_and_log():
    fig = cu.plot_losses([1.0, 0.5, 0.25, 0.2, 0.1], smooth=2)
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "log"]
    assert np.allclose(fig.axes[1].get_lines()[0].get_ydata(), [1.0, 0.5, 0.25, 0.2, 0.1])
