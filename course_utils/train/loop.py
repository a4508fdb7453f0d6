"""The training run itself: set-up, one optimizer step, and the loop of epochs around it.

Part of ``python -m course_utils.train`` (see the package's docstring); ``main`` in ``__main__``
calls ``setup`` then ``train``. ``benchmarks/train_speed.py`` times ``update`` on its own.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..batches import BatchIterator
from . import checkpoints
from .outputs import LossLog, push, save_pipeline, save_samples


class UsageError(Exception):
    """A problem the user can fix (bad data, a mismatched checkpoint): reported in one line, exit code 2."""


class TrainingFailed(Exception):
    """The run cannot go on (a NaN loss, a full disk): reported in one line, exit code 1, nothing bad saved."""


def keyed_seed(*parts) -> int:
    """A 63-bit seed from any parts, e.g. (seed, rank, "epoch", 3): independent streams, no state to save."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2 ** 63 - 1)


@dataclass
class Run:
    """Everything one training run holds: built by ``setup``, advanced one optimizer step by ``update``."""
    args: Any
    accelerator: Any
    model: Any  # prepared by Accelerate (wrapped in DDP when there are several processes)
    optimizer: Any
    lr_scheduler: Any
    noise_scheduler: Any
    ema: Any
    batches: BatchIterator
    shard: torch.Tensor  # indices of the images this process trains on
    source: str
    num_images: int
    updates_per_epoch: int
    max_train_steps: int
    num_epochs: int
    noise_generator: torch.Generator
    run_id: str = ""  # the same for every checkpoint of one run, resumes included
    lock: Any = None  # checkpoints.RunLock of the main process
    global_step: int = 0
    finished: bool = False  # trained to the end and the pipeline saved
    checkpoint_step: int = -1  # the step of the newest checkpoint (of this run or the one resumed from)


def load_images(args):
    """The training images as (N, 3, res, res) in [-1, 1] through ``load_butterflies``."""
    from ..data_sources import load_butterflies

    source = Path(args.train_data_dir) if args.train_data_dir else args.dataset_name
    try:
        return load_butterflies(size=args.resolution, source=source, limit=args.max_train_samples,
                                crop="center" if args.center_crop else "squash")
    except (ValueError, FileNotFoundError) as error:  # a named data set or folder that cannot be loaded
        raise UsageError(str(error)) from error


def shard_indices(num_images: int, rank: int, world: int, seed: int) -> torch.Tensor:
    """The images process ``rank`` of ``world`` trains on: a seeded shuffle dealt out in turn.

    Every process gets the same number (the few left over are skipped, a different few per seed),
    so all processes run the same number of steps and none waits forever for the others.
    """
    per = num_images // world
    if per == 0:
        raise UsageError(f"Only {num_images} image(s) for {world} processes: use more images or fewer processes.")
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(keyed_seed(seed, "shards")))
    return order[rank:per * world:world]


def _trackers(report_to: str):
    from accelerate.utils import is_tensorboard_available

    if report_to == "none" or (report_to == "auto" and not is_tensorboard_available()):
        return None
    if not is_tensorboard_available():
        raise UsageError("--report_to tensorboard needs TensorBoard: `pip install tensorboard`, or use --report_to none.")
    return "tensorboard"


def setup(args) -> Run:
    """Build the accelerator, data shard, model, noise schedule, optimizer, LR schedule and EMA; resume if asked."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers import DDPMScheduler, UNet2DModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision, log_with=_trackers(args.report_to),
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")))
    lock = None
    if accelerator.is_main_process:  # one run per folder: before anything is written there
        try:
            lock = checkpoints.RunLock(output_dir).acquire()
        except checkpoints.CheckpointError as error:
            raise UsageError(str(error)) from error
    set_seed(args.seed)  # the same on every process, so every process builds the same initial model
    rank, world = accelerator.process_index, accelerator.num_processes

    quiet = contextlib.nullcontext() if accelerator.is_main_process else contextlib.redirect_stdout(io.StringIO())
    with accelerator.main_process_first(), quiet:  # the main process fills the tensor cache, the others read it
        data = load_images(args)
    shard = shard_indices(len(data.images), rank, world, args.seed)
    batches = BatchIterator(data.images[shard], args.train_batch_size, accelerator.device, flip=args.random_flip, seed=0)

    model = UNet2DModel.from_config(args.unet_config)
    noise_scheduler = DDPMScheduler(num_train_timesteps=args.num_train_timesteps, beta_schedule=args.beta_schedule,
                                    prediction_type=args.prediction_type)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)

    updates_per_epoch = math.ceil(len(batches) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or args.num_epochs * updates_per_epoch
    # Stepped once per optimizer step by this script, not by Accelerate (which would step it once per process).
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps,
                                 num_training_steps=max_train_steps)
    ema = None
    if args.use_ema:
        ema = EMAModel(model.parameters(), decay=args.ema_max_decay, use_ema_warmup=True, power=args.ema_power,
                       model_cls=UNet2DModel, model_config=model.config)
        ema.to(accelerator.device)

    # Checkpoints are written by ``checkpoints.save`` (safetensors and JSON), not by Accelerate's
    # save_state, which pickles registered objects: nothing is registered for checkpointing.
    model, optimizer = accelerator.prepare(model, optimizer)

    run = Run(args=args, accelerator=accelerator, model=model, optimizer=optimizer, lr_scheduler=lr_scheduler,
              noise_scheduler=noise_scheduler, ema=ema, batches=batches, shard=shard, source=data.source,
              num_images=len(data.images), updates_per_epoch=updates_per_epoch, max_train_steps=max_train_steps,
              num_epochs=math.ceil(max_train_steps / updates_per_epoch),
              noise_generator=torch.Generator(device=accelerator.device), run_id=uuid.uuid4().hex, lock=lock)
    if args.resume_path is not None:
        _resume(run, args.resume_path)
    return run


def _resume(run: Run, path: Path) -> None:
    try:
        state = checkpoints.read_state(path)
    except checkpoints.CheckpointError as error:  # damaged since the options were checked
        raise UsageError(f"Checkpoint {path} is damaged ({error}): resume from an earlier one.") from error
    before = state.get("layout", {})
    now = _layout(run)
    if before and before != now:
        raise UsageError(f"Checkpoint {path} was made with {before}, but this run has {now}: resume with the same "
                         "data, batch size, accumulation and number of processes, or start a new --output_dir.")
    try:
        checkpoints.load(run, path)
    except checkpoints.CheckpointError as error:
        raise UsageError(f"Checkpoint {path} is damaged ({error}): resume from an earlier one.") from error
    except (RuntimeError, KeyError, ValueError) as error:
        raise UsageError(f"Checkpoint {path} does not fit this run's model (--use_ema, --model_preset, "
                         f"--model_config_name_or_path): {str(error).splitlines()[0]}") from error
    if run.ema is not None:
        run.ema.to(run.accelerator.device)  # loaded on the CPU
    run.global_step = int(state["global_step"])
    run.run_id = state.get("run_id") or run.run_id
    if run.accelerator.is_main_process:
        print(f"Resuming from {path} at step {run.global_step}.", flush=True)


def _layout(run: Run) -> dict:
    """What must match for a resumed run to see the same batches as the unbroken one."""
    a = run.args
    return dict(images=run.num_images, processes=run.accelerator.num_processes, batch_size=a.train_batch_size,
                accumulation=a.gradient_accumulation_steps, resolution=a.resolution, seed=a.seed)


def update(run: Run, micro_batches: list[torch.Tensor], step: int) -> torch.Tensor:
    """One optimizer step over ``micro_batches`` (gradient accumulation): add noise, predict, MSE, backward.

    Returns the mean loss (a detached tensor, so the GPU is not made to wait). The same as the
    notebook's loop, plus mixed precision, gradient sync across processes, clipping and EMA.
    """
    args, accelerator, model = run.args, run.accelerator, run.model
    generator = run.noise_generator.manual_seed(keyed_seed(args.seed, accelerator.process_index, "step", step))
    losses = []
    for j, clean in enumerate(micro_batches):
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        timesteps = torch.randint(0, run.noise_scheduler.config.num_train_timesteps, (len(clean),),
                                  generator=generator, device=clean.device)
        noisy = run.noise_scheduler.add_noise(clean, noise, timesteps)
        target = noise if args.prediction_type == "epsilon" else clean
        last = j == len(micro_batches) - 1
        # Gradients are averaged across processes only once, on the last micro-batch.
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            prediction = model(noisy, timesteps, return_dict=False)[0]
            loss = F.mse_loss(prediction.float(), target.float())
            accelerator.backward(loss / len(micro_batches))
        losses.append(loss.detach())
    if args.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
    run.optimizer.step()
    if not accelerator.optimizer_step_was_skipped:  # fp16 skips steps whose gradients overflowed
        run.lr_scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.step(model.parameters())
    return torch.stack(losses).mean()


def _flush(run: Run, log: LossLog) -> float | None:
    """Write the pending losses; a loss that is not a number stops the run before anything is saved."""
    loss = log.flush()
    if loss is not None and not math.isfinite(loss):
        a = run.args
        raise TrainingFailed(f"The loss is not a number ({loss}) at step {run.global_step}: the weights overflowed, "
                             f"so nothing after step {run.checkpoint_step if run.checkpoint_step > 0 else 0} is saved. "
                             f"Lower --learning_rate (now {a.learning_rate:g}) or lengthen --lr_warmup_steps (now "
                             f"{a.lr_warmup_steps}), and start again in a new --output_dir.")
    return loss


def _checkpoint(run: Run, epoch: int, log: LossLog) -> None:
    """Save checkpoint-<step> (every process calls this), after checking the loss is still a number."""
    _flush(run, log)
    state = dict(global_step=run.global_step, epoch=epoch, run_id=run.run_id, layout=_layout(run),
                 args={k: v for k, v in vars(run.args).items() if k not in ("resume_path", "resume_notes")})
    try:
        path = checkpoints.save(run, run.args.output_dir, run.global_step, state, run.args.checkpoints_total_limit)
    except checkpoints.CheckpointError as error:
        raise TrainingFailed(str(error)) from error
    run.checkpoint_step = run.global_step
    if run.accelerator.is_main_process:
        tqdm.write(f"Saved {path}")


def _stop_if_asked(run: Run, epoch: int, log: LossLog, interrupts) -> None:
    """After Ctrl-C or SIGTERM: save a checkpoint of this step (no work lost), then stop.

    With several processes they agree first (one tiny reduction a step), so that all of them save
    the same step together and none waits for the others forever.
    """
    requested = interrupts.requested
    if run.accelerator.num_processes > 1:
        flag = torch.tensor([float(requested)], device=run.accelerator.device)
        requested = bool(run.accelerator.reduce(flag, "sum").item())
    if not requested:
        return
    if run.checkpoint_step != run.global_step and run.global_step > 0:
        _checkpoint(run, epoch, log)
    raise KeyboardInterrupt


def _epochs(run: Run, log: LossLog, progress, interrupts) -> float:
    """Train from ``run.global_step`` to the end, saving as the options ask; returns the seconds
    spent on checkpoints, samples and saving (not training)."""
    args, accelerator = run.args, run.accelerator
    main, accumulation = accelerator.is_main_process, args.gradient_accumulation_steps
    first_epoch, skip = divmod(run.global_step, run.updates_per_epoch)
    other_seconds, saved_at_the_end = 0.0, False
    for epoch in range(first_epoch, run.num_epochs):
        if run.global_step >= run.max_train_steps:
            break  # resumed from the last checkpoint: nothing left to train, only to save (below)
        run.batches.generator.manual_seed(keyed_seed(args.seed, accelerator.process_index, "epoch", epoch))
        group, last_batch = [], len(run.batches) - 1
        for i, clean in enumerate(run.batches):
            if epoch == first_epoch and i < skip * accumulation:
                continue  # already trained on before the checkpoint we resumed from
            group.append(clean)
            if len(group) < accumulation and i < last_batch:
                continue
            lr = run.lr_scheduler.get_last_lr()[0]  # the rate this step uses
            loss = update(run, group, run.global_step)
            group = []
            run.global_step += 1
            log.add(run.global_step, epoch, loss, lr)
            progress.update(1)
            paused = time.perf_counter()
            if run.global_step % 10 == 0:
                progress.set_postfix(loss=f"{_flush(run, log):.4f}")
            if run.global_step % args.checkpointing_steps == 0:
                _checkpoint(run, epoch, log)
            _stop_if_asked(run, epoch, log, interrupts)
            other_seconds += time.perf_counter() - paused
            if run.global_step >= run.max_train_steps:
                break
        done = run.global_step >= run.max_train_steps
        _flush(run, log)
        paused = time.perf_counter()
        if main and ((epoch + 1) % args.save_images_epochs == 0 or done):
            tqdm.write(f"Saved samples: {save_samples(run, epoch + 1)}")
        if main and ((epoch + 1) % args.save_model_epochs == 0 or done):
            save_pipeline(run)
        saved_at_the_end = done
        accelerator.wait_for_everyone()
        other_seconds += time.perf_counter() - paused
        _stop_if_asked(run, epoch, log, interrupts)  # a Ctrl-C during the samples or the saving: stop now
        if done:
            break
    if not saved_at_the_end:  # resumed from the final checkpoint, e.g. after a crash while saving the pipeline
        paused = time.perf_counter()
        if main:
            tqdm.write(f"Saved samples: {save_samples(run, run.num_epochs)}")
            save_pipeline(run)
        accelerator.wait_for_everyone()
        other_seconds += time.perf_counter() - paused
    return other_seconds


def train(run: Run, repo_id: str | None, interrupts) -> None:
    """The training loop: epochs of optimizer steps, with logging, checkpoints, samples and saving.

    ``interrupts`` (``__main__.Interrupts``) turns Ctrl-C into a stop at the next step boundary,
    after a checkpoint of that step.
    """
    args, accelerator = run.args, run.accelerator
    main = accelerator.is_main_process
    log = LossLog(run)
    progress = tqdm(total=run.max_train_steps, initial=run.global_step, disable=not main, desc="Training", unit="step")
    started, start_step = time.perf_counter(), run.global_step
    run.checkpoint_step = run.global_step if args.resume_path is not None else -1
    interrupts.deferred = True  # from here on, Ctrl-C stops between steps (see __main__.Interrupts)
    try:
        other_seconds = _epochs(run, log, progress, interrupts)
    finally:
        progress.close()  # before any error message, which must be the last line
    interrupts.deferred = False
    run.finished = True
    seconds = time.perf_counter() - started
    steps = run.global_step - start_step
    if main:
        images = steps * args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
        training = max(seconds - other_seconds, 1e-9)
        print(f"Trained {steps} steps in {training:.1f} s ({images / training:.1f} images/s, all processes; "
              f"{other_seconds:.1f} s more for samples and saving); pipeline saved in {args.output_dir}", flush=True)
    if main and repo_id is not None:
        push(run, repo_id)
    accelerator.end_training()


def _create_repo(args) -> str:
    from huggingface_hub import create_repo

    try:
        return create_repo(args.hub_model_id, exist_ok=True, private=args.hub_private_repo).repo_id
    except Exception as error:  # bad name, a read-only token, no network: say so before training
        raise UsageError(f"Could not create the Hub repository {args.hub_model_id!r} "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:300]}). Check --hub_model_id "
                         "and that your token can write.") from error
