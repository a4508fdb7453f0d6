"""The course's own training script: ``python -m course_utils.train`` or ``accelerate launch -m course_utils.train``.

"Introduction to Diffusers" ends with it (section "Scaling up"). It trains the notebook's model the
notebook's way (predict the noise, MSE loss, AdamW) and adds what a long run needs: Accelerate (one
GPU, several GPUs or machines, mixed precision), warm-up and a cosine learning rate, gradient
accumulation, EMA weights, sample grids, atomic checkpoints with exact resume, and pushing to the
Hub. ``--help`` lists every option (they are defined in ``train_args``).

Randomness is keyed, not streamed: the data order of epoch e on process r comes from a generator
seeded with (seed, r, e), and the noise and timesteps of optimizer step s from one seeded with
(seed, r, s). A resumed run therefore draws exactly what the unbroken run would have drawn.

Launching: ``accelerate launch -m course_utils.train ...`` uses ``accelerate config``'s set-up (GPUs,
machines); on several machines ``--output_dir`` must be a shared folder. Several processes on a CPU:
``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m course_utils.train ...``
(Accelerate's ``--cpu`` flag alone starts one process unless MPI is set up). Ctrl-C (or SIGTERM) stops
cleanly at the end of the current step (a second Ctrl-C at once) with exit code 130 and says which
checkpoint to resume from.

The tests reach inside a run through one environment variable, ``COURSE_TRAIN_TEST``, read in one
place (``_test_hooks``) and never shown in ``--help``: see there.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checkpoints, hub_timeouts
from .batches import BatchIterator
from .train_args import parse_args
from .train_outputs import LossLog, ema_weights, push, save_pipeline, save_samples


class UsageError(Exception):
    """A problem the user can fix (bad data, a mismatched checkpoint): reported in one line, exit code 2."""


def keyed_seed(*parts) -> int:
    """A 63-bit seed from any parts, e.g. (seed, rank, "epoch", 3): independent streams, no state to save."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2 ** 63 - 1)


def weights_digest(state_dict: dict) -> str:
    """SHA-256 of every tensor of a state dict (in key order): equal digests mean identical weights."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().to("cpu").contiguous()
        digest.update(key.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _test_hooks() -> set[str]:
    """The test hooks ``COURSE_TRAIN_TEST`` asks for (comma-separated); the one place that reads it.

    ``kill-in-checkpoint:N``: a SIGKILL, which no handler can soften, half-way through writing
    checkpoint N (installed as ``checkpoints.before_rename``). ``log-ranks``: each process writes
    logs/rank<i>.json with the image indices it trained on and a digest of its final weights, to
    check the data sharding and the gradient averaging across processes.
    """
    hooks = {h.strip() for h in os.environ.get("COURSE_TRAIN_TEST", "").split(",") if h.strip()}
    kill_at = {int(h.split(":", 1)[1]) for h in hooks if h.startswith("kill-in-checkpoint:")}
    if kill_at:
        def before_rename(step: int) -> None:
            if step in kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        checkpoints.before_rename = before_rename
    return hooks


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
    public_source: str  # the source as the model card may publish it (no local path)
    num_images: int
    updates_per_epoch: int
    max_train_steps: int
    num_epochs: int
    noise_generator: torch.Generator
    global_step: int = 0


def load_images(args):
    """The training images as (N, 3, res, res) in [-1, 1] through ``load_butterflies``."""
    from .data_sources import load_butterflies

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

    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(lr_scheduler)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)

    run = Run(args=args, accelerator=accelerator, model=model, optimizer=optimizer, lr_scheduler=lr_scheduler,
              noise_scheduler=noise_scheduler, ema=ema, batches=batches, shard=shard, source=data.source,
              public_source=data.public_source, num_images=len(data.images), updates_per_epoch=updates_per_epoch,
              max_train_steps=max_train_steps, num_epochs=math.ceil(max_train_steps / updates_per_epoch),
              noise_generator=torch.Generator(device=accelerator.device))
    if args.resume_path is not None:
        _resume(run, args.resume_path)
    return run


def _resume(run: Run, path: Path) -> None:
    state = checkpoints.read_state(path)
    before = state.get("layout", {})
    now = _layout(run)
    if before and before != now:
        raise UsageError(f"Checkpoint {path} was made with {before}, but this run has {now}: resume with the same "
                         "data, batch size, accumulation and number of processes, or start a new --output_dir.")
    try:
        run.accelerator.load_state(str(path))
    except (RuntimeError, KeyError, ValueError) as error:
        raise UsageError(f"Checkpoint {path} does not fit this run's model or options (--use_ema, --model_*): "
                         f"{str(error).splitlines()[0]}") from error
    if run.ema is not None:
        run.ema.to(run.accelerator.device)  # loaded on the CPU
    run.global_step = int(state["global_step"])
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


def _log_rank(run: Run, digest: str) -> None:
    path = Path(run.args.output_dir) / "logs" / f"rank{run.accelerator.process_index}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(rank=run.accelerator.process_index, num_processes=run.accelerator.num_processes,
                                     indices=run.shard.tolist(), final_weights_sha256=digest,
                                     wrote_pipeline=run.accelerator.is_main_process)))


def train(run: Run, repo_id: str | None = None) -> None:
    """The training loop: epochs of optimizer steps, with logging, checkpoints, samples and saving."""
    args, accelerator = run.args, run.accelerator
    main, accumulation = accelerator.is_main_process, args.gradient_accumulation_steps
    output_dir = Path(args.output_dir)
    log = LossLog(run)
    first_epoch, skip = divmod(run.global_step, run.updates_per_epoch)
    progress = tqdm(total=run.max_train_steps, initial=run.global_step, disable=not main, desc="Training", unit="step")
    started, start_step, other_seconds = time.perf_counter(), run.global_step, 0.0
    _interrupts.deferred = True  # from here on, Ctrl-C stops between steps (see _Interrupts)
    for epoch in range(first_epoch, run.num_epochs):
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
            if run.global_step % 10 == 0 or run.global_step % args.checkpointing_steps == 0:
                progress.set_postfix(loss=f"{log.flush():.4f}")
            if run.global_step % args.checkpointing_steps == 0:
                paused = time.perf_counter()
                path = checkpoints.save(accelerator, output_dir, run.global_step,
                                        dict(global_step=run.global_step, epoch=epoch, layout=_layout(run),
                                             args={k: v for k, v in vars(args).items() if k != "resume_path"}),
                                        args.checkpoints_total_limit)
                if main:
                    progress.write(f"Saved {path}")
                other_seconds += time.perf_counter() - paused
            _interrupts.check()
            if run.global_step >= run.max_train_steps:
                break
        done = run.global_step >= run.max_train_steps
        log.flush()
        paused = time.perf_counter()
        if main and ((epoch + 1) % args.save_images_epochs == 0 or done):
            progress.write(f"Saved samples: {save_samples(run, epoch + 1)}")
        if main and ((epoch + 1) % args.save_model_epochs == 0 or done):
            save_pipeline(run)
        accelerator.wait_for_everyone()
        other_seconds += time.perf_counter() - paused
        _interrupts.check()  # a Ctrl-C during the samples or the saving: stop before the next epoch (or the upload)
        if done:
            break
    progress.close()
    _interrupts.deferred = False
    seconds = time.perf_counter() - started
    steps = run.global_step - start_step
    if main:
        images = steps * args.train_batch_size * accumulation * accelerator.num_processes
        training = max(seconds - other_seconds, 1e-9)
        print(f"Trained {steps} steps in {training:.1f} s ({images / training:.1f} images/s, all processes; "
              f"{other_seconds:.1f} s more for samples and saving); pipeline saved in {output_dir}", flush=True)
    if main and repo_id is not None:
        try:
            push(run, repo_id)
        except hub_timeouts.HubError as error:  # the pipeline is saved; say how to upload it later
            raise UsageError(str(error)) from None
    accelerator.end_training()


def _create_repo(args) -> str:
    """The repository to push to, created (or found) before training, so a run never trains and then
    cannot upload; every request is bounded in time (hub_timeouts), none can hang the run."""
    from huggingface_hub import create_repo

    from .data_sources import hub_endpoint, hub_reachable

    if not hub_reachable():
        raise UsageError(f"--push_to_hub: the Hub ({hub_endpoint()}) cannot be reached, so nothing was trained. "
                         "Check the connection (behind a proxy set HTTPS_PROXY, for a mirror HF_ENDPOINT), or leave "
                         "out --push_to_hub and upload the saved pipeline later with `hf upload`.")
    try:
        return hub_timeouts.bounded(
            f"Creating the Hub repository {args.hub_model_id!r}",
            lambda: create_repo(args.hub_model_id, exist_ok=True, private=args.hub_private_repo).repo_id,
            hub_timeouts.hub_timeout(), "Nothing was trained. Try again later, set COURSE_HUB_TIMEOUT (seconds) "
            "for a slow connection, or leave out --push_to_hub.")
    except hub_timeouts.HubTimeout as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # bad name, a read-only token: say so before training
        raise UsageError(f"Could not create the Hub repository {args.hub_model_id!r} "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:300]}). Check --hub_model_id "
                         "and that your token can write.") from error


class _Interrupts:
    """Ctrl-C and SIGTERM, turned into a KeyboardInterrupt at a step boundary while training.

    Raised straight from the signal handler, a KeyboardInterrupt lands wherever the main thread
    happens to be, including a library's finalizer, where Python prints "Exception ignored" and
    goes on training (a test once saw a Ctrl-C go unanswered for a minute). While ``deferred`` is
    on, the first signal only sets ``requested`` and ``check()`` raises it after the current step;
    a second signal raises at once.
    """

    def __init__(self):
        self.deferred = self.requested = False

    def handle(self, signum, frame):
        if self.deferred and not self.requested:
            self.requested = True
            sys.stderr.write("\nStopping after this step (Ctrl-C again to stop at once).\n")
            return
        raise KeyboardInterrupt

    def check(self):
        if self.requested:
            raise KeyboardInterrupt


_interrupts = _Interrupts()


def main(argv: list[str] | None = None) -> int:
    """Parse the options, train, save; returns the exit code (0, 2 for a usage error, 130 if interrupted)."""
    global _interrupts
    args = parse_args(argv)
    hooks = _test_hooks()
    _interrupts = _Interrupts()  # nothing left over from an earlier call in this process
    previous = {sig: signal.signal(sig, _interrupts.handle)  # SIGTERM, a cluster's polite kill: like Ctrl-C
                for sig in (signal.SIGINT, signal.SIGTERM)}
    run = None
    try:
        run = setup(args)
        accelerator = run.accelerator
        repo_id = None
        if accelerator.is_main_process:
            checkpoints.remove_stale_temporaries(args.output_dir)
            if args.resume_from_checkpoint == "latest" and args.resume_path is None:
                print(f"No checkpoint in {args.output_dir} yet: starting afresh.", flush=True)
            if args.quick_caps:
                print(f"Quick mode (COURSE_QUICK=1): {', '.join(args.quick_caps)}.", flush=True)
            print(f"Training on {run.source}: {run.num_images} images, {len(run.shard)} per process x "
                  f"{accelerator.num_processes}; {run.updates_per_epoch} steps per epoch, "
                  f"{run.max_train_steps} steps ({run.num_epochs} epochs) on {accelerator.device}.", flush=True)
            if args.push_to_hub:
                repo_id = _create_repo(args)
        if accelerator.log_with:  # TensorBoard; Accelerate starts it on the main process only
            accelerator.init_trackers("train", config={k: v for k, v in vars(args).items()
                                                       if isinstance(v, (int, float, str, bool))})
        train(run, repo_id)
        if "log-ranks" in hooks:
            with ema_weights(run):
                _log_rank(run, weights_digest(run.accelerator.unwrap_model(run.model).state_dict()))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        if run is None or run.accelerator.is_main_process:
            found = checkpoints.complete_checkpoints(args.output_dir)
            where = (f"the newest checkpoint is {found[-1][1]}: continue with --resume_from_checkpoint latest"
                     if found else "no checkpoint was saved yet (see --checkpointing_steps)")
            print(f"\nInterrupted at step {run.global_step if run else 0}; {where}.", file=sys.stderr, flush=True)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
