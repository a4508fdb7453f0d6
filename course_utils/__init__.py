"""course_utils: the helpers both Unit 1 notebooks import (``import course_utils as cu``).

The lesson code (the corruption, the models the lesson builds, the training and sampling loops)
stays in the notebooks; this package holds what would only distract there. ``cu.`` offers exactly
what the notebooks use (``__all__``); everything else is imported from its module. One module a concern:

- ``settings``: device, quick mode (``COURSE_QUICK``), per-device sizes (``pick``), seeds, env flags
- ``data_sources``: butterflies and MNIST from the Hub, a folder, or the offline stand-ins
  (``butterfly_art`` draws the butterflies; ``image_prep`` decodes and caches tensors)
- ``batches``: shuffled, flipped mini-batches on the training device
- ``models``: the ``UNet2DModel`` presets; ``basic_unet`` (``BasicUNet``) and ``corruption`` (the linear
  ``corrupt``) are lesson code, exported from notebook 02's cells by tools/export_lesson_code.py
- ``plotting``: image grids and panels, the schedule and loss plots, a helper's source code
- ``diagrams``: the two UNet diagrams (``UNet2DModel`` and ``BasicUNet``), drawn from the models
- ``widgets``: the sliders; each returns a ``widget_view.FrameWidget`` (frames computed by
  ``widget_frames``, drawn by ``widget_drawing``)
- ``links``: the repository's one URL; ``user_warnings``: warnings pointing at the learner's line
- ``live_output``: run a command with its output streamed into the cell (``run_live``)
- ``standin_datasets``: the offline butterflies as a ``datasets.Dataset`` of JPEGs, like the Hub's
- ``exercises``: checks, hints and solutions for the notebooks' exercises (``cu.exercises.nb02.ex6``)
- ``hub_timeouts``: Hub calls bounded in time (``hub_call``; the training script's ``--push_to_hub``)
- ``train/`` (``loop``, ``args``, ``outputs``, ``checkpoints``): the training script,
  ``python -m course_utils.train`` or ``accelerate launch -m course_utils.train``
"""
from . import exercises
from .batches import BatchIterator
from .data_sources import hub_reachable, load_butterflies, load_mnist
from .diagrams import draw_basic_unet, draw_unet
from .hub_timeouts import hub_call
from .live_output import run_live
from .models import butterflies_preset_for, count_parameters, make_unet, unet_config
from .plotting import image_grid, plot_losses, plot_panels, plot_schedule, show_images, show_source
from .settings import get_device, is_quick, pick, seed_everything
from .standin_datasets import butterfly_standin_dataset
from .widgets import (
    corruption_widget,
    forward_process_widget,
    model_view_widget,
    schedule_explorer,
    trajectory_widget,
)

__all__ = [
    "exercises",
    "get_device", "is_quick", "pick", "seed_everything",
    "hub_reachable", "hub_call", "load_butterflies", "load_mnist", "BatchIterator",
    "butterflies_preset_for", "count_parameters", "make_unet", "unet_config",
    "image_grid", "plot_losses", "plot_panels", "plot_schedule", "show_images", "show_source",
    "draw_basic_unet", "draw_unet",
    "corruption_widget", "forward_process_widget", "model_view_widget", "schedule_explorer", "trajectory_widget",
    "run_live", "butterfly_standin_dataset",
]

__version__ = "0.1.0"
