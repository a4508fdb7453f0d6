"""The display shared by every widget: a slider over precomputed frames, live or static.

A ``FrameWidget`` shows itself in two ways at once. Its ``_repr_mimebundle_`` holds the
ipywidgets view (JupyterLab, VS Code, Colab and Kaggle render that: a live slider) *and* a PNG
strip of a few frames plus plain text, which renderers without a widget front-end (nbconvert,
GitHub, nbmake's stored outputs, a console) show instead. Only core ipywidgets are used, so the
same code runs with ipywidgets 7.7 (Colab) and 8.x.

When the reading edition is built (``COURSE_BOOK=1``, set by ``tools/book.py``), the bundle holds a
kernel-free slider instead of the ipywidgets view: evenly spaced frames embedded as PNGs (under
about ``BOOK_BUDGET`` bytes per widget) and a few lines of JavaScript that swap them as the range
input moves. Learners' own notebooks never carry it, so they do not grow.
"""
from __future__ import annotations

import base64
import html
import io
import json

from PIL import Image

from .settings import env_flag
from .widget_frames import grid_image, png_bytes, static_grid, strip_image

#: Frames shown in the static strip.
STATIC_FRAMES = 5
#: PNG encodings kept per widget, so going back and forth does not re-encode.
CACHE_SIZE = 512
#: The environment flag the book build sets: widgets then display as kernel-free sliders.
BOOK_FLAG = "COURSE_BOOK"
#: Bytes of HTML one kernel-free slider may take (the frames are subsampled to fit).
BOOK_BUDGET = 950_000

# Runs once per slider (the ``data-ready`` mark), wherever the HTML lands: a Sphinx page,
# nbconvert's HTML, a trusted notebook. Keyboard and mouse come with the range input.
_SLIDER_JS = """(function () {
  document.querySelectorAll(".cu-slider:not([data-ready])").forEach(function (root) {
    root.setAttribute("data-ready", "1");
    var data = JSON.parse(root.querySelector("script.cu-slider-data").textContent);
    var input = root.querySelector("input.cu-slider-input");
    var label = root.querySelector(".cu-slider-label");
    var images = root.querySelectorAll("img.cu-slider-image");
    function show() {
      var k = Number(input.value);
      images.forEach(function (img) { img.src = "data:image/png;base64," + data.frames[k][Number(img.dataset.panel)]; });
      label.textContent = data.labels[k];
      root.setAttribute("data-frame", String(k));
    }
    input.addEventListener("input", show);
    show();
  });
})();"""


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
        self._controls = tuple(controls)
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

    # --- the kernel-free slider of the reading edition -----------------------------------------
    def _book_frame(self, i: int) -> list[bytes]:
        """Frame ``i`` as PNGs: the panels at their stored size (the page enlarges them with
        crisp pixels, as the live view does), then the plot if any."""
        panels = [png_bytes(grid_image(f, scale=1), compress_level=9) for f in self.panel_frames(i)]
        if not self.has_plot:
            return panels
        # a line plot needs few colours: a 32-colour palette makes it ~3x smaller, no visible change
        return panels + [png_bytes(self.plot_image(i).quantize(32, dither=Image.Dither.NONE), compress_level=9)]

    def book_frames(self, budget: int = BOOK_BUDGET) -> tuple[list[int], list[list[bytes]]]:
        """The frame indices the kernel-free slider embeds and their PNGs: evenly spaced, first and
        last included, as many as fit in ``budget`` bytes of base64 (all of them when they fit)."""
        n = self.n_frames
        probe = evenly_spaced(n, 3)
        per_frame = max(sum(len(b) for b in self._book_frame(i)) for i in probe) * 4 / 3 + 200
        k = max(2, min(n, int(budget / per_frame)))
        while True:
            indices = evenly_spaced(n, k)
            frames = [self._book_frame(i) for i in indices]
            size = sum(len(b) for f in frames for b in f) * 4 / 3
            if size <= budget or k <= 2:
                return indices, frames
            k = max(2, int(k * budget / size * 0.95))

    def book_html(self, budget: int = BOOK_BUDGET) -> str:
        """The kernel-free slider: a range input over embedded frames, a caption, and a note
        that says how many of the widget's frames the page holds."""
        indices, frames = self.book_frames(budget)
        data = {"labels": [self.caption(i) for i in indices],
                "frames": [[base64.b64encode(b).decode("ascii") for b in f] for f in frames]}
        n_panels = len(self.panel_titles)
        zoom = max(1, round(self.tile / self.panel_frames(0)[0].shape[-2]))  # the live view's tile size
        shown = ([(n_panels, "schedule", 1)] if self.has_plot else []) + [(p, t, zoom) for p, t in enumerate(self.panel_titles)]
        figures = []
        for p, title, scale in shown:
            width, height = Image.open(io.BytesIO(frames[0][p])).size
            figures.append(
                f'<figure style="margin:0 12px 8px 0"><figcaption style="font-size:0.85em">{html.escape(title)}</figcaption>'
                f'<img class="cu-slider-image" data-panel="{p}" alt="{html.escape(title)}" width="{width * scale}" '
                f'height="{height * scale}" style="image-rendering:pixelated;max-width:none" '
                f'src="data:image/png;base64,{data["frames"][0][p]}"></figure>')
        controls = [c.description for c in getattr(self, "_controls", ()) if getattr(c, "description", "")]
        note = (f"Kernel-free slider: {len(indices)} of {self.n_frames} frames embedded"
                + ("" if len(indices) == self.n_frames else " (evenly spaced)")
                + (f"; {', '.join(controls)} need a running notebook and stay at the values shown" if controls else "")
                + ". Run the notebook for the live widget.")
        name = html.escape(getattr(self.slider, "description", "") or "frame")
        payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        return (
            f'<div class="cu-slider" data-frames="{len(indices)}" data-total="{self.n_frames}" data-frame="0">'
            f'<div class="cu-slider-note" style="font-size:0.85em;color:#555">{html.escape(note)}</div>'
            f'<label style="display:flex;align-items:center;gap:8px;max-width:640px">{name}'
            f'<input class="cu-slider-input" type="range" min="0" max="{len(indices) - 1}" step="1" value="0" '
            f'aria-label="{name}" style="flex:1"></label>'
            f'<div class="cu-slider-label" style="font-family:monospace;white-space:pre">{html.escape(data["labels"][0])}</div>'
            '<div class="cu-slider-panels" style="display:flex;flex-wrap:wrap;align-items:flex-start">'
            + "".join(figures) + '</div>'
            f'<script type="application/json" class="cu-slider-data">{payload}</script>'
            f'<script>{_SLIDER_JS}</script></div>')

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}: {self.n_frames} frames; "
                "open in Jupyter with ipywidgets to move the slider>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        if env_flag(BOOK_FLAG):  # the reading edition: no widget model to lose, a slider that needs no kernel
            return {"text/html": self.book_html(), "text/plain": repr(self)}
        # The widget-view entry is what ipywidgets itself returns (7.x and 8.x: protocol 2.0).
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.ui.model_id},
            "image/png": base64.b64encode(self.static_png()).decode("ascii"),  # as IPython's Image does
            "text/plain": repr(self),
        }
