"""The interactive widgets of Unit 1: sliders over timesteps, corruption amounts and sampling steps.

Each function returns an object that displays itself (``display(w)`` or last expression of a
cell): a live slider where a widget front-end exists, a static strip of frames elsewhere (see
``widget_view``). Frames are computed once when the widget is built, so moving a slider never
reruns a model.
"""
from __future__ import annotations

import torch

from .settings import pick
from .user_warnings import warn_user
from .widget_frames import (
    MAX_IMAGES,
    SchedulePlot,
    check_batch,
    corruption_frames,
    guess_value_range,
    model_view_frames,
    noised_frames,
    schedule_caption,
    to_uint8,
)
from .widget_view import FrameWidget

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def _check_signed(x: torch.Tensor, name: str) -> None:
    """Diffusers models work on images in [-1, 1]: say so when ``x`` looks like [0, 1] or worse."""
    low, high = float(x.min()), float(x.max())
    if low < -1.01 or high > 1.01:
        raise ValueError(f"{name} must hold images in [-1, 1] (got values from {low:.2f} to {high:.2f}); "
                         "scale [0, 1] images with x * 2 - 1.")
    if low >= 0:
        warn_user(f"{name} has no negative values: diffusers models expect images in [-1, 1], "
                  "so [0, 1] images should be passed as x * 2 - 1.")


def _fixed_noise(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The one noise tensor a widget uses for every timestep (only t changes between frames)."""
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def _timestep_slider(timesteps: list[int], value: int | None = None):
    """An IntSlider when every timestep is present, otherwise a slider over the ones computed."""
    import ipywidgets as W

    if timesteps == list(range(timesteps[0], timesteps[-1] + 1)):
        return W.IntSlider(value=timesteps[0] if value is None else value, min=timesteps[0],
                           max=timesteps[-1], description="t", continuous_update=True)
    return W.SelectionSlider(options=[(str(t), t) for t in timesteps], value=timesteps[0] if value is None else value,
                             description="t", continuous_update=True)


class _OverTimesteps(FrameWidget):
    """A frame widget whose slider picks one of ``self.timesteps``."""

    @property
    def n_frames(self) -> int:
        return len(self.timesteps)

    def frame_index(self) -> int:
        return self.timesteps.index(self.slider.value)


class ForwardProcessWidget(_OverTimesteps):
    """x_t for every timestep of a scheduler, with fixed noise; see ``forward_process_widget``."""

    panel_titles = ["x_t"]
    has_plot = True

    def __init__(self, scheduler, x0: torch.Tensor, seed: int = 0):
        self.x0 = check_batch(x0, "x0").cpu()
        _check_signed(self.x0, "x0")
        self.scheduler = scheduler
        self.noise = _fixed_noise(self.x0, seed)
        self.timesteps = list(range(scheduler.config.num_train_timesteps))
        self.frames = {"x_t": noised_frames(scheduler, self.x0, self.noise, self.timesteps)}
        self.schedule_plot = SchedulePlot(scheduler.alphas_cumprod)
        self.slider = _timestep_slider(self.timesteps)
        self._build()

    def panel_frames(self, i):
        return [self.frames["x_t"][i]]

    def caption(self, i, plain=False):
        return schedule_caption(self.schedule_plot.alphas_cumprod, self.timesteps[i], plain)

    def plot_image(self, *indices):
        return self.schedule_plot.image(*(self.timesteps[i] for i in indices))


class ScheduleExplorer(FrameWidget):
    """Choose a beta schedule and watch the plot and the noised batch; see ``schedule_explorer``."""

    panel_titles = ["x_t"]
    has_plot = True

    def __init__(self, x0: torch.Tensor, num_train_timesteps: int = 1000, seed: int = 0):
        import ipywidgets as W

        self.x0 = check_batch(x0, "x0").cpu()
        _check_signed(self.x0, "x0")
        if int(num_train_timesteps) < 2:
            raise ValueError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
        self.num_train_timesteps = int(num_train_timesteps)
        self.noise = _fixed_noise(self.x0, seed)
        self.schedule = W.Dropdown(options=list(BETA_SCHEDULES), value="linear", description="beta_schedule",
                                   style={"description_width": "initial"})
        self.beta_start = W.FloatLogSlider(value=1e-4, base=10, min=-6, max=-2, step=0.1, description="beta_start",
                                           readout_format=".1e", continuous_update=False)
        self.beta_end = W.FloatLogSlider(value=0.02, base=10, min=-4, max=-0.3, step=0.1, description="beta_end",
                                         readout_format=".1e", continuous_update=False)
        self.slider = _timestep_slider(list(range(self.num_train_timesteps)), self.num_train_timesteps // 2)
        self._make_scheduler()
        for control in (self.schedule, self.beta_start, self.beta_end):
            control.observe(self._on_schedule, names="value")
        self._build(controls=(self.schedule, self.beta_start, self.beta_end))

    def _make_scheduler(self):
        from diffusers import DDPMScheduler

        self.scheduler = DDPMScheduler(num_train_timesteps=self.num_train_timesteps, beta_schedule=self.schedule.value,
                                       beta_start=self.beta_start.value, beta_end=self.beta_end.value)
        self.schedule_plot = SchedulePlot(self.scheduler.alphas_cumprod, title=self.schedule.value)
        cosine = self.schedule.value == "squaredcos_cap_v2"  # that schedule has no beta_start/beta_end
        self.beta_start.disabled = self.beta_end.disabled = cosine

    def _on_schedule(self, change=None):
        self._make_scheduler()
        self._cache.clear()
        self.refresh()

    @property
    def n_frames(self) -> int:
        return self.num_train_timesteps

    def frame_index(self) -> int:
        return int(self.slider.value)

    def noised(self, t: int) -> torch.Tensor:
        """x_t under the current schedule, as uint8 (tensor math only: cheap enough per move)."""
        x_t = self.scheduler.add_noise(self.x0, self.noise, torch.full((len(self.x0),), int(t), dtype=torch.long))
        return to_uint8(x_t, (-1.0, 1.0))

    def panel_frames(self, i):
        return [self.noised(i)]

    def caption(self, i, plain=False):
        return schedule_caption(self.schedule_plot.alphas_cumprod, i, plain)

    def plot_image(self, *indices):
        return self.schedule_plot.image(*indices)


class CorruptionWidget(FrameWidget):
    """``corrupt(x, amount)`` and a model's prediction per amount; see ``corruption_widget``."""

    panel_titles = ["corrupt(x, amount)", "model(x)"]

    def __init__(self, corrupt, model, x: torch.Tensor, device=None, seed: int = 0, num_frames: int = 21):
        import ipywidgets as W

        if isinstance(corrupt, torch.nn.Module) or not callable(corrupt):
            raise TypeError("corruption_widget(corrupt, model, x) takes your corrupt function first, then the model: "
                            f"got {type(corrupt).__name__} as corrupt")
        self.x = check_batch(x, "x").cpu()
        low, high = float(self.x.min()), float(self.x.max())
        if low < -0.01 or high > 1.01:
            raise ValueError(f"x must hold images in [0, 1] (got {low:.2f} to {high:.2f}), as the "
                             "from-scratch notebook's BasicUNet is trained on; for [-1, 1] use (x + 1) / 2.")
        if int(num_frames) < 2:
            raise ValueError(f"num_frames must be at least 2, got {num_frames}")
        device = device if device is not None else next(model.parameters()).device
        self.corrupt = corrupt
        self.amounts = torch.linspace(0, 1, int(num_frames)).tolist()
        self.frames = corruption_frames(model, self.x, self.amounts, corrupt, device, seed)
        self.slider = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=1 / (int(num_frames) - 1),
                                    description="amount", readout_format=".2f", continuous_update=True)
        self._build()

    @property
    def n_frames(self) -> int:
        return len(self.amounts)

    def frame_index(self) -> int:
        return min(range(len(self.amounts)), key=lambda i: abs(self.amounts[i] - self.slider.value))

    def panel_frames(self, i):
        return [self.frames["noisy"][i], self.frames["pred"][i]]

    def caption(self, i, plain=False):
        return f"amount={self.amounts[i]:.2f}" if plain else f"amount = {self.amounts[i]:.2f}"


class ModelViewWidget(_OverTimesteps):
    """x_t, the predicted noise and the predicted x0 per timestep; see ``model_view_widget``."""

    panel_titles = ["x_t", "predicted noise", "predicted x0"]
    tile = 64

    def __init__(self, model, scheduler, x0: torch.Tensor, device=None, seed: int = 0,
                 num_frames: int | None = None):
        self.x0 = check_batch(x0, "x0").cpu()
        _check_signed(self.x0, "x0")
        self.scheduler = scheduler
        self.noise = _fixed_noise(self.x0, seed)
        total = scheduler.config.num_train_timesteps
        device = torch.device(device if device is not None else next(model.parameters()).device)
        if num_frames is None:  # a CPU runs the unit's model ~30x slower than a GPU: fewer frames there
            num_frames = pick(full=100 if device.type == "cuda" else 50, quick=10)
        num_frames = min(total, int(num_frames))
        if num_frames < 2:
            raise ValueError(f"num_frames must be at least 2, got {num_frames}")
        self.timesteps = sorted(set(torch.linspace(0, total - 1, num_frames).round().long().tolist()))
        self.frames = model_view_frames(model, scheduler, self.x0, self.noise, self.timesteps, device)
        self.slider = _timestep_slider(self.timesteps)
        self._build()

    def x_t(self, i: int) -> torch.Tensor:
        """x_t of frame ``i`` as uint8, recomputed (cheap) rather than stored."""
        t = torch.full((len(self.x0),), self.timesteps[i], dtype=torch.long)
        return to_uint8(self.scheduler.add_noise(self.x0, self.noise, t), (-1.0, 1.0))

    def panel_frames(self, i):
        return [self.x_t(i), self.frames["eps"][i], self.frames["x0"][i]]

    def caption(self, i, plain=False):
        return schedule_caption(self.scheduler.alphas_cumprod, self.timesteps[i], plain)


class TrajectoryWidget(FrameWidget):
    """x_t and the predicted x0 at each step of a sampling run; see ``trajectory_widget``."""

    def __init__(self, xs, pred_x0s=None, steps=None, value_range=None):
        import ipywidgets as W

        xs = self._as_list(xs, "xs")
        preds = self._as_list(pred_x0s, "pred_x0s") if pred_x0s is not None else None
        if preds is not None and len(preds) != len(xs):
            raise ValueError(f"xs and pred_x0s must hold one batch per step: got {len(xs)} and {len(preds)}")
        if steps is not None:
            steps = [s.item() if isinstance(s, torch.Tensor) else s for s in steps]
            if len(steps) != len(xs):
                raise ValueError(f"steps must label each of the {len(xs)} recorded steps, got {len(steps)}")
        self.steps = steps
        self.value_range = tuple(value_range) if value_range else guess_value_range(xs + (preds or []))
        self.frames = {"x_t": torch.stack([to_uint8(x, self.value_range) for x in xs])}
        if preds is not None:
            self.frames["pred_x0"] = torch.stack([to_uint8(x, self.value_range) for x in preds])
        self.panel_titles = ["x_t", "predicted x0"][:len(self.frames)]
        self.slider = W.IntSlider(value=0, min=0, max=len(xs) - 1, description="step", continuous_update=True)
        self._build()

    @staticmethod
    def _as_list(batches, name: str) -> list[torch.Tensor]:
        """The recorded batches as CPU tensors (N, C, H, W), at most ``MAX_IMAGES`` images each."""
        if isinstance(batches, torch.Tensor):
            batches = list(batches)
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

    @property
    def n_frames(self) -> int:
        return len(self.frames["x_t"])

    def frame_index(self) -> int:
        return int(self.slider.value)

    def panel_frames(self, i):
        return [frames[i] for frames in self.frames.values()]

    def caption(self, i, plain=False):
        text = f"step {i + 1}/{self.n_frames}"
        if self.steps is not None:
            t = self.steps[i]
            text += f"\nt={t:g}" if plain else f"  |  t = {t:g}"
        return text


def forward_process_widget(scheduler, x0: torch.Tensor, seed: int = 0) -> ForwardProcessWidget:
    """A slider over t = 0..T-1 showing ``x0`` noised to x_t with one fixed noise tensor.

    Beside it: the schedule plot with a marker at t, and sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)
    and the SNR. ``x0`` is a batch in [-1, 1] (the first 8 images are shown). Used in
    "Introduction to Diffusers" (after ``add_noise``) and the DDPM section of "Diffusion Models
    from Scratch".
    """
    return ForwardProcessWidget(scheduler, x0, seed)


def schedule_explorer(x0: torch.Tensor, num_train_timesteps: int = 1000, seed: int = 0) -> ScheduleExplorer:
    """Pick ``beta_schedule`` and ``beta_start``/``beta_end`` of a ``DDPMScheduler``; the schedule
    plot and ``x0`` (in [-1, 1]) noised to a chosen t follow. Used in "Introduction to
    Diffusers" (section "The scheduler")."""
    return ScheduleExplorer(x0, num_train_timesteps, seed)


def corruption_widget(corrupt, model, x: torch.Tensor, device=None, seed: int = 0,
                      num_frames: int = 21) -> CorruptionWidget:
    """A slider over ``amount`` in [0, 1]: ``corrupt(x, amount)`` (same noise for every amount) and
    the model's prediction side by side. ``corrupt`` is the learner's own function (called as
    ``corrupt(x, amount)`` with one amount per image, under a fixed seed), so an edited corruption
    cell changes what the slider shows; ``x`` is a batch in [0, 1]. Used in "Diffusion Models
    from Scratch" (after training the BasicUNet)."""
    return CorruptionWidget(corrupt, model, x, device, seed, num_frames)


def model_view_widget(model, scheduler, x0: torch.Tensor, device=None, seed: int = 0,
                      num_frames: int | None = None) -> ModelViewWidget:
    """A slider over t: x_t, the model's predicted noise (``model(x_t, t).sample``, drawn over
    [-2, 2]) and the predicted clean image x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar).

    The model runs once, batched, on ``num_frames`` evenly spaced timesteps (default 100 on a GPU,
    50 on a CPU, 10 in quick mode). Used in "Introduction to Diffusers" (after training).
    """
    return ModelViewWidget(model, scheduler, x0, device, seed, num_frames)


def trajectory_widget(xs, pred_x0s=None, steps=None, value_range=None) -> TrajectoryWidget:
    """A slider over the steps of a sampling run: x_t and the predicted x0 at each step.

    ``xs`` and ``pred_x0s`` are the lists of batches a sampling loop recorded (one per step, any
    device, values in [-1, 1] or [0, 1], guessed unless ``value_range`` is given); ``steps`` are
    optional labels such as ``scheduler.timesteps``. Used by the sampling loops of both notebooks.
    """
    return TrajectoryWidget(xs, pred_x0s, steps, value_range)

