"""The one display every widget returns: a slider over precomputed frames, live or static.

A ``FrameWidget`` is built from data: image panels (a title and, per slider position, one uint8
(N, C, H, W) batch), one caption per position, the slider's positions, and optionally a plot
drawn with positions marked and controls above the slider. It shows itself two ways at once: its
``_repr_mimebundle_`` holds the ipywidgets view (JupyterLab, VS Code, Colab and Kaggle render
that: a live slider) *and* a PNG strip of a few frames plus plain text, which renderers without a
widget front-end show instead (nbconvert, GitHub, nbmake's stored outputs, a console). Only core
ipywidgets are used, so the same code runs with ipywidgets 7.7 (Colab) and 8.x.
"""
from __future__ import annotations

import base64
from bisect import bisect_left
from typing import Callable, Mapping, Sequence

from PIL import Image

from .widget_drawing import grid_image, png_bytes, static_grid, strip_caption, strip_image

#: Frames shown in the static strip.
STATIC_FRAMES = 5
#: PNG encodings kept per widget, so going back and forth does not re-encode.
CACHE_SIZE = 512


def evenly_spaced(n: int, k: int = STATIC_FRAMES) -> list[int]:
    """``k`` distinct indices from 0 to n - 1, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _slider(positions: list, description: str, value):
    """An IntSlider over consecutive integers, a SelectionSlider over other integers, a FloatSlider over floats."""
    import ipywidgets as W

    value = positions[0] if value is None else value
    if all(isinstance(p, int) for p in positions):
        if positions == list(range(positions[0], positions[-1] + 1)):
            return W.IntSlider(value=value, min=positions[0], max=positions[-1], description=description,
                               continuous_update=True)
        return W.SelectionSlider(options=[(str(p), p) for p in positions], value=value, description=description,
                                 continuous_update=True)
    step = (positions[-1] - positions[0]) / max(1, len(positions) - 1)
    return W.FloatSlider(value=value, min=positions[0], max=positions[-1], step=step, description=description,
                         readout_format=".2f", continuous_update=True)


class FrameWidget:
    """A slider over frames, the line of numbers of the frame shown, its image panels and an optional plot.

    - ``panels``: {title: frames}, ``frames[i]`` the uint8 (N, C, H, W) batch at position ``i``
      (a tensor (F, N, C, H, W), or any sequence that computes its items).
    - ``captions``: the text under the slider at each position (plain text: the live label, the
      static strip and the reading edition all show it).
    - ``positions``: the slider's value at each frame (timesteps, amounts, step numbers), ascending.
    - ``plot``: ``plot(*indices)`` draws a picture with those frames marked (the live view marks
      one, the static strip all of its columns); None for no plot.
    - ``controls``: ipywidgets shown above the slider (a subclass that owns them reacts to them).
    - ``tile``: about how many pixels an image gets in the live view; ``name`` what its text form calls it.

    Everything shown is looked up or drawn from the stored frames: no model runs on a slider move.
    """

    def __init__(self, panels: Mapping[str, Sequence], captions: Sequence[str], positions: Sequence, *,
                 description: str = "t", value=None, plot: Callable[..., Image.Image] | None = None,
                 controls=(), tile: int = 96, name: str = "widget"):
        self.name = name
        self.panels = dict(panels)
        self.captions = list(captions)
        self.positions = list(positions)
        lengths = {len(self.captions), len(self.positions), *(len(f) for f in self.panels.values())}
        if len(lengths) != 1 or not self.captions:
            raise ValueError(f"every panel, the captions and the positions need one entry per frame, got lengths {lengths}")
        self.plot_image = plot
        self.controls = tuple(controls)
        self.tile = tile
        self.slider = _slider(self.positions, description, value)
        self._build()

    @property
    def n_frames(self) -> int:
        return len(self.captions)

    def frame_index(self) -> int:
        """The frame whose position is nearest the slider's value."""
        value, positions = self.slider.value, self.positions
        k = bisect_left(positions, value)
        if k == len(positions) or (k > 0 and value - positions[k - 1] <= positions[k] - value):
            k -= 1
        return k

    def panel_frames(self, i: int) -> list:
        """The uint8 (N, C, H, W) batches of frame ``i``, one per panel."""
        return [frames[i] for frames in self.panels.values()]

    # --- the live view ---------------------------------------------------------------------------
    def _build(self):
        import ipywidgets as W

        self._cache: dict = {}
        self.label = W.Label(value="")
        self.images = [W.Image(format="png") for _ in self.panels]
        self.plot = W.Image(format="png") if self.plot_image is not None else None
        self.slider.layout = W.Layout(width="95%", max_width="640px")
        self.slider.style = {"description_width": "initial"}
        boxes = ([self.plot] if self.plot is not None else []) + [
            W.VBox([W.Label(value=title), image]) for title, image in zip(self.panels, self.images)]
        rows = ([W.HBox(list(self.controls))] if self.controls else []) + [
            self.slider, self.label, W.HBox(boxes, layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))]
        self.ui = W.VBox(rows)
        self.slider.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def _encoded(self, i: int) -> list[bytes]:
        if i not in self._cache:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            plot = [png_bytes(self.plot_image(i))] if self.plot is not None else []
            self._cache[i] = [png_bytes(grid_image(frame, tile=self.tile)) for frame in self.panel_frames(i)] + plot
        return self._cache[i]

    def refresh(self):
        """Show the frame the slider points at (called on every slider move)."""
        i = self.frame_index()
        encoded = self._encoded(i)
        for image, data in zip(self.images, encoded):
            image.value = data
        if self.plot is not None:
            self.plot.value = encoded[-1]
        self.label.value = self.captions[i]

    # --- the static fallback -----------------------------------------------------------------
    def static_image(self) -> Image.Image:
        """A strip of a few frames: what renderers without a widget front-end show."""
        indices = evenly_spaced(self.n_frames)
        columns = [(strip_caption(self.captions[i]), [static_grid(f) for f in self.panel_frames(i)]) for i in indices]
        top = self.plot_image(*indices) if self.plot_image is not None else None
        return strip_image(columns, list(self.panels), top=top)

    def static_png(self) -> bytes:
        """The static strip, PNG-encoded."""
        return png_bytes(self.static_image(), compress_level=6)

    def __repr__(self) -> str:
        return f"<{self.name} widget: {self.n_frames} frames; open in Jupyter with ipywidgets to move the slider>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        # The widget-view entry is what ipywidgets itself returns (7.x and 8.x: protocol 2.0).
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.ui.model_id},
            "image/png": base64.b64encode(self.static_png()).decode("ascii"),  # as IPython's Image does
            "text/plain": repr(self),
        }

