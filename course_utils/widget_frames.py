"""What the widgets show, computed once: frames as uint8 and the captions of the numbers.

The widgets (``course_utils.widgets``) only look frames up, so moving a slider never reruns a
model. Frames are stored as uint8 (N, C, H, W) per slider position: 1000 timesteps of 8
images at 3x32x32 are 24.6 MB, and quantizing there gives exactly the pixels
``show_images`` would draw from the float tensor. Drawing them is ``widget_drawing``'s job.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from .plotting import to_unit_range

#: Largest number of images a widget keeps per frame (more would only cost memory).
MAX_IMAGES = 8
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
    if x.shape[1] not in (1, 3):
        hint = " (channels last? use x.permute(0, 3, 1, 2))" if x.shape[-1] in (1, 3) else ""
        raise ValueError(f"{name} must have 1 or 3 channels in dimension 1, (N, C, H, W), got shape "
                         f"{tuple(x.shape)}{hint}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values: check the cell that made it (a diverged "
                         "training run gives NaN weights and NaN images)")
    if x.shape[0] > MAX_IMAGES:
        print(f"Showing the first {MAX_IMAGES} of {x.shape[0]} images.")
        x = x[:MAX_IMAGES]
    return x.detach().float()


def to_uint8(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Images in ``value_range`` to uint8 on the CPU, rounded exactly as ``show_images`` rounds."""
    return (to_unit_range(x, value_range) * 255).round().to(torch.uint8)


def schedule_values(alphas_cumprod: torch.Tensor, t: int) -> tuple[float, float, float]:
    """sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t) and the signal-to-noise ratio alpha_bar/(1-alpha_bar)."""
    a = float(alphas_cumprod[int(t)].double())
    return math.sqrt(a), math.sqrt(1 - a), a / (1 - a) if a < 1 else math.inf


def schedule_captions(alphas_cumprod: torch.Tensor, timesteps) -> list[str]:
    """The numbers under a timestep slider, one caption per timestep."""
    captions = []
    for t in timesteps:
        signal, noise, snr = schedule_values(alphas_cumprod, t)
        captions.append(f"t = {t}  |  √ᾱ = {signal:.3f}  |  √(1-ᾱ) = {noise:.3f}  |  SNR = {snr:.3g}")
    return captions


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


@contextmanager
def eval_mode(model):
    """The model in eval mode for the block, then back in the mode it was in (training or not)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def model_view_frames(model, scheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps, device,
                      batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Run the model once on x_t for every t in ``timesteps`` (batched); uint8 frames of x_t
    (``"x_t"``), its predicted noise (``"eps"``, drawn over ``NOISE_RANGE``) and predicted x0 (``"x0"``)."""
    timesteps = torch.as_tensor(list(timesteps), dtype=torch.long)
    n = x0.shape[0]
    per_batch = max(1, batch_size // n)
    alphas = scheduler.alphas_cumprod.cpu()
    prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
    out = {k: torch.empty((len(timesteps), *x0.shape), dtype=torch.uint8) for k in ("x_t", "eps", "x0")}
    with eval_mode(model):
        for start in tqdm(range(0, len(timesteps), per_batch), desc="model on x_t", delay=1, leave=False):
            ts = timesteps[start:start + per_batch].repeat_interleave(n)
            x_t = scheduler.add_noise(x0.repeat(len(ts) // n, 1, 1, 1), noise.repeat(len(ts) // n, 1, 1, 1), ts)
            output = model(x_t.to(device), ts.to(device))
            output = getattr(output, "sample", output).float().cpu()
            if not torch.isfinite(output).all():
                raise ValueError("the model's output holds NaN or infinite values: its weights are probably "
                                 "NaN after a diverged training run; retrain with a smaller learning rate")
            eps, pred_x0 = split_prediction(output, x_t, alphas[ts], prediction_type)
            k = len(ts) // n
            out["x_t"][start:start + k] = to_uint8(x_t, (-1.0, 1.0)).view(k, *x0.shape)
            out["eps"][start:start + k] = to_uint8(eps, NOISE_RANGE).view(k, *x0.shape)
            out["x0"][start:start + k] = to_uint8(pred_x0, (-1.0, 1.0)).view(k, *x0.shape)
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
    with eval_mode(model):
        for start in tqdm(range(0, len(flat), batch_size), desc="model", delay=1, leave=False):
            output = model(flat[start:start + batch_size].to(device))
            preds.append(getattr(output, "sample", output).float().cpu())
    pred = torch.cat(preds).view_as(noisy)
    return {"noisy": to_uint8(noisy, (0.0, 1.0)), "pred": to_uint8(pred, (0.0, 1.0))}


