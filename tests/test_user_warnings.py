"""Warnings about the learner's input name the learner's line, not a line inside course_utils."""
import warnings

import numpy as np
import torch
from PIL import Image

import course_utils as cu
from course_utils.user_warnings import warn_user


def _only_warning(record):
    assert len(record) == 1, [str(w.message) for w in record]
    return record[0]


def test_a_widget_given_unit_range_images_warns_at_the_caller():
    x0 = torch.rand(2, 3, 8, 8)  # [0, 1]: the learner forgot x * 2 - 1
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cu.schedule_explorer(x0, num_train_timesteps=10)
    warning = _only_warning(record)
    assert "x * 2 - 1" in str(warning.message)
    assert warning.filename == __file__  # this line, not widgets.py


def test_a_skipped_image_file_warns_at_the_caller(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cu.load_butterflies(size=8, source=tmp_path)
    warning = _only_warning(record)
    assert "broken.jpg" in str(warning.message) and warning.filename == __file__


def test_warn_user_called_from_outside_the_package_points_at_its_caller():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_user("look here")
    assert _only_warning(record).filename == __file__
