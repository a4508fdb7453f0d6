"""How the widgets draw: image grids, the static strip, PNG encoding and the marked schedule plot.

The frames themselves (``widget_frames``) are uint8 tensors; everything here turns them into
pictures, the same pictures in the live view, the static strip and the reading edition.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .plotting import plot_schedule, schedule_curves, show_images

#: Images per row in a widget's grid, so two grids fit side by side.
GRID_COLUMNS = 4


def display_scale(height: int, tile: int = 96) -> int:
    """How much to enlarge images of this height so a tile is about ``tile`` px (32 px -> 3x)."""
    return max(1, round(tile / height))


def grid_image(frame: torch.Tensor, scale: int | None = None, nrow: int = GRID_COLUMNS, tile: int = 96) -> Image.Image:
    """One stored uint8 frame (N, C, H, W) as the PIL grid a widget shows, tiles about ``tile`` px."""
    scale = display_scale(frame.shape[-2], tile) if scale is None else scale
    return show_images(frame.float() / 255, nrow=nrow, value_range=(0.0, 1.0), scale=scale)


def static_grid(frame: torch.Tensor) -> Image.Image:
    """A frame's first four images, 2 x 2 and smaller: one cell of the static strip."""
    return grid_image(frame[:4], scale=max(1, display_scale(frame.shape[-2]) - 1), nrow=2)


def png_bytes(image: Image.Image, compress_level: int = 1) -> bytes:
    """PNG-encode a PIL image (what an ``ipywidgets.Image`` and the static strip hold).

    Level 1 by default: noisy frames hardly compress, and it encodes ~4x faster than level 6,
    which keeps a slider move quick. The static strip, stored in the notebook, uses 6.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


class SchedulePlot:
    """The schedule plot rendered once; a marker at t is drawn onto a copy in a millisecond.

    Re-plotting with matplotlib on every slider move would take ~100 ms; here matplotlib runs
    once and ``x_pixel``/``y_pixel`` map data coordinates to the rendered image's pixels.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, title: str | None = None, size=(4.6, 2.7), dpi: int = 80):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure  # no pyplot: nothing leaks into the notebook's output

        self.alphas_cumprod = alphas_cumprod.detach().double().cpu()
        self.signal, self.noise = schedule_curves(self.alphas_cumprod)
        fig = Figure(figsize=size, dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        plot_schedule(self.alphas_cumprod, ax=ax, title=title)
        ax.legend(loc="best", fontsize=8)  # placed where it hides no curve, whatever the schedule
        fig.tight_layout()
        canvas.draw()
        self.base = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy(), "RGB")
        self._transform = ax.transData.transform
        bottom, top = ax.get_ylim()
        self._y_span = (self.y_pixel(bottom), self.y_pixel(top))

    def x_pixel(self, t: float) -> float:
        """Column of timestep ``t`` in the rendered image."""
        return float(self._transform((t, 0.0))[0])

    def y_pixel(self, y: float) -> float:
        """Row of value ``y`` in the rendered image (images count rows from the top)."""
        return self.base.height - float(self._transform((0.0, y))[1])

    def image(self, *ts: int) -> Image.Image:
        """The plot with a vertical marker and dots on both curves at each timestep in ``ts``."""
        img = self.base.copy()
        draw = ImageDraw.Draw(img)
        for t in ts:
            x = self.x_pixel(t)
            draw.line([(x, self._y_span[1]), (x, self._y_span[0])], fill=(40, 40, 40), width=1)
            for value, colour in ((self.signal[t], (31, 119, 180)), (self.noise[t], (255, 127, 14))):
                y = self.y_pixel(value)
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour, outline=(0, 0, 0))
        return img


def label_font(size: int = 13):
    """A font for the static strip's captions (Pillow's built-in one, scalable where FreeType is)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def strip_caption(caption: str) -> str:
    """A widget's caption as the static strip writes it: one value per line (its columns are narrow),
    in ASCII (the built-in font has no √ or ᾱ): "t = 5  |  √ᾱ = 0.9" becomes "t=5\nsqrt(ab)=0.9"."""
    for fancy, plain in (("√(1-ᾱ)", "sqrt(1-ab)"), ("√ᾱ", "sqrt(ab)"), ("  |  ", "\n"), (" = ", "=")):
        caption = caption.replace(fancy, plain)
    return caption


def strip_image(columns: list[tuple[str, list[Image.Image]]], row_titles: list[str],
                top: Image.Image | None = None, gap: int = 8) -> Image.Image:
    """Compose the static fallback: an optional picture on top, then one column per frame
    (its caption above, one cell per panel below), the panel titles down the left side."""
    font = label_font()
    line_h = 16
    title_w = max(int(draw_width(t, font)) for t in row_titles) + gap
    caption_h = line_h * max(c.count("\n") + 1 for c, _ in columns) + 4
    cell_w = max(p.width for _, cells in columns for p in cells)
    cell_h = [max(cells[r].height for _, cells in columns) for r in range(len(row_titles))]
    width = max(title_w + len(columns) * (cell_w + gap), top.width if top else 0) + 2 * gap
    height = gap + (top.height + gap if top else 0) + caption_h + sum(h + gap for h in cell_h)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = gap
    if top is not None:
        canvas.paste(top, (gap, y))
        y += top.height + gap
    for k, (caption, cells) in enumerate(columns):
        x = gap + title_w + k * (cell_w + gap)
        draw.multiline_text((x, y), caption, fill=(60, 60, 60), font=font, spacing=3)
        row_y = y + caption_h
        for cell, h in zip(cells, cell_h):
            canvas.paste(cell, (x, row_y))
            row_y += h + gap
    row_y = y + caption_h
    for title, h in zip(row_titles, cell_h):
        draw.text((gap, row_y + h // 2 - line_h // 2), title, fill=(0, 0, 0), font=font)
        row_y += h + gap
    return canvas


def draw_width(text: str, font) -> float:
    """Width in pixels of ``text`` in ``font``."""
    return font.getlength(text) if hasattr(font, "getlength") else len(text) * 7
