"""What the widgets show, computed once: frames as uint8, pictures, the marked schedule plot.

The widgets (``course_utils.widgets``) only look frames up, so moving a slider never reruns a
model. Frames are stored as uint8 (N, C, H, W) per slider position: 1000 timesteps of 8
images at 3x32x32 are 24.6 MB, and quantizing there gives exactly the pixels
``show_images`` would draw from the float tensor.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from .plotting import plot_schedule, schedule_curves, show_images, to_unit_range

#: Largest number of images a widget keeps per frame (more would only cost memory).
MAX_IMAGES = 8
#: Images per row in a widget's grid, so two grids fit side by side.
GRID_COLUMNS = 4
#: The predicted noise is drawn over this range (a unit Gaussian lies mostly inside it).
NOISE_RANGE = (-2.0, 2.0)


def check_batch(x, name: str) -> torch.Tensor:
    """A (N, C, H, W) float tensor from ``x`` (a single (C, H, W) image is made a batch of one).

    More than ``MAX_IMAGES`` images are cut to the first ``MAX_IMAGES``, with a note.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images (N, C, H, W), not {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a batch of images shaped (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] > MAX_IMAGES:
        print(f"Showing the first {MAX_IMAGES} of {x.shape[0]} images.")
        x = x[:MAX_IMAGES]
    return x.detach().float()


def to_uint8(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Images in ``value_range`` to uint8 on the CPU, rounded exactly as ``show_images`` rounds."""
    return (to_unit_range(x, value_range) * 255).round().to(torch.uint8)


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


def schedule_values(alphas_cumprod: torch.Tensor, t: int) -> tuple[float, float, float]:
    """sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t) and the signal-to-noise ratio alpha_bar/(1-alpha_bar)."""
    a = float(alphas_cumprod[int(t)].double())
    return math.sqrt(a), math.sqrt(1 - a), a / (1 - a) if a < 1 else math.inf


def schedule_caption(alphas_cumprod: torch.Tensor, t: int, plain: bool = False) -> str:
    """The numbers under a timestep slider; ``plain`` spells them in ASCII for the static strip."""
    signal, noise, snr = schedule_values(alphas_cumprod, t)
    if plain:  # one value per line: the static strip's columns are narrow
        return f"t={t}\nsqrt(ab)={signal:.3f}\nsqrt(1-ab)={noise:.3f}\nSNR={snr:.3g}"
    return f"t = {t}  |  √ᾱ = {signal:.3f}  |  √(1-ᾱ) = {noise:.3f}  |  SNR = {snr:.3g}"  # a Label folds spaces


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


def noised_frames(scheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps, chunk: int = 1024) -> torch.Tensor:
    """``scheduler.add_noise(x0, noise, t)`` for every t in ``timesteps``, as uint8 (T, N, C, H, W).

    Computed in chunks of about ``chunk`` images, so 1000 steps never hold 1000 float batches.
    """
    timesteps = torch.as_tensor(list(timesteps), dtype=torch.long)
    n = x0.shape[0]
    per_chunk = max(1, chunk // n)
    out = torch.empty((len(timesteps), *x0.shape), dtype=torch.uint8)
    for start in tqdm(range(0, len(timesteps), per_chunk), desc="x_t frames", delay=1, leave=False):
        ts = timesteps[start:start + per_chunk]
        xt = scheduler.add_noise(x0.repeat(len(ts), 1, 1, 1), noise.repeat(len(ts), 1, 1, 1), ts.repeat_interleave(n))
        out[start:start + len(ts)] = to_uint8(xt, (-1.0, 1.0)).view(len(ts), *x0.shape)
    return out


def split_prediction(output: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str):
    """(predicted noise, predicted x0) from a model output of any diffusers ``prediction_type``.

    For "epsilon" (the unit's), x0 = (x_t - sqrt(1-ab) * eps) / sqrt(ab): DDPM eq. 4 solved for x0.
    """
    a = alpha_bar.view(-1, 1, 1, 1).to(x_t)
    sa, s1a = a.sqrt(), (1 - a).sqrt()
    if prediction_type == "epsilon":
        eps = output
        return eps, (x_t - s1a * eps) / sa
    if prediction_type == "sample":
        return (x_t - sa * output) / s1a, output
    if prediction_type == "v_prediction":
        return sa * output + s1a * x_t, sa * x_t - s1a * output
    raise ValueError(f"Unknown prediction_type {prediction_type!r}: expected epsilon, sample or v_prediction")


@torch.no_grad()
def model_view_frames(model, scheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps, device,
                      batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Run the model once on x_t for every t in ``timesteps`` (batched); uint8 frames of
    its predicted noise (``"eps"``, drawn over ``NOISE_RANGE``) and predicted x0 (``"x0"``)."""
    timesteps = torch.as_tensor(list(timesteps), dtype=torch.long)
    n = x0.shape[0]
    per_batch = max(1, batch_size // n)
    alphas = scheduler.alphas_cumprod.cpu()
    prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
    out = {k: torch.empty((len(timesteps), *x0.shape), dtype=torch.uint8) for k in ("eps", "x0")}
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(timesteps), per_batch), desc="model on x_t", delay=1, leave=False):
            ts = timesteps[start:start + per_batch].repeat_interleave(n)
            x_t = scheduler.add_noise(x0.repeat(len(ts) // n, 1, 1, 1), noise.repeat(len(ts) // n, 1, 1, 1), ts)
            output = model(x_t.to(device), ts.to(device))
            output = getattr(output, "sample", output).float().cpu()
            eps, pred_x0 = split_prediction(output, x_t, alphas[ts], prediction_type)
            k = len(ts) // n
            out["eps"][start:start + k] = to_uint8(eps, NOISE_RANGE).view(k, *x0.shape)
            out["x0"][start:start + k] = to_uint8(pred_x0, (-1.0, 1.0)).view(k, *x0.shape)
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def corruption_frames(model, x: torch.Tensor, amounts, corrupt_fn, device, seed: int = 0,
                      batch_size: int = 128) -> dict[str, torch.Tensor]:
    """``corrupt_fn(x, amount)`` with the same noise for every amount, and the model's prediction.

    The noise is fixed by re-seeding a forked RNG before each call, so the lesson's own
    ``corrupt`` runs unchanged and only the amount differs between frames. The amount is passed
    as one value per image (a tensor of shape (N,)), the form every version of ``corrupt`` takes.
    """
    noisy = []
    for amount in amounts:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = corrupt_fn(x, torch.full((len(x),), float(amount)))
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            raise ValueError(f"corrupt(x, amount) must return a tensor shaped like x {tuple(x.shape)}, "
                             f"got {getattr(out, 'shape', type(out).__name__)}")
        noisy.append(out.detach().float().cpu())
    noisy = torch.stack(noisy)  # (A, N, C, H, W)
    flat = noisy.flatten(0, 1)
    preds = []
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(flat), batch_size), desc="model", delay=1, leave=False):
            output = model(flat[start:start + batch_size].to(device))
            preds.append(getattr(output, "sample", output).float().cpu())
    finally:
        model.train(was_training)
    pred = torch.cat(preds).view_as(noisy)
    return {"noisy": to_uint8(noisy, (0.0, 1.0)), "pred": to_uint8(pred, (0.0, 1.0))}


def guess_value_range(tensors) -> tuple[float, float]:
    """(-1, 1) if any value is below -0.5, else (0, 1): the two conventions of the unit.

    Not "any negative value": the from-scratch BasicUNet ends in a SiLU, so its [0, 1]
    predictions dip to -0.28, while a DDPM run starts from Gaussian noise far below -0.5.
    """
    low = min(float(t.min()) for t in tensors)
    return (-1.0, 1.0) if low < -0.5 else (0.0, 1.0)


def label_font(size: int = 13):
    """A font for the static strip's captions (Pillow's built-in one, scalable where FreeType is)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


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
