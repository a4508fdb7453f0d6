"""course_utils: the helpers both Unit 1 notebooks import.

The lesson code (the corruption, the models the lesson builds, the training and sampling loops)
stays in the notebooks; this package holds what would only distract there. One module a concern:

- ``settings``: device, quick mode (``COURSE_QUICK``), per-device sizes (``pick``), seeds, env flags
- ``data_sources``: butterflies and MNIST from the Hub, a folder, or the offline stand-ins
  (``butterfly_art`` draws the butterflies; ``image_prep`` decodes and caches tensors)
- ``batches``: shuffled, flipped mini-batches on the training device
- ``models``: the ``UNet2DModel`` presets; ``basic_unet`` (``BasicUNet``) and ``corruption`` (the linear
  ``corrupt``) are lesson code, exported from notebook 02's cells by tools/export_lesson_code.py
- ``plotting`` and ``scratch_figures``: image grids, schedule, loss and diagram figures
- ``unet_diagram``: the diagram of a ``UNet2DModel``, drawn from its config
- ``widgets`` (with ``widget_frames`` and ``widget_view``): the timestep sliders
- ``source``: show a helper's code in a notebook; ``links``: the repository's one URL
- ``live_output``: run a command with its output streamed into the cell (``run_live``)
- ``standin_datasets``: the offline butterflies as a ``datasets.Dataset`` of JPEGs, like the Hub's
- ``exercises``: checks, hints and solutions for the notebooks' exercises (``cu.exercises.nb02.ex6``)
- ``user_warnings``: warnings about the learner's input, pointing at the learner's line
- ``train/`` (``loop``, ``args``, ``outputs``, ``checkpoints``): the training script,
  ``python -m course_utils.train`` or ``accelerate launch -m course_utils.train``
"""
from . import exercises
from .batches import BatchIterator
from .corruption import corrupt
from .data_sources import ImageData, hub_reachable, load_butterflies, load_mnist
from .live_output import run_live
from .models import UNET_PRESETS, BasicUNet, butterflies_preset_for, count_parameters, make_unet, unet_config
from .plotting import image_grid, make_grid, plot_losses, plot_schedule, schedule_curves, show_images
from .scratch_figures import draw_basic_unet, plot_panels
from .settings import env_flag, get_device, is_quick, pick, seed_everything
from .source import show_source
from .standin_datasets import butterfly_standin_dataset
from .unet_diagram import draw_unet, unet_layout
from .widgets import (
    corruption_widget,
    forward_process_widget,
    model_view_widget,
    schedule_explorer,
    trajectory_widget,
)

__all__ = [
    "exercises", "BatchIterator", "corrupt", "ImageData", "hub_reachable", "load_butterflies", "load_mnist",
    "UNET_PRESETS", "BasicUNet", "butterflies_preset_for", "count_parameters", "make_unet", "unet_config",
    "image_grid", "make_grid", "plot_losses", "plot_schedule", "schedule_curves", "show_images",
    "draw_basic_unet", "plot_panels", "env_flag", "get_device", "is_quick", "pick", "seed_everything",
    "show_source", "corruption_widget", "forward_process_widget", "model_view_widget", "schedule_explorer",
    "trajectory_widget", "draw_unet", "unet_layout", "run_live", "butterfly_standin_dataset",
]

__version__ = "0.1.0"
