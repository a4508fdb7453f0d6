"""course_utils: the helpers both Unit 1 notebooks import.

The lesson code (corrupting, training loops, sampling loops) stays in the notebooks; this
package holds what would only distract there: devices and seeds, data loading, pictures,
model presets, widgets and the training script (``python -m course_utils.train``).
"""
from .batches import BatchIterator
from .corruption import corrupt
from .data_sources import ImageData, hub_reachable, load_butterflies, load_mnist
from .models import BasicUNet, UNET_PRESETS, butterflies_preset_for, count_parameters, make_unet, unet_config
from .plotting import image_grid, make_grid, plot_losses, plot_schedule, schedule_curves, show_images
from .scratch_figures import draw_basic_unet, plot_panels
from .settings import get_device, is_quick, pick, seed_everything
from .source import show_source
from .widgets import (corruption_widget, forward_process_widget, model_view_widget, schedule_explorer,
                      trajectory_widget)

__version__ = "0.1.0"
