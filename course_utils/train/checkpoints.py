"""Resumable checkpoints of the training script that a kill can never leave half-written.

Used by ``course_utils.train`` (``--checkpointing_steps``, ``--resume_from_checkpoint``). A
checkpoint is first written to ``.checkpoint-<step>.tmp`` and renamed to ``checkpoint-<step>``
only when complete, with ``training_state.json`` written last: a rename is atomic, so a
killed run leaves at worst a ``.tmp`` folder, which ``latest`` never picks and the next run
deletes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

_NAME = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "training_state.json"
#: Called with the step when a checkpoint is complete but not yet renamed into place (main
#: process). None in normal runs; the tests kill the process there (``COURSE_TRAIN_TEST``).
before_rename: Callable[[int], None] | None = None


def complete_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint in ``output_dir``, oldest first.

    Temporary folders and folders without ``training_state.json`` (not written by this script,
    or damaged by hand) are ignored.
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


def resolve(spec: str | None, output_dir: str | os.PathLike) -> Path | None:
    """The checkpoint folder ``--resume_from_checkpoint`` names, or None to start afresh.

    ``latest`` is the newest complete checkpoint in ``output_dir`` (None when there is none);
    anything else is a path or a folder name inside ``output_dir``, and must exist.
    """
    if spec is None:
        return None
    if spec == "latest":
        found = complete_checkpoints(output_dir)
        return found[-1][1] if found else None
    for candidate in (Path(spec).expanduser(), Path(output_dir) / spec):
        if candidate.is_dir() and (candidate / STATE_FILE).is_file():
            return candidate
        if candidate.is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {spec}: {candidate} is not a complete checkpoint "
                                    f"(no {STATE_FILE}); it may be from an interrupted save.")
    names = ", ".join(p.name for _, p in complete_checkpoints(output_dir)) or "none"
    raise FileNotFoundError(f"--resume_from_checkpoint {spec}: no such checkpoint folder (checkpoints in "
                            f"{output_dir}: {names}). Pass one of those, a path, or 'latest'.")


def read_state(checkpoint: str | os.PathLike) -> dict:
    """The ``training_state.json`` of a checkpoint: global step, epoch, options it was made with."""
    return json.loads((Path(checkpoint) / STATE_FILE).read_text())


def remove_stale_temporaries(output_dir: str | os.PathLike) -> None:
    """Delete the ``.checkpoint-*.tmp`` folders a killed run left behind (main process only)."""
    folder = Path(output_dir)
    if folder.is_dir():
        for path in folder.glob(".checkpoint-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)


def save(accelerator, output_dir: str | os.PathLike, step: int, state: dict, total_limit: int | None = None) -> Path:
    """Save everything ``accelerator`` tracks (model, optimizer, registered objects, RNGs) as
    ``checkpoint-<step>``, atomically; then keep only the newest ``total_limit``.

    Every process must call it (each writes its own RNG state); the main process renames and
    prunes.
    """
    output_dir = Path(output_dir)
    final, temporary = output_dir / f"checkpoint-{step}", output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / STATE_FILE).write_text(json.dumps(state, indent=1, default=str))
        if before_rename is not None:
            before_rename(step)
        if final.exists():  # only when a run is repeated over an old output folder
            shutil.rmtree(final)
        os.replace(temporary, final)
        if total_limit is not None:
            for _, old in complete_checkpoints(output_dir)[:-total_limit]:
                # Renamed first, so a kill during the deletion leaves a .tmp, never a damaged checkpoint.
                doomed = old.with_name(f".{old.name}.tmp")
                os.replace(old, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
