"""The training script, run for real: ``python -m course_utils.train`` as a subprocess, alone and under
``accelerate launch`` with two CPU processes (gloo). A tiny UNet at 16 px keeps each run to seconds;
quick mode is switched off except where it is what is tested, so runs are as long as each test asks.
"""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from course_utils import get_device
from course_utils.train import __main__ as script
from course_utils.train import args as train_args
from course_utils.train import checkpoints
from tests.train_harness import REPO, TINY_UNET, run_script, script_env, tiny_args, weights_digest

# 24 images in batches of 4 = 6 batches per epoch; accumulating 2 = 3 optimizer steps per epoch,
# so 7 steps cross two epoch boundaries and the resume point (step 2) is in the middle of an epoch.
STEPS = 7


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    (folder / "tiny_unet.json").write_text(json.dumps(TINY_UNET))
    return folder

def unet_weights(output_dir: Path) -> dict:
    return load_file(output_dir / "unet" / "diffusion_pytorch_model.safetensors")


def loss_rows(output_dir: Path) -> list[str]:
    return (output_dir / "logs" / "loss.csv").read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def unbroken(workdir, tmp_path_factory):
    """One uninterrupted run with EMA, flips, accumulation and checkpoints every 2 steps (keep 2)."""
    out = workdir / "unbroken"
    result = run_script(tiny_args(workdir, out, "--max_train_steps", str(STEPS), "--use_ema", "--random_flip",
                                  "--checkpointing_steps", "2", "--checkpoints_total_limit", "2",
                                  "--save_images_epochs", "1"), tmp_path_factory.getbasetemp())
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_trains_saves_and_the_pipeline_reloads(unbroken):
    from diffusers import DDPMPipeline

    out, result = unbroken
    assert "Trained 7 steps" in result.stdout
    rows = loss_rows(out)
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, STEPS + 1))
    assert all(np.isfinite(float(r.split(",")[2])) for r in rows)
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not [p for p in out.rglob("*.bin") if not p.parent.name.startswith("checkpoint-")]  # no pickles
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch-0001.png", "epoch-0002.png", "epoch-0003.png"]
    assert [p.name for _, p in checkpoints.complete_checkpoints(out)] == ["checkpoint-4", "checkpoint-6"]
    assert not list(out.glob(".checkpoint-*"))

    pipeline = DDPMPipeline.from_pretrained(out)
    assert pipeline.unet.config.sample_size == 16
    assert pipeline.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    images = pipeline(batch_size=2, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                      output_type="np").images
    assert images.shape == (2, 16, 16, 3) and np.isfinite(images).all()
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0


def test_killed_run_resumes_to_the_same_weights(unbroken, workdir, tmp_path_factory):
    reference, _ = unbroken
    out = workdir / "killed"
    args = tiny_args(workdir, out, "--max_train_steps", str(STEPS), "--use_ema", "--random_flip",
                     "--checkpointing_steps", "2", "--checkpoints_total_limit", "2", "--save_images_epochs", "1")
    # SIGKILL half-way through writing checkpoint-4: after checkpoint-2 was complete.
    killed = run_script(args, tmp_path_factory.getbasetemp(), harness=["--kill-in-checkpoint", "4"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / ".checkpoint-4.tmp").is_dir() and not (out / "checkpoint-4").exists()
    assert checkpoints.resolve("latest", out)[0] == out / "checkpoint-2"

    resumed = run_script(args + ["--resume_from_checkpoint", "latest"], tmp_path_factory.getbasetemp())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {out / 'checkpoint-2'} at step 2" in resumed.stdout
    assert not (out / ".checkpoint-4.tmp").exists()
    # Same data order, noise, optimizer, LR schedule and EMA: identical losses and bit-identical weights.
    assert loss_rows(out) == loss_rows(reference)
    expected, got = unet_weights(reference), unet_weights(out)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_ctrl_c_while_training_waits_for_the_step_and_a_second_one_does_not():
    interrupts = script.Interrupts()
    with pytest.raises(KeyboardInterrupt):  # before the loop (set-up, data): at once
        interrupts.handle(signal.SIGINT, None)
    interrupts.deferred = True
    interrupts.handle(signal.SIGINT, None)  # during a step: only noted
    assert interrupts.requested
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C: at once
        interrupts.handle(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):  # the first one, at the end of the step
        interrupts.check()
    assert interrupts.signum == signal.SIGINT  # main returns 128 + signum: 130
    polite = script.Interrupts()
    polite.deferred = True
    polite.handle(signal.SIGTERM, None)
    assert polite.requested and 128 + polite.signum == 143


def test_two_processes_share_the_data_and_save_once(workdir, tmp_path_factory):
    out = workdir / "ddp"
    # Accelerate 1.x spawns CPU processes through torchrun only with --multi_gpu; ACCELERATE_USE_CPU
    # makes each process pick the CPU and gloo (its --cpu flag alone runs one process unless MPI is set up).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(port)]
    result = run_script(tiny_args(workdir, out, "--max_train_steps", "3", "--random_flip"),
                        tmp_path_factory.getbasetemp(), launcher=launcher, ACCELERATE_USE_CPU="1",
                        CUDA_VISIBLE_DEVICES="", harness=["--log-ranks"])
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((out / "logs" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["num_processes"] for r in ranks] == [2, 2]
    first, second = (set(r["indices"]) for r in ranks)
    assert len(first) == len(second) == 12 and not first & second and first | second == set(range(24))
    # Gradients were averaged: both processes end with the same weights, and the file holds exactly those.
    assert ranks[0]["final_weights_sha256"] == ranks[1]["final_weights_sha256"]
    assert weights_digest(unet_weights(out)) == ranks[0]["final_weights_sha256"]
    assert [r["wrote_pipeline"] for r in ranks] == [True, False]
    assert result.stdout.count("Trained 3 steps") == 1
    assert len(loss_rows(out)) == 3


def test_quick_mode_caps_the_run(workdir, tmp_path_factory):
    from PIL import Image

    out = workdir / "quick"
    args = ["--model_config_name_or_path", str(workdir / "tiny_unet.json"), "--resolution", "16", "--train_batch_size", "8",
            "--report_to", "none", "--output_dir", str(out)]
    result = run_script(args, tmp_path_factory.getbasetemp(), COURSE_QUICK="1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Quick mode (COURSE_QUICK=1): max_train_steps=4, max_train_samples=64" in result.stdout
    assert "64 images" in result.stdout
    assert len(loss_rows(out)) == 4
    grid = Image.open(next((out / "samples").iterdir()))
    assert grid.size == (2 * 16 + 3 * 2, 2 * 16 + 3 * 2)  # 4 samples in a 2x2 grid, 2 px padding


def test_push_to_hub_without_a_token_fails_before_training(tmp_path):
    home = tmp_path / "hf-home"
    home.mkdir()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "course_utils.train", "--push_to_hub", "--output_dir", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--push_to_hub needs a Hugging Face token" in result.stderr and "HF_TOKEN" in result.stderr
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.fixture
def empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    return tmp_path / "empty"


@pytest.mark.parametrize("argv, message", [
    (["--resolution", "30"], "--resolution 30 is not a multiple of 8, the UNet's downsampling factor"),
    (["--train_data_dir", "{empty}"], "holds no images"),
    (["--train_data_dir", "{tmp}/missing"], "no such folder"),
    (["--resume_from_checkpoint", "checkpoint-99", "--output_dir", "{tmp}"], "no such checkpoint folder"),
    (["--model_config_name_or_path", "{tmp}/missing.json"], "no such file"),
    (["--model_preset", "mnist", "--model_config_name_or_path", "{tmp}/x.json"], "not both"),
    (["--dataset_name", "a/b", "--train_data_dir", "{empty}"], "not both"),
    (["--train_batch_size", "0"], "at least 1"),
    (["--prediction_type", "v"], "invalid choice"),
])
def test_bad_options_fail_at_once(argv, message, tmp_path, empty_folder, capsys):
    argv = [a.format(tmp=tmp_path, empty=empty_folder) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        train_args.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_fp16_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 is allowed")
    with pytest.raises(SystemExit):
        train_args.parse_args(["--mixed_precision", "fp16"])
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_checkpoints_ignore_half_written_folders(tmp_path):
    assert checkpoints.resolve("latest", tmp_path) == (None, [])  # nothing yet: start afresh
    for name, complete in [("checkpoint-2", True), ("checkpoint-10", True), (".checkpoint-12.tmp", True),
                           ("checkpoint-11", False), ("checkpoint-x", True)]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / checkpoints.STATE_FILE).write_text('{"global_step": 0, "files": {}}')
    assert [s for s, _ in checkpoints.complete_checkpoints(tmp_path)] == [2, 10]
    assert checkpoints.resolve("latest", tmp_path)[0] == tmp_path / "checkpoint-10"
    assert checkpoints.resolve("checkpoint-2", tmp_path)[0] == tmp_path / "checkpoint-2"
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        checkpoints.resolve("checkpoint-11", tmp_path)
    checkpoints.remove_stale_temporaries(tmp_path)
    assert not (tmp_path / ".checkpoint-12.tmp").exists()


def test_help_explains_every_option_and_no_test_hook(capsys):
    parser = train_args.build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 35
    for action in options:
        assert action.option_strings[0] in text and action.help and len(action.help) > 15, action.dest
    assert not [o for a in options for o in a.option_strings if "log_data" in o or "fault" in o or "test" in o]


# The names of diffusers' examples/unconditional_image_generation/train_unconditional.py; the
# course's own earlier names are gone, abbreviations included.
def test_option_names_match_diffusers_and_old_names_are_rejected(capsys):
    args = train_args.parse_args(["--ddpm_num_steps", "500", "--ddpm_beta_schedule", "linear"])
    assert (args.num_train_timesteps, args.beta_schedule) == (500, "linear")
    for old in (["--num_train_timesteps", "500"], ["--beta_schedule", "linear"], ["--model_config", "x.json"]):
        with pytest.raises(SystemExit):
            train_args.parse_args(old)
        assert "unrecognized arguments" in capsys.readouterr().err, old


def test_model_config_name_or_path_takes_a_file_or_a_saved_unet_folder(workdir, tmp_path):
    import shutil

    (tmp_path / "pipeline" / "unet").mkdir(parents=True)
    shutil.copy(workdir / "tiny_unet.json", tmp_path / "pipeline" / "unet" / "config.json")
    for argv in (["--model_config_name_or_path", str(workdir / "tiny_unet.json")],
                 ["--model_config_name_or_path", str(tmp_path / "pipeline" / "unet")],
                 ["--model_config_name_or_path", str(tmp_path / "pipeline")]):
        config = train_args.parse_args([*argv, "--resolution", "16"]).unet_config
        assert config["block_out_channels"] == TINY_UNET["block_out_channels"] and config["sample_size"] == 16, argv


def test_default_preset_is_the_package_s_choice_for_the_device(monkeypatch):
    from course_utils.models import butterflies_preset_for

    monkeypatch.setenv("ACCELERATE_USE_CPU", "")
    args = train_args.parse_args([])
    assert args.model_preset == butterflies_preset_for(get_device())
    monkeypatch.setenv("ACCELERATE_USE_CPU", "yes")  # any spelling env_flag accepts
    assert train_args.parse_args([]).model_preset == "butterflies-cpu"


def test_defaults_parse_and_quick_caps(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_QUICK", "1")
    args = train_args.parse_args(["--resume_from_checkpoint", "latest", "--output_dir", str(tmp_path / "new" / "run")])
    assert args.resume_path is None and args.unet_config["sample_size"] == 32
    assert (args.max_train_steps, args.max_train_samples, args.ddpm_num_inference_steps) == (4, 64, 4)
    assert not (tmp_path / "new").exists()  # checked, not created
    monkeypatch.setenv("COURSE_QUICK", "")
    args = train_args.parse_args(["--max_train_steps", "9"])
    assert args.max_train_steps == 9 and args.max_train_samples is None and args.quick_caps == []


def test_an_output_dir_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(SystemExit) as exit_info:
        train_args.parse_args(["--output_dir", str(tmp_path / "a-file")])
    assert exit_info.value.code == 2
    assert f"--output_dir {tmp_path / 'a-file'}: cannot write in it: " in capsys.readouterr().err
    # The script itself: exit code 2 and a usage message, no traceback, nothing left behind.
    output_dir = tmp_path / "a-file" / "run"
    result = subprocess.run([sys.executable, "-m", "course_utils.train", "--output_dir", str(output_dir)],
                            cwd=REPO, env=script_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"--output_dir {output_dir}: cannot create it: {tmp_path / 'a-file'} is a file, not a folder" in result.stderr
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # the probe left nothing behind


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, which even root cannot write in")
def test_an_unwritable_output_dir_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_args.parse_args(["--output_dir", "/proc/course-run"])
    assert exit_info.value.code == 2
    assert "--output_dir /proc/course-run: cannot create it: /proc is not writable" in capsys.readouterr().err


def test_a_named_hub_data_set_that_cannot_be_loaded_is_a_usage_error(capsys):
    from course_utils.train.loop import UsageError, load_images

    args = train_args.parse_args(["--dataset_name", "huggan/smithsonian_butterflies_subset", "--resolution", "16",
                                  "--max_train_samples", "8"])
    # Offline with nothing cached: named by the learner, so no stand-in; and never taken for a folder.
    with pytest.raises(UsageError, match="Could not load the Hub data set 'huggan/smithsonian_butterflies_subset'"
                                         ": HF_HUB_OFFLINE=1 is set and no copy is cached"):
        load_images(args)
    assert "Offline: using" not in capsys.readouterr().out
