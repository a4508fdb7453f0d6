"""The reading edition's form of the course widgets: a slider that needs no kernel.

While ``tools/book.py`` executes a notebook for the site, a hidden first cell calls
``register()``: IPython then displays every ``course_utils`` widget (a ``FrameWidget``) as the
HTML below instead of its ipywidgets view, so the page keeps a working slider without a kernel.
Evenly spaced frames are embedded as PNGs (under about ``BUDGET`` bytes per widget) with a few
lines of JavaScript that swap them as the range input moves. The package knows nothing of this:
learners' notebooks never carry it, so they do not grow.
"""
from __future__ import annotations

import base64
import html
import io
import json

from PIL import Image

from course_utils.widget_drawing import grid_image, png_bytes
from course_utils.widget_view import FrameWidget, evenly_spaced

#: Bytes of HTML one kernel-free slider may take (the frames are subsampled to fit).
BUDGET = 950_000

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


def frame_pngs(widget: FrameWidget, i: int) -> list[bytes]:
    """Frame ``i`` as PNGs: the panels at their stored size (the page enlarges them with crisp
    pixels, as the live view does), then the plot if any."""
    panels = [png_bytes(grid_image(f, scale=1), compress_level=9) for f in widget.panel_frames(i)]
    if widget.plot_image is None:
        return panels
    # a line plot needs few colours: a 32-colour palette makes it ~3x smaller, no visible change
    return panels + [png_bytes(widget.plot_image(i).quantize(32, dither=Image.Dither.NONE), compress_level=9)]


def book_frames(widget: FrameWidget, budget: int = BUDGET) -> tuple[list[int], list[list[bytes]]]:
    """The frame indices the kernel-free slider embeds and their PNGs: evenly spaced, first and
    last included, as many as fit in ``budget`` bytes of base64 (all of them when they fit)."""
    n = widget.n_frames
    per_frame = max(sum(len(b) for b in frame_pngs(widget, i)) for i in evenly_spaced(n, 3)) * 4 / 3 + 200
    k = max(2, min(n, int(budget / per_frame)))
    while True:
        indices = evenly_spaced(n, k)
        frames = [frame_pngs(widget, i) for i in indices]
        size = sum(len(b) for f in frames for b in f) * 4 / 3
        if size <= budget or k <= 2:
            return indices, frames
        k = max(2, int(k * budget / size * 0.95))


def book_html(widget: FrameWidget, budget: int = BUDGET) -> str:
    """The kernel-free slider: a range input over embedded frames, a caption, and a note that
    says how many of the widget's frames the page holds."""
    indices, frames = book_frames(widget, budget)
    data = {"labels": [widget.captions[i] for i in indices],
            "frames": [[base64.b64encode(b).decode("ascii") for b in f] for f in frames]}
    titles = list(widget.panels)
    zoom = max(1, round(widget.tile / widget.panel_frames(0)[0].shape[-2]))  # the live view's tile size
    shown = ([(len(titles), "schedule", 1)] if widget.plot_image is not None else []) + [(p, t, zoom) for p, t in enumerate(titles)]
    figures = []
    for p, title, scale in shown:
        width, height = Image.open(io.BytesIO(frames[0][p])).size
        figures.append(
            f'<figure style="margin:0 12px 8px 0"><figcaption style="font-size:0.85em">{html.escape(title)}</figcaption>'
            f'<img class="cu-slider-image" data-panel="{p}" alt="{html.escape(title)}" width="{width * scale}" '
            f'height="{height * scale}" style="image-rendering:pixelated;max-width:none" '
            f'src="data:image/png;base64,{data["frames"][0][p]}"></figure>')
    controls = [c.description for c in widget.controls if getattr(c, "description", "")]
    note = (f"Kernel-free slider: {len(indices)} of {widget.n_frames} frames embedded"
            + ("" if len(indices) == widget.n_frames else " (evenly spaced)")
            + (f"; {', '.join(controls)} need a running notebook and stay at the values shown" if controls else "")
            + ". Run the notebook for the live widget.")
    name = html.escape(widget.slider.description or "frame")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\u0021--")
    return (
        f'<div class="cu-slider" data-frames="{len(indices)}" data-total="{widget.n_frames}" data-frame="0">'
        f'<div class="cu-slider-note" style="font-size:0.85em;color:#555">{html.escape(note)}</div>'
        f'<label style="display:flex;align-items:center;gap:8px;max-width:640px">{name}'
        f'<input class="cu-slider-input" type="range" min="0" max="{len(indices) - 1}" step="1" value="0" '
        f'aria-label="{name}" style="flex:1"></label>'
        f'<div class="cu-slider-label" style="font-family:monospace;white-space:pre">{html.escape(data["labels"][0])}</div>'
        '<div class="cu-slider-panels" style="display:flex;flex-wrap:wrap;align-items:flex-start">'
        + "".join(figures) + '</div>'
        f'<script type="application/json" class="cu-slider-data">{payload}</script>'
        f'<script>{_SLIDER_JS}</script></div>')


def book_bundle(widget: FrameWidget, include=None, exclude=None) -> dict:
    """What the page shows for a widget: the kernel-free slider (no widget model to lose, no static strip)."""
    return {"text/html": book_html(widget), "text/plain": repr(widget)}


def register(shell=None) -> None:
    """Display every course widget as a kernel-free slider in this IPython session (the book's hidden first cell)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    shell.display_formatter.mimebundle_formatter.for_type(FrameWidget, book_bundle)
