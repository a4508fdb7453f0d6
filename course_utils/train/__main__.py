"""``python -m course_utils.train``: parse the options, train, save; exit codes and signals.

Exit codes: 0 done, 1 the run failed (a NaN loss, a full disk), 2 a usage error (a bad option,
data or checkpoint), each with one line saying what to do; 130 after Ctrl-C and 143 after SIGTERM,
once a checkpoint of the step reached is saved. ``main`` is also what ``accelerate launch -m
course_utils.train`` runs on every process.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from . import checkpoints, loop
from .args import parse_args
from .loop import TrainingFailed, UsageError


class Interrupts:
    """Ctrl-C and SIGTERM, turned into a KeyboardInterrupt at a step boundary while training.

    Raised straight from the signal handler, a KeyboardInterrupt lands wherever the main thread
    happens to be, including a library's finalizer, where Python prints "Exception ignored" and
    goes on training (a test once saw a Ctrl-C go unanswered for a minute). While ``deferred`` is
    on, the first signal only sets ``requested`` and ``check()`` raises it after the current step;
    a second signal raises at once.
    """

    def __init__(self):
        self.deferred = self.requested = False
        self.signum = signal.SIGINT

    def handle(self, signum, frame):
        self.signum = signum
        if self.deferred and not self.requested:
            self.requested = True
            sys.stderr.write("\nStopping after this step, once a checkpoint is saved (Ctrl-C again to stop at "
                             "once).\n")
            return
        raise KeyboardInterrupt

    def check(self):
        if self.requested:
            raise KeyboardInterrupt


def follow_launcher() -> None:
    """Under ``accelerate launch``, get a SIGTERM when the launcher dies (Linux).

    SIGTERM to ``accelerate launch`` (``kill``, ``docker stop``) ends the launcher at once, and
    its child would go on training with no parent, writing into the folder a new run may already
    use. With the parent-death signal the child stops as after Ctrl-C: at the end of the step,
    with a checkpoint. Only under Accelerate: a run started with ``nohup python -m ...`` is meant to
    outlive its shell.
    """
    parent = os.getppid()
    try:
        launcher = Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return  # not Linux
    if b"accelerate" not in launcher:
        return
    import ctypes

    pr_set_pdeathsig = 1
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) == 0 \
            and os.getppid() != parent:  # the launcher died before the signal was set up
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, train, save; returns the exit code (see the module's docstring)."""
    args = parse_args(argv)
    interrupts = Interrupts()
    previous = {sig: signal.signal(sig, interrupts.handle)  # SIGTERM, a cluster's polite kill: like Ctrl-C
                for sig in (signal.SIGINT, signal.SIGTERM)}
    follow_launcher()
    run = None
    try:
        run = loop.setup(args)
        accelerator = run.accelerator
        repo_id = None
        if accelerator.is_main_process:
            checkpoints.remove_stale_temporaries(args.output_dir)
            for note in args.resume_notes:
                print(note, flush=True)
            if args.resume_from_checkpoint == "latest" and args.resume_path is None:
                print(f"No checkpoint in {args.output_dir} yet: starting afresh.", flush=True)
            if args.quick_caps:
                print(f"Quick mode (COURSE_QUICK=1): {', '.join(args.quick_caps)}.", flush=True)
            print(f"Training on {run.source}: {run.num_images} images, {len(run.shard)} per process x "
                  f"{accelerator.num_processes}; {run.updates_per_epoch} steps per epoch, "
                  f"{run.max_train_steps} steps ({run.num_epochs} epochs) on {accelerator.device}.", flush=True)
            if args.push_to_hub:
                repo_id = loop._create_repo(args)
        if accelerator.log_with:  # TensorBoard; Accelerate starts it on the main process only
            accelerator.init_trackers("train", config={k: v for k, v in vars(args).items()
                                                       if isinstance(v, (int, float, str, bool))})
        loop.train(run, repo_id, interrupts)  # looked up here, so a test harness can wrap it
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except TrainingFailed as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        if run is None or run.accelerator.is_main_process:
            found = checkpoints.complete_checkpoints(args.output_dir)
            if run is not None and run.finished:
                where = f"training had finished and the pipeline is saved in {args.output_dir}"
            elif found:
                where = f"the newest checkpoint is {found[-1][1]}: continue with --resume_from_checkpoint latest"
            else:
                where = "no checkpoint was saved yet (see --checkpointing_steps)"
            print(f"\nInterrupted at step {run.global_step if run else 0}; {where}.", file=sys.stderr, flush=True)
        return 128 + interrupts.signum  # 130 after Ctrl-C, 143 after SIGTERM
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if run is not None and run.lock is not None:
            run.lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
