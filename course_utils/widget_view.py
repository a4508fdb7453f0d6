"""The display shared by every widget: a slider over precomputed frames, live or static.

A ``FrameWidget`` shows itself in two ways at once. Its ``_repr_mimebundle_`` holds the
ipywidgets view (JupyterLab, VS Code, Colab and Kaggle render that: a live slider) *and* a PNG
strip of a few frames plus plain text, which renderers without a widget front-end (nbconvert,
GitHub, nbmake's stored outputs, a console) show instead. Only core ipywidgets are used, so the
same code runs with ipywidgets 7.7 (Colab) and 8.x.
"""
from __future__ import annotations

import base64

from PIL import Image

from .widget_frames import grid_image, png_bytes, static_grid, strip_image

#: Frames shown in the static strip.
STATIC_FRAMES = 5
#: PNG encodings kept per widget, so going back and forth does not re-encode.
CACHE_SIZE = 512


def evenly_spaced(n: int, k: int = STATIC_FRAMES) -> list[int]:
    """``k`` distinct indices from 0 to n - 1, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class FrameWidget:
    """Base of the course's widgets: a slider, a line of numbers, image panels, an optional plot.

    Subclasses set ``slider`` and ``panel_titles`` and implement ``n_frames``,
    ``frame_index``, ``panel_frames``, ``caption`` and (if they have a plot) ``plot_image``.
    Everything shown is looked up or drawn from stored frames: no model runs on a slider move.
    """

    panel_titles: list[str] = []
    has_plot = False
    tile = 96  # px per image in the live view: three panels of 4 x 96 px would not fit side by side

    def _build(self, controls=()):
        """Create the ipywidgets UI (call once the subclass's frames exist)."""
        import ipywidgets as W

        self._cache: dict = {}
        self.label = W.Label(value="")
        self.images = [W.Image(format="png") for _ in self.panel_titles]
        self.plot = W.Image(format="png") if self.has_plot else None
        self.slider.layout = W.Layout(width="95%", max_width="640px")
        self.slider.style = {"description_width": "initial"}
        panels = ([self.plot] if self.plot is not None else []) + [
            W.VBox([W.Label(value=title), image]) for title, image in zip(self.panel_titles, self.images)]
        rows = ([W.HBox(list(controls))] if controls else []) + [
            self.slider, self.label, W.HBox(panels, layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))]
        self.ui = W.VBox(rows)
        self.slider.observe(self._on_change, names="value")
        self.refresh()

    # --- what subclasses provide -------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        raise NotImplementedError

    def frame_index(self) -> int:
        """The frame the slider points at."""
        raise NotImplementedError

    def panel_frames(self, i: int) -> list:
        """The uint8 (N, C, H, W) batches of frame ``i``, one per panel."""
        raise NotImplementedError

    def panel_images(self, i: int) -> list[Image.Image]:
        """The panels of frame ``i`` as the PIL grids the live view shows."""
        return [grid_image(frame, tile=self.tile) for frame in self.panel_frames(i)]

    def caption(self, i: int, plain: bool = False) -> str:
        raise NotImplementedError

    def plot_image(self, *indices: int) -> Image.Image | None:
        return None

    # --- the live view ---------------------------------------------------------------------------
    def _on_change(self, change=None):
        self.refresh()

    def _encoded(self, i: int) -> list[bytes]:
        if i not in self._cache:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            plot = [png_bytes(self.plot_image(i))] if self.plot is not None else []
            self._cache[i] = [png_bytes(img) for img in self.panel_images(i)] + plot
        return self._cache[i]

    def refresh(self):
        """Show the frame the slider points at (called on every slider move)."""
        i = self.frame_index()
        encoded = self._encoded(i)
        for image, data in zip(self.images, encoded):
            image.value = data
        if self.plot is not None:
            self.plot.value = encoded[-1]
        self.label.value = self.caption(i)

    def shown_images(self) -> list[Image.Image]:
        """The panels as currently displayed, decoded (used by the tests)."""
        import io

        return [Image.open(io.BytesIO(image.value)).convert("RGB") for image in self.images]

    # --- the static fallback -----------------------------------------------------------------
    def static_image(self) -> Image.Image:
        """A strip of a few frames: what renderers without a widget front-end show."""
        indices = evenly_spaced(self.n_frames)
        columns = [(self.caption(i, plain=True), [static_grid(f) for f in self.panel_frames(i)]) for i in indices]
        return strip_image(columns, self.panel_titles, top=self.plot_image(*indices) if self.has_plot else None)

    def static_png(self) -> bytes:
        """The static strip, PNG-encoded."""
        return png_bytes(self.static_image(), compress_level=6)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}: {self.n_frames} frames; "
                "open in Jupyter with ipywidgets to move the slider>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        # The widget-view entry is what ipywidgets itself returns (7.x and 8.x: protocol 2.0).
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.ui.model_id},
            "image/png": base64.b64encode(self.static_png()).decode("ascii"),  # as IPython's Image does
            "text/plain": repr(self),
        }
