"""Resumable checkpoints of the training script that a kill can never leave half-written, and that
can never run code.

Part of the training script, ``python -m course_utils.train`` (``--checkpointing_steps``,
``--resume_from_checkpoint``). A checkpoint folder holds tensors as safetensors (the model, the
optimizer's moments, the EMA weights) and everything else as JSON in ``training_state.json``
(step, options, the optimizer's and LR schedule's numbers, the SHA-256 of each tensor file).
Nothing is pickled, so a checkpoint someone shares cannot run code on the learner's machine
(Accelerate's ``save_state`` pickles registered objects such as the LR scheduler), and a file
damaged on disk is found by its checksum before a run trusts it.

A checkpoint is first written to ``.checkpoint-<step>.tmp`` and renamed to ``checkpoint-<step>``
only when complete, with ``training_state.json`` written last: a rename is atomic, so a killed run
leaves at worst a ``.tmp`` folder, which ``latest`` never picks and the next run deletes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

_NAME = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "training_state.json"
LOCK_FILE = "logs/.training.lock"


class CheckpointError(Exception):
    """A checkpoint that cannot be written or trusted; the message says which and what to do."""


# --- Finding checkpoints --------------------------------------------------------------------------

def complete_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint in ``output_dir``, oldest first.

    Temporary folders and folders without ``training_state.json`` (not written by this script,
    or damaged by hand) are ignored. Complete is not the same as intact: see ``read_state``.
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_state(checkpoint: str | os.PathLike) -> dict:
    """The checked ``training_state.json`` of a checkpoint; ``CheckpointError`` says what is damaged.

    Every tensor file it lists must be there with the SHA-256 it had when it was written, so a
    bit flipped on disk, a truncated copy or a swapped file is found here, not in the weights.
    """
    folder = Path(checkpoint)
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{STATE_FILE} is unreadable ({type(error).__name__})") from error
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int) \
            or not isinstance(state.get("files"), dict):
        raise CheckpointError(f"{STATE_FILE} lacks the step or the file checksums (not written by this "
                              "version of the script)")
    for name, digest in state["files"].items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{name} is missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise CheckpointError(f"{name} does not match its checksum (damaged or changed since it was saved)")
    return state


def resolve(spec: str | None, output_dir: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The checkpoint folder ``--resume_from_checkpoint`` names (None: start afresh), and notes
    about damaged checkpoints that were passed over.

    ``latest`` is the newest intact checkpoint in ``output_dir``: a damaged newer one is passed
    over with a note (a kill or a full disk while copying), and a folder holding only damaged
    ones is an error. Anything else is a path or a folder name inside ``output_dir``, and must
    exist and be intact; a damaged one is an error that names the newest intact one.
    """
    if spec is None:
        return None, []
    found = complete_checkpoints(output_dir)
    if spec == "latest":
        notes = []
        for _, path in reversed(found):
            try:
                read_state(path)
                return path, notes
            except CheckpointError as problem:
                notes.append(f"{path} is damaged ({problem}): passed over")
        if notes:
            raise FileNotFoundError(f"--resume_from_checkpoint latest: every checkpoint in {output_dir} is damaged "
                                    f"({'; '.join(notes)}). Start a new --output_dir.")
        return None, []
    for candidate in (Path(spec).expanduser(), Path(output_dir) / spec):
        if candidate.is_dir() and (candidate / STATE_FILE).is_file():
            try:
                read_state(candidate)
            except CheckpointError as problem:
                good = _newest_intact(found, before=candidate)
                advice = (f"resume from {good} (or 'latest', which passes over damaged ones)" if good else
                          "no intact checkpoint is left; start a new --output_dir")
                raise FileNotFoundError(f"--resume_from_checkpoint {spec}: {candidate} is damaged ({problem}): "
                                        f"{advice}.") from problem
            return candidate, []
        if candidate.is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {spec}: {candidate} is not a complete checkpoint "
                                    f"(no {STATE_FILE}); it may be from an interrupted save.")
    names = ", ".join(p.name for _, p in found) or "none"
    raise FileNotFoundError(f"--resume_from_checkpoint {spec}: no such checkpoint folder (checkpoints in "
                            f"{output_dir}: {names}). Pass one of those, a path, or 'latest'.")


def _newest_intact(found: list[tuple[int, Path]], before: Path) -> Path | None:
    for _, path in reversed(found):
        if path.resolve() == before.resolve():
            continue
        try:
            read_state(path)
            return path
        except CheckpointError:
            continue
    return None


def remove_stale_temporaries(output_dir: str | os.PathLike) -> None:
    """Delete the ``.checkpoint-*.tmp`` folders a killed run left behind (main process only)."""
    folder = Path(output_dir)
    if folder.is_dir():
        for path in folder.glob(".checkpoint-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)


# --- One run per folder ---------------------------------------------------------------------------

class RunLock:
    """Held by the main process of the run writing to ``output_dir``, so a second run there stops at
    once instead of interleaving its logs and replacing the first one's files (POSIX ``flock``:
    released by the system when the process ends, even by SIGKILL; no lock on Windows)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_FILE
        self.file = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # Windows
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            self.file = None
            raise CheckpointError(f"another training run is writing to {self.output_dir} (process {holder}): "
                                  "wait for it to finish, stop it, or choose another --output_dir.") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # releases the lock
            self.file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# --- Writing and reading --------------------------------------------------------------------------

def _tensors_of_optimizer(state: dict) -> tuple[dict, dict]:
    """An optimizer's ``state_dict`` as (tensors, JSON): its moments, and its groups' numbers."""
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, dict(param_groups=state["param_groups"], scalars=scalars)


def _optimizer_state(tensors: dict, saved: dict) -> dict:
    state: dict = {}
    for key, value in [*tensors.items(), *saved["scalars"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in saved["param_groups"]]
    return dict(state=state, param_groups=groups)


def _write(folder: Path, name: str, tensors: dict, files: dict) -> None:
    data = save_tensors({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    (folder / name).write_bytes(data)
    files[name] = hashlib.sha256(data).hexdigest()


def write_state(folder: Path, state: dict) -> None:
    """Write ``training_state.json``, the last file of a checkpoint: its presence marks it complete."""
    (folder / STATE_FILE).write_text(json.dumps(state, indent=1, default=str))


def save(run, output_dir: str | os.PathLike, step: int, state: dict, total_limit: int | None = None) -> Path:
    """Save ``run``'s model, optimizer, LR schedule, EMA and loss scaler as ``checkpoint-<step>``,
    atomically; then keep only the newest ``total_limit`` checkpoints of this run (``state["run_id"]``).

    Every process must call it (they wait for each other); the main process writes, since every
    process holds the same weights and optimizer state. A failed write (a full disk) removes the
    partial folder and raises ``CheckpointError`` on every process.
    """
    accelerator = run.accelerator
    output_dir = Path(output_dir)
    final, temporary = output_dir / f"checkpoint-{step}", output_dir / f".checkpoint-{step}.tmp"
    problem = None
    if accelerator.is_main_process:
        try:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
            files: dict = {}
            _write(temporary, "model.safetensors", accelerator.unwrap_model(run.model).state_dict(), files)
            moments, optimizer = _tensors_of_optimizer(run.optimizer.state_dict())
            _write(temporary, "optimizer.safetensors", moments, files)
            state = dict(state, files=files, optimizer=optimizer, lr_scheduler=run.lr_scheduler.state_dict())
            if run.ema is not None:
                ema = run.ema.state_dict()
                _write(temporary, "ema.safetensors", {f"{i}": p for i, p in enumerate(ema.pop("shadow_params"))}, files)
                state["ema"] = ema
            if accelerator.scaler is not None:  # fp16's loss scale
                state["scaler"] = accelerator.scaler.state_dict()
            write_state(temporary, state)
            if final.exists():  # only when a run resumed from an earlier step repeats this one
                shutil.rmtree(final)
            os.replace(temporary, final)
        except (OSError, RuntimeError, ValueError) as error:  # a full disk, a quota, a file-size limit
            shutil.rmtree(temporary, ignore_errors=True)
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0][:200]
            found = complete_checkpoints(output_dir)
            problem = (f"Could not write checkpoint-{step} in {output_dir} ({reason}): free some disk space or "
                       "choose another --output_dir" + (f"; the newest checkpoint, {found[-1][1]}, is intact: "
                                                        "continue with --resume_from_checkpoint latest."
                                                        if found else "."))
        if problem is None and total_limit is not None:
            _prune(output_dir, state.get("run_id"), total_limit)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        problem = broadcast_object_list([problem])[0]  # every process stops, none waits forever
    accelerator.wait_for_everyone()
    if problem is not None:
        raise CheckpointError(problem)
    return final


def _prune(output_dir: Path, run_id: str | None, total_limit: int) -> None:
    ours = []
    for step, path in complete_checkpoints(output_dir):
        try:
            if json.loads((path / STATE_FILE).read_text()).get("run_id") == run_id:
                ours.append(path)
        except (OSError, ValueError):
            continue  # not ours to delete
    for old in ours[:-total_limit]:
        # Renamed first, so a kill during the deletion leaves a .tmp, never a damaged checkpoint.
        doomed = old.with_name(f".{old.name}.tmp")
        os.replace(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def load(run, checkpoint: str | os.PathLike) -> dict:
    """Load a checkpoint into ``run`` (model, optimizer, LR schedule, EMA, loss scaler); returns its state.

    Tensors come from safetensors and numbers from JSON: nothing is unpickled. Raises
    ``CheckpointError`` for a damaged checkpoint and ``RuntimeError``/``KeyError``/``ValueError``
    for one that does not fit this run's model.
    """
    folder = Path(checkpoint)
    state = read_state(folder)

    def tensors(name: str) -> dict:
        return load_tensors((folder / name).read_bytes())

    run.accelerator.unwrap_model(run.model).load_state_dict(tensors("model.safetensors"))
    run.optimizer.load_state_dict(_optimizer_state(tensors("optimizer.safetensors"), state["optimizer"]))
    scheduler = run.lr_scheduler
    scheduler.load_state_dict(state["lr_scheduler"])
    # The rate of the next step from this run's schedule (a longer --max_train_steps stretches it),
    # exactly as LambdaLR.step() computes it: unchanged options give the unbroken run's rate, bit for bit.
    for group, base, factor in zip(run.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in run.optimizer.param_groups]
    if run.ema is not None:
        if "ema" not in state:
            raise KeyError("the checkpoint has no EMA weights (it was saved without --use_ema)")
        shadow = tensors("ema.safetensors")
        run.ema.load_state_dict(dict(state["ema"], shadow_params=[shadow[str(i)] for i in range(len(shadow))]))
    if run.accelerator.scaler is not None and "scaler" in state:
        run.accelerator.scaler.load_state_dict(state["scaler"])
    return state
