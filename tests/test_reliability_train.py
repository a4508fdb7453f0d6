"""The training script never loses work, never runs code from a checkpoint folder and never mixes
two runs: one test per probe of the reliability review (D1, D2, D4, D5, D7, D8, D11-D20, D30),
each reproducing the fault it fixes. Tiny runs (see ``tests/train_harness.py``): seconds each."""
import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils.train import args as train_args
from course_utils.train import checkpoints
from tests.train_harness import REPO, TINY_UNET, run_script, script_env, tiny_args


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    (folder / "tiny_unet.json").write_text(json.dumps(TINY_UNET))
    return folder


@pytest.fixture(scope="module")
def base_run(workdir, tmp_path_factory):
    """Two optimizer steps, a checkpoint after each, and the pipeline."""
    out = workdir / "base"
    result = run_script(tiny_args(workdir, out, "--max_train_steps", "2", "--checkpointing_steps", "1",
                                  "--lr_warmup_steps", "0"), tmp_path_factory.getbasetemp())
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture
def copy_of_base(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out


def resume_args(workdir, out, *extra):
    return tiny_args(workdir, out, "--max_train_steps", "2", "--checkpointing_steps", "1", "--lr_warmup_steps", "0",
                     "--resume_from_checkpoint", "latest", *extra)


def parse_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        train_args.parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


class _Payload:
    """What a stranger could plant in a checkpoint: unpickling it writes a file."""

    def __init__(self, mark):
        self.mark = str(mark)

    def __reduce__(self):
        return exec, (f"open({self.mark!r}, 'w').write('ran')",)


def test_d1_d8_resume_at_the_end_saves_the_pipeline_and_unpickles_nothing(copy_of_base, workdir, tmp_path):
    out, mark = copy_of_base, tmp_path / "PWNED"
    newest = out / "checkpoint-2"
    assert {p.suffix for p in newest.iterdir()} <= {".safetensors", ".json"}  # nothing that can execute
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        (newest / name).write_bytes(pickle.dumps(_Payload(mark)))
    for saved in ("unet", "scheduler", "model_index.json"):  # a crash at the end: the checkpoint, no pipeline
        shutil.rmtree(out / saved) if (out / saved).is_dir() else (out / saved).unlink()
    result = run_script(resume_args(workdir, out), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not mark.exists()
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file() and (out / "model_index.json").is_file()


@pytest.mark.parametrize("options, message", [
    (["--prediction_type", "sample"], "--prediction_type"),
    (["--ddpm_beta_schedule", "linear"], "--ddpm_beta_schedule"),
    (["--learning_rate", "1e-2"], "--learning_rate"),
    (["--lr_scheduler", "constant"], "--lr_scheduler"),
])
def test_d12_resuming_with_other_training_options_is_refused(options, message, copy_of_base, workdir, capsys):
    line = parse_error(resume_args(workdir, copy_of_base, *options), capsys)
    assert message in line and "checkpoint-2" in line and "new --output_dir" in line


def test_d12_a_longer_run_may_resume(copy_of_base, workdir):
    args = train_args.parse_args(resume_args(workdir, copy_of_base)[:-2] + ["--max_train_steps", "9",
                                                                           "--resume_from_checkpoint", "latest"])
    assert args.resume_path == copy_of_base / "checkpoint-2"


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [
    _flip_bytes,
    lambda p: p.write_bytes(p.read_bytes()[:100]),  # truncated
    lambda p: p.unlink(),
    lambda p: (p.parent / checkpoints.STATE_FILE).write_text("{not json"),
    lambda p: (p.parent / checkpoints.STATE_FILE).write_text("{}"),
])
def test_d13_d14_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(damage, copy_of_base, workdir, capsys):
    damage(copy_of_base / "checkpoint-2" / "model.safetensors")
    args = train_args.parse_args(resume_args(workdir, copy_of_base))
    assert args.resume_path == copy_of_base / "checkpoint-1"
    # Named explicitly, it is an error that says what is wrong and which checkpoint is good.
    argv = resume_args(workdir, copy_of_base)[:-1] + ["checkpoint-2"]
    line = parse_error(argv, capsys)
    assert "checkpoint-2" in line and "damaged" in line and "checkpoint-1" in line


def test_d4_d5_a_fresh_run_never_mixes_with_another_run_s_checkpoints(copy_of_base, workdir, capsys):
    before = sorted(p.name for p in copy_of_base.iterdir())
    line = parse_error(tiny_args(workdir, copy_of_base, "--max_train_steps", "2", "--checkpoints_total_limit", "1"),
                       capsys)
    assert "already holds" in line and "--resume_from_checkpoint latest" in line and "new --output_dir" in line
    assert sorted(p.name for p in copy_of_base.iterdir()) == before


def test_d17_two_runs_never_share_an_output_folder(workdir, tmp_path):
    from course_utils.train.loop import UsageError, setup

    out = tmp_path / "busy"
    args = train_args.parse_args(tiny_args(workdir, out, "--max_train_steps", "1"))
    with checkpoints.RunLock(out):  # another run holds the folder
        with pytest.raises(UsageError, match=f"another training run is writing to {out} \\(process {os.getpid()}\\)"):
            setup(args)  # stops before the data is loaded or anything is written
    assert sorted(p.name for p in out.rglob("*")) == [".training.lock", "logs"]  # nothing but the lock
    run = setup(args)  # free again: this run takes the folder
    run.lock.release()


@pytest.mark.parametrize("argv, message", [
    (["--ddpm_num_steps", "100"], "--ddpm_num_inference_steps 1000 is more than --ddpm_num_steps 100"),  # D2
    (["--learning_rate", "inf"], "above 0"),  # D11
    (["--model_preset", "mnist"], "1 channel"),  # D15
    (["--seed", "-1"], "--seed"),  # D18
    (["--resolution", "10000"], "at most 1024"),  # D34
    (["--seed", "99999999999999999999999"], "--seed"),
    (["--output_dir", ""], "--output_dir"),  # D19
    (["--model_config_name_or_path", "{bad_blocks}"], "NopeBlock2D"),  # D20
    (["--model_config_name_or_path", "{bad_groups}"], "{bad_groups}"),
    (["--model_config_name_or_path", "{bad_channels}"], "{bad_channels}"),
])
def test_bad_options_are_one_line_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "")
    configs = dict(bad_blocks=dict(TINY_UNET, down_block_types=["NopeBlock2D", "DownBlock2D"]),
                   bad_groups=dict(TINY_UNET, norm_num_groups=7), bad_channels=dict(TINY_UNET, block_out_channels="abc"))
    paths = {}
    for name, config in configs.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(config))
    argv = [a.format(**paths) for a in argv]
    assert message.format(**paths) in parse_error(argv + ["--resolution", "16"], capsys)


def test_d2_quick_mode_checks_the_capped_sampling_steps(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert "--ddpm_num_steps 2" in parse_error(["--ddpm_num_steps", "2"], capsys)


def test_d11_a_nan_loss_stops_the_run_without_saving_nan_weights(workdir, tmp_path):
    out = tmp_path / "nan"
    result = run_script(tiny_args(workdir, out, "--max_train_steps", "6", "--learning_rate", "1e10",
                                  "--lr_warmup_steps", "0", "--checkpointing_steps", "3"), tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "not a number" in last and "--learning_rate" in last
    assert "Traceback" not in result.stderr
    assert not (out / "unet").exists() and not checkpoints.complete_checkpoints(out)


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
def test_d16_a_full_disk_while_checkpointing_is_one_line_and_leaves_nothing(workdir, tmp_path):
    out = tmp_path / "full"
    command = [sys.executable, "-m", "course_utils.train",
               *tiny_args(workdir, out, "--max_train_steps", "2", "--checkpointing_steps", "2")]
    # The tensor cache and the logs fit, a checkpoint's files do not: as on a disk that fills up.
    result = subprocess.run(command, cwd=REPO, env=script_env(tmp_path), capture_output=True, text=True, timeout=240,
                            preexec_fn=_limit_file_size(64_000))
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Could not write checkpoint-2") and "Traceback" not in result.stderr
    assert not list(out.glob("*checkpoint-2*"))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_steps(out: Path, process, seconds=180):
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        log = out / "logs" / "loss.csv"
        if log.exists() and len(log.read_text().splitlines()) > 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"no training step logged: {process.poll()}")


def test_d30_ctrl_c_stops_between_steps_and_saves_a_checkpoint_there(workdir, tmp_path):
    out = tmp_path / "stopped"
    process = subprocess.Popen([sys.executable, "-m", "course_utils.train",
                                *tiny_args(workdir, out, "--max_train_steps", "100000")],
                               cwd=REPO, env=script_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        _wait_for_steps(out, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert "Stopping after this step" in stderr  # the loop stopped it between steps
    step = int(stderr.split("Interrupted at step ")[1].split(";")[0])
    assert checkpoints.resolve("latest", out)[0] == out / f"checkpoint-{step}"
    assert f"the newest checkpoint is {out / f'checkpoint-{step}'}" in stderr and "Traceback" not in stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the launcher's child through /proc")
def test_d7_sigterm_to_accelerate_launch_stops_the_training(workdir, tmp_path):
    out = tmp_path / "launched"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu"]
    process = subprocess.Popen([*launcher, "-m", "course_utils.train", *tiny_args(workdir, out, "--max_train_steps",
                                                                                  "100000")],
                               cwd=REPO, env=script_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    children = []
    try:
        _wait_for_steps(out, process)
        children = _children(process.pid)
        assert children
        process.send_signal(signal.SIGTERM)  # what `kill PID` or `docker stop` does
        process.communicate(timeout=60)
        deadline = time.monotonic() + 120
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        orphans = [c for c in children if _alive(c)]
    finally:
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
    assert not orphans, "the training went on without its launcher"
    assert checkpoints.complete_checkpoints(out)  # and it saved its work on the way out


def test_d8_a_checkpoint_round_trip_restores_every_state_bit_for_bit(tmp_path):
    """Model, AdamW moments, LR schedule, EMA and fp16's loss scaler (a CUDA-only branch in a real run,
    driven here with torch's CPU GradScaler) through safetensors and JSON alone."""
    from types import SimpleNamespace

    import torch
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    def make(total_steps=10):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        accelerator = SimpleNamespace(is_main_process=True, num_processes=1, unwrap_model=lambda m: m,
                                      scaler=torch.amp.GradScaler("cpu", init_scale=1024.0),
                                      wait_for_everyone=lambda: None)
        return SimpleNamespace(accelerator=accelerator, model=model, optimizer=optimizer,
                               lr_scheduler=get_scheduler("cosine", optimizer, num_warmup_steps=2,
                                                          num_training_steps=total_steps),
                               ema=EMAModel(model.parameters(), decay=0.9, use_ema_warmup=True))

    def step(run):
        loss = run.model(torch.randn(3, 4)).square().mean()
        run.accelerator.scaler.scale(loss).backward()
        run.accelerator.scaler.step(run.optimizer)
        run.accelerator.scaler.update()
        run.lr_scheduler.step()
        run.optimizer.zero_grad()
        run.ema.step(run.model.parameters())

    trained = make()
    for _ in range(3):
        step(trained)
    checkpoints.save(trained, tmp_path, 3, dict(global_step=3, run_id="r"))
    resumed = make()
    checkpoints.load(resumed, tmp_path / "checkpoint-3")
    assert {p.suffix for p in (tmp_path / "checkpoint-3").iterdir()} == {".safetensors", ".json"}
    torch.manual_seed(1)
    step(trained)
    torch.manual_seed(1)
    step(resumed)  # one more step each: same weights, moments, rate, EMA and scale
    for a, b in zip(trained.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert trained.lr_scheduler.get_last_lr() == resumed.lr_scheduler.get_last_lr()
    assert all(torch.equal(a, b) for a, b in zip(trained.ema.shadow_params, resumed.ema.shadow_params))
    assert trained.accelerator.scaler.state_dict() == resumed.accelerator.scaler.state_dict()
    # A longer run resumed from it: its first step already uses the longer schedule's rate, not the stale one.
    longer = make(total_steps=20)
    checkpoints.load(longer, tmp_path / "checkpoint-3")
    expected = 1e-2 * longer.lr_scheduler.lr_lambdas[0](3)
    assert longer.optimizer.param_groups[0]["lr"] == expected == longer.lr_scheduler.get_last_lr()[0]
    assert expected != 1e-2 * trained.lr_scheduler.lr_lambdas[0](3)  # the 10-step schedule's rate at step 3
