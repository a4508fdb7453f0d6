"""The interactive widgets of Unit 1: sliders over timesteps, corruption amounts and sampling steps.

Each function checks its input, computes every frame once and returns a ``FrameWidget``
(``widget_view``), which displays itself (``display(w)`` or the last expression of a cell): a live
slider where a widget front-end exists, a static strip of frames elsewhere. Moving a slider never
reruns a model.
"""
from __future__ import annotations

import torch

from .plotting import value_range_of
from .settings import pick
from .user_warnings import warn_user
from .widget_drawing import SchedulePlot
from .widget_frames import (
    MAX_IMAGES,
    check_batch,
    corruption_frames,
    model_view_frames,
    noised_frames,
    schedule_captions,
    to_uint8,
)
from .widget_view import FrameWidget

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def _signed_images(x0, name: str) -> torch.Tensor:
    """``x0`` as a checked batch; diffusers models work on images in [-1, 1]: say so when it looks like [0, 1] or worse."""
    x0 = check_batch(x0, name).cpu()
    low, high = float(x0.min()), float(x0.max())
    if low < -1.01 or high > 1.01:
        raise ValueError(f"{name} must hold images in [-1, 1] (got values from {low:.2f} to {high:.2f}); "
                         "scale [0, 1] images with x * 2 - 1.")
    if value_range_of(x0) == (0.0, 1.0):
        warn_user(f"{name} looks like [0, 1] images (nothing below -0.5): diffusers models expect images in [-1, 1], "
                  "so [0, 1] images should be passed as x * 2 - 1.")
    return x0


def _fixed_noise(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The one noise tensor a widget uses for every frame (only t changes between frames)."""
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def forward_process_widget(scheduler, x0: torch.Tensor, seed: int = 0) -> FrameWidget:
    """A slider over t = 0..T-1 showing ``x0`` noised to x_t with one fixed noise tensor.

    Beside it: the schedule plot with a marker at t, and sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)
    and the SNR. ``x0`` is a batch in [-1, 1] (the first 8 images are shown). Used in
    "Introduction to Diffusers" (after ``add_noise``) and the DDPM section of "Diffusion Models
    from Scratch".
    """
    x0 = _signed_images(x0, "x0")
    timesteps = list(range(scheduler.config.num_train_timesteps))
    plot = SchedulePlot(scheduler.alphas_cumprod)
    return FrameWidget({"x_t": noised_frames(scheduler, x0, _fixed_noise(x0, seed), timesteps)},
                       schedule_captions(scheduler.alphas_cumprod, timesteps), timesteps, plot=plot.image,
                       name="forward process")


class _Noised:
    """x_t of a batch at every timestep of a scheduler, computed when asked (tensor math only: cheap per move)."""

    def __init__(self, scheduler, x0: torch.Tensor, noise: torch.Tensor):
        self.scheduler, self.x0, self.noise = scheduler, x0, noise

    def __len__(self) -> int:
        return self.scheduler.config.num_train_timesteps

    def __getitem__(self, t: int) -> torch.Tensor:
        t = torch.full((len(self.x0),), int(t), dtype=torch.long)
        return to_uint8(self.scheduler.add_noise(self.x0, self.noise, t), (-1.0, 1.0))


class _ScheduleExplorer(FrameWidget):
    """The one widget that recomputes: its controls choose the schedule, and frames follow."""

    def __init__(self, x0: torch.Tensor, noise: torch.Tensor, num_train_timesteps: int):
        import ipywidgets as W

        self.x0, self.noise, self.num_train_timesteps = x0, noise, num_train_timesteps
        self.schedule = W.Dropdown(options=list(BETA_SCHEDULES), value="linear", description="beta_schedule",
                                   style={"description_width": "initial"})
        self.beta_start = W.FloatLogSlider(value=1e-4, base=10, min=-6, max=-2, step=0.1, description="beta_start",
                                           readout_format=".1e", continuous_update=False)
        self.beta_end = W.FloatLogSlider(value=0.02, base=10, min=-4, max=-0.3, step=0.1, description="beta_end",
                                         readout_format=".1e", continuous_update=False)
        panels, captions, plot = self._frames()
        super().__init__(panels, captions, range(num_train_timesteps), value=num_train_timesteps // 2, plot=plot,
                         controls=(self.schedule, self.beta_start, self.beta_end), name="schedule explorer")
        for control in self.controls:
            control.observe(self._on_schedule, names="value")

    def _frames(self):
        from diffusers import DDPMScheduler

        self.scheduler = DDPMScheduler(num_train_timesteps=self.num_train_timesteps, beta_schedule=self.schedule.value,
                                       beta_start=self.beta_start.value, beta_end=self.beta_end.value)
        cosine = self.schedule.value == "squaredcos_cap_v2"  # that schedule has no beta_start/beta_end
        self.beta_start.disabled = self.beta_end.disabled = cosine
        alphas = self.scheduler.alphas_cumprod
        return ({"x_t": _Noised(self.scheduler, self.x0, self.noise)},
                schedule_captions(alphas, range(self.num_train_timesteps)),
                SchedulePlot(alphas, title=self.schedule.value).image)

    def _on_schedule(self, change=None):
        self.panels, self.captions, self.plot_image = self._frames()
        self._cache.clear()
        self.refresh()


def schedule_explorer(x0: torch.Tensor, num_train_timesteps: int = 1000, seed: int = 0) -> FrameWidget:
    """Pick ``beta_schedule`` and ``beta_start``/``beta_end`` of a ``DDPMScheduler``; the schedule
    plot and ``x0`` (in [-1, 1]) noised to a chosen t follow. Used in "Introduction to
    Diffusers" (section "The scheduler")."""
    x0 = _signed_images(x0, "x0")
    if int(num_train_timesteps) < 2:
        raise ValueError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
    return _ScheduleExplorer(x0, _fixed_noise(x0, seed), int(num_train_timesteps))


def model_device(model) -> torch.device:
    """The device of ``model``'s weights; a model without any needs ``device=`` said explicitly."""
    weight = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    if weight is None:
        raise ValueError(f"cannot tell which device {type(model).__name__} runs on (it has no parameters): "
                         "pass device=, e.g. device=\"cpu\"")
    return weight.device


def corruption_widget(corrupt, model, x: torch.Tensor, device=None, seed: int = 0, num_frames: int = 21) -> FrameWidget:
    """A slider over ``amount`` in [0, 1]: ``corrupt(x, amount)`` (same noise for every amount) and
    the model's prediction side by side. ``corrupt`` is the learner's own function (called as
    ``corrupt(x, amount)`` with one amount per image, under a fixed seed), so an edited corruption
    cell changes what the slider shows; ``x`` is a batch in [0, 1]. Used in "Diffusion Models
    from Scratch" (after training the BasicUNet)."""
    if isinstance(corrupt, torch.nn.Module) or not callable(corrupt):
        raise TypeError("corruption_widget(corrupt, model, x) takes your corrupt function first, then the model: "
                        f"got {type(corrupt).__name__} as corrupt")
    x = check_batch(x, "x").cpu()
    low, high = float(x.min()), float(x.max())
    if low < -0.01 or high > 1.01:
        raise ValueError(f"x must hold images in [0, 1] (got {low:.2f} to {high:.2f}), as the "
                         "from-scratch notebook's BasicUNet is trained on; for [-1, 1] use (x + 1) / 2.")
    if int(num_frames) < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    device = device if device is not None else model_device(model)
    amounts = torch.linspace(0, 1, int(num_frames)).tolist()
    frames = corruption_frames(model, x, amounts, corrupt, device, seed)
    return FrameWidget({"corrupt(x, amount)": frames["noisy"], "model(x)": frames["pred"]},
                       [f"amount = {a:.2f}" for a in amounts], amounts, description="amount", name="corruption")


def model_view_widget(model, scheduler, x0: torch.Tensor, device=None, seed: int = 0,
                      num_frames: int | None = None) -> FrameWidget:
    """A slider over t: x_t, the model's predicted noise (``model(x_t, t).sample``, drawn over
    [-2, 2]) and the predicted clean image x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar).

    The model runs once, batched, on ``num_frames`` evenly spaced timesteps (default 100 on a GPU,
    50 on a CPU, 10 in quick mode). Used in "Introduction to Diffusers" (after training).
    """
    x0 = _signed_images(x0, "x0")
    total = scheduler.config.num_train_timesteps
    device = torch.device(device if device is not None else model_device(model))
    if num_frames is None:  # a CPU runs the unit's model ~30x slower than a GPU: fewer frames there
        num_frames = pick(full=100 if device.type == "cuda" else 50, quick=10)
    num_frames = min(total, int(num_frames))
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    timesteps = sorted(set(torch.linspace(0, total - 1, num_frames).round().long().tolist()))
    frames = model_view_frames(model, scheduler, x0, _fixed_noise(x0, seed), timesteps, device)
    return FrameWidget({"x_t": frames["x_t"], "predicted noise": frames["eps"], "predicted x0": frames["x0"]},
                       schedule_captions(scheduler.alphas_cumprod, timesteps), timesteps, tile=64, name="model view")


def _recorded(batches, name: str) -> list[torch.Tensor]:
    """The recorded batches as CPU tensors (N, C, H, W), at most ``MAX_IMAGES`` images each."""
    batches = list(batches)
    if not batches:
        raise ValueError(f"{name} is empty: record one batch per sampling step (e.g. xs.append(x.cpu())).")
    out = []
    for b in batches:
        if not isinstance(b, torch.Tensor):
            raise TypeError(f"{name} must hold torch tensors, found {type(b).__name__}")
        b = b.detach().float().cpu()
        out.append((b.unsqueeze(0) if b.ndim == 3 else b)[:MAX_IMAGES])
    if any(b.shape != out[0].shape for b in out):
        raise ValueError(f"every batch in {name} must have the same shape, e.g. {tuple(out[0].shape)}")
    return out


def trajectory_widget(xs, pred_x0s=None, steps=None, value_range=None) -> FrameWidget:
    """A slider over the steps of a sampling run: x_t and the predicted x0 at each step.

    ``xs`` and ``pred_x0s`` are the lists of batches a sampling loop recorded (one per step, any
    device, values in [-1, 1] or [0, 1], told apart by ``plotting.value_range_of`` unless
    ``value_range`` is given); ``steps`` are optional labels such as ``scheduler.timesteps``. Used
    by the sampling loops of both notebooks.
    """
    panels = {"x_t": _recorded(xs, "xs")}
    if pred_x0s is not None:
        panels["predicted x0"] = _recorded(pred_x0s, "pred_x0s")
        if len(panels["predicted x0"]) != len(panels["x_t"]):
            raise ValueError(f"xs and pred_x0s must hold one batch per step: got {len(panels['x_t'])} and "
                             f"{len(panels['predicted x0'])}")
    n = len(panels["x_t"])
    captions = [f"step {i + 1}/{n}" for i in range(n)]
    if steps is not None:
        steps = [s.item() if isinstance(s, torch.Tensor) else s for s in steps]
        if len(steps) != n:
            raise ValueError(f"steps must label each of the {n} recorded steps, got {len(steps)}")
        captions = [f"{c}  |  t = {t:g}" for c, t in zip(captions, steps)]
    value_range = tuple(value_range) if value_range else value_range_of([b for f in panels.values() for b in f])
    frames = {title: torch.stack([to_uint8(b, value_range) for b in batches]) for title, batches in panels.items()}
    return FrameWidget(frames, captions, range(n), description="step", name="sampling trajectory")
