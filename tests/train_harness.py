"""The training script with test-only faults and logs, patched in from outside the package.

``python -m tests.train_harness [--kill-in-checkpoint N ...] [--log-ranks] -- SCRIPT_OPTIONS``, also under
``accelerate launch -m tests.train_harness ...``: runs ``course_utils.train``'s ``main`` after patching

- ``--kill-in-checkpoint N``: a SIGKILL, which no handler can soften, once checkpoint N is completely
  written but not yet renamed into place (after ``checkpoints.write_state``);
- ``--log-ranks``: each process writes logs/rank<i>.json with the image indices it trained on and a
  digest of its final weights, to check the data sharding and the gradient averaging across processes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from course_utils.train import __main__ as script
from course_utils.train import checkpoints, loop
from course_utils.train.outputs import ema_weights

# --- What the tests use to run the script -----------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
TINY_UNET = dict(in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=[16, 32], norm_num_groups=8,
                 down_block_types=["DownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "UpBlock2D"])


def tiny_args(workdir: Path, output_dir: Path, *extra: str) -> list[str]:
    """A UNet of a few thousand parameters (``workdir``/tiny_unet.json) on 24 images at 16 px: seconds a run."""
    return ["--model_config_name_or_path", str(workdir / "tiny_unet.json"), "--resolution", "16",
            "--max_train_samples", "24", "--train_batch_size", "4", "--gradient_accumulation_steps", "2",
            "--lr_warmup_steps", "2", "--ddpm_num_inference_steps", "2", "--eval_batch_size", "2",
            "--report_to", "none", "--output_dir", str(output_dir), *extra]


def script_env(tmp_root: Path, **env) -> dict:
    """The environment of a script run: offline, not quick, the tests' private tensor cache."""
    full_env = dict(os.environ)
    # One thread per process: as fast for a tiny UNet, and it does not fight the other process (or
    # other jobs) for the cores, which on a busy 2-core machine made each step 10x slower.
    full_env.update(HF_HUB_OFFLINE="1", COURSE_QUICK="", OMP_NUM_THREADS="1",
                    COURSE_CACHE=os.environ.get("COURSE_TEST_CACHE") or str(tmp_root / "course-cache"))
    full_env.update(env)
    return full_env


def run_script(args: list[str], tmp_root: Path, launcher: list[str] | None = None, timeout: int = 240,
               harness: list[str] | None = None, **env):
    """Run the script in a fresh process (see ``script_env``) and wait for it; ``harness`` options
    (this module's) run it with test-only faults or logs."""
    module = ["-m", "tests.train_harness", *harness, "--"] if harness else ["-m", "course_utils.train"]
    command = (launcher or [sys.executable]) + [*module, *args]
    # The output goes to files, not pipes: reading a pipe to its end waits for every process that holds
    # it, and a launcher's helper process that outlives the run (torchrun's workers, a resource tracker)
    # once kept a finished run "running" until the timeout.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(command, cwd=REPO, env=script_env(tmp_root, **env), stdout=out, stderr=err, text=True,
                              timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(command, done.returncode, out.read(), err.read())


# --- Test-only faults and logs ----------------------------------------------------------------------


def weights_digest(state_dict: dict) -> str:
    """SHA-256 of every tensor of a state dict (in key order): equal digests mean identical weights."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().to("cpu").contiguous()
        digest.update(key.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def kill_in_checkpoint(steps: set[int]) -> None:
    write_state = checkpoints.write_state

    def write_state_then_die(folder, state):
        write_state(folder, state)
        if state["global_step"] in steps:
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.write_state = write_state_then_die


def log_ranks() -> None:
    train = loop.train

    def train_then_log(run, *args, **kwargs):
        train(run, *args, **kwargs)
        with ema_weights(run):
            digest = weights_digest(run.accelerator.unwrap_model(run.model).state_dict())
        rank = run.accelerator.process_index
        path = Path(run.args.output_dir) / "logs" / f"rank{rank}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(rank=rank, num_processes=run.accelerator.num_processes,
                                        indices=run.shard.tolist(), final_weights_sha256=digest,
                                        wrote_pipeline=run.accelerator.is_main_process)))

    loop.train = train_then_log


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m tests.train_harness")
    parser.add_argument("--kill-in-checkpoint", type=int, action="append", default=[])
    parser.add_argument("--log-ranks", action="store_true")
    options = parser.parse_args(argv[:split])
    if options.kill_in_checkpoint:
        kill_in_checkpoint(set(options.kill_in_checkpoint))
    if options.log_ranks:
        log_ranks()
    return script.main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
