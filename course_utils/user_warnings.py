"""Warnings about the learner's input that point at the learner's own line.

Used by the widgets (images in [0, 1] given where [-1, 1] is expected) and the data loaders
(unreadable image files skipped, a cache that cannot be written). A fixed ``stacklevel`` points at
whichever course_utils function happened to call the check; ``warn_user`` walks out of the
package instead, so the warning names the notebook cell (or script line) that made the call.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


def _inside_package(filename: str) -> bool:
    try:
        return str(Path(filename).resolve().parent) == _PACKAGE
    except (OSError, ValueError):  # "<string>", "<ipython-input-...>" and the like
        return False


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first caller outside course_utils."""
    frame, level = sys._getframe(1), 2  # level 2: warn_user's caller
    while frame is not None and _inside_package(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level - 1 if frame is None else level)
