"""The online path, run against a local stand-in for the Hub (tests/hub_stand_in.py, the ``hub`` fixture).

CI has no Hub, so without these tests the path most learners take never runs: the loaders on the
Hub's data sets, a pretrained pipeline, the training script on ``--dataset_name`` pushing its
model, and the Hub faults of the reliability review (reviews/reliability.md): D6 (a stalled Hub
hangs ``--push_to_hub`` before or after training), D9 (``--push_to_hub`` uploads whatever is in
``--output_dir``), D35 (the model card publishes a local path), D36 (``make book`` pushes).

huggingface_hub and datasets read ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when they are imported, so
everything that downloads runs in a new process given ``hub_env``; ``hub_reachable`` reads the
environment at each call and is tested in this process.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from hub_stand_in import BUTTERFLIES, MNIST, PRETRAINED, USER, butterfly_colour, hub_env
from PIL import Image

from course_utils import data_sources, hub_timeouts

REPO = Path(__file__).resolve().parents[1]
TINY_UNET = dict(in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=[8, 16], norm_num_groups=4,
                 down_block_types=["DownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "UpBlock2D"])
SECRETS = {".env": "HF_TOKEN=hf_secret", ".netrc": "machine x password y", ".ssh/id_rsa": "PRIVATE KEY",
           "notes/diary.txt": "private"}


def run_python(code: str, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def stall(hub):
    """Make ``hub`` accept some requests and never answer them (for this test only)."""
    def set_stall(*prefixes):
        hub.stall.update(prefixes)
    yield set_stall
    hub.stall.clear()


# --------------------------------------------------------------------------- loaders, pipeline, reachability
ONLINE_PROBE = f"""
import json, torch, course_utils as cu
from diffusers import DDPMPipeline
butterflies, digits = cu.load_butterflies(size=32), cu.load_mnist()
pipeline = DDPMPipeline.from_pretrained({PRETRAINED!r})
torch.save(dict(butterflies=butterflies.images, digits=digits.images, labels=digits.labels), "probe.pt")
print(json.dumps(dict(sources=[butterflies.source, digits.source], classes=digits.classes,
                      sample_size=pipeline.unet.config.sample_size, reachable=cu.hub_reachable())))
"""


def test_loaders_and_a_pretrained_pipeline_come_from_the_hub(hub, tmp_path):
    env = hub_env(hub, tmp_path)
    result = subprocess.run([sys.executable, "-c", ONLINE_PROBE], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sources"] == [f"Hub: {BUTTERFLIES}", f"Hub: {MNIST}"]
    assert "Offline" not in result.stdout
    assert report["reachable"] and report["sample_size"] == 32 and report["classes"] == [str(d) for d in range(10)]
    tensors = torch.load(tmp_path / "probe.pt")
    butterflies = tensors["butterflies"]
    assert butterflies.shape == (36, 3, 32, 32) and -1 <= butterflies.min() and butterflies.max() <= 1
    for i in range(36):  # each photograph, whatever its size and mode, arrives as itself: its wing colour
        wing = ((butterflies[i, :, 16, 4] + 1) * 127.5).tolist()
        if i % 12 == 7:  # the grayscale photograph: three equal channels
            assert max(wing) - min(wing) < 2, (i, wing)
        elif i % 12 != 11:  # RGB (the CMYK one is converted by PIL its own way)
            assert all(abs(a - b) < 24 for a, b in zip(wing, butterfly_colour(i))), (i, wing)
    digits, labels = tensors["digits"], tensors["labels"]
    assert digits.shape == (60, 1, 28, 28) and sorted(labels.tolist()) == sorted(i % 10 for i in range(60))
    bright_rows = (digits[:, 0, :, 12] > 0.5).sum(1)  # each stand-in digit has label + 1 bright rows
    assert torch.equal(bright_rows, labels + 1)


def test_hub_reachable_answers_the_stand_in_and_gives_up_on_a_stalled_one(hub, stall, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    # huggingface_hub read HF_HUB_OFFLINE when it was imported (CI exports HF_HUB_OFFLINE=1): online again
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert data_sources.hub_reachable.__wrapped__(timeout=3.0)
    stall("HEAD /")
    started = time.perf_counter()
    assert not data_sources.hub_reachable.__wrapped__(timeout=1.0)
    assert time.perf_counter() - started < 3


def test_a_bounded_hub_call_gives_up_says_what_to_do_and_passes_errors_on(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example")
    started = time.perf_counter()
    with pytest.raises(hub_timeouts.HubTimeout, match=r"^Creating x: the Hub \(http://mirror.example\) did not "
                                                      r"answer within 1 s\. Try later\.$"):
        hub_timeouts.bounded("Creating x", lambda: time.sleep(30), 1.0, "Try later.")
    assert time.perf_counter() - started < 10
    with pytest.raises(ZeroDivisionError):
        hub_timeouts.bounded("Dividing", lambda: 1 / 0, 5.0, "")
    assert hub_timeouts.bounded("Adding", lambda: 1 + 1, 5.0, "") == 2
    monkeypatch.setenv("COURSE_HUB_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="COURSE_HUB_TIMEOUT must be a number of seconds"):
        hub_timeouts.hub_timeout()
    monkeypatch.setenv("COURSE_HUB_TIMEOUT", "7")
    assert hub_timeouts.hub_timeout() == 7


# --------------------------------------------------------------------------- the training script
def train(hub, tmp_path: Path, out: Path, *extra: str, timeout: int = 240, **env) -> subprocess.CompletedProcess:
    config = tmp_path / "tiny_unet.json"
    config.write_text(json.dumps(TINY_UNET))
    args = ["--model_config_name_or_path", str(config), "--resolution", "16", "--max_train_samples", "8", "--train_batch_size",
            "4", "--max_train_steps", "2", "--ddpm_num_inference_steps", "2", "--eval_batch_size", "2",
            "--report_to", "none", "--output_dir", str(out), *extra]
    return subprocess.run([sys.executable, "-m", "course_utils.train", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=hub_env(hub, tmp_path, COURSE_QUICK="", **env))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of 8 small pictures of the learner's own, named the way a private folder may be."""
    folder = tmp_path_factory.mktemp("home") / "alice-private-photos"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (40, 30), butterfly_colour(i)).save(folder / f"{i}.png")
    return folder


def plant_secrets(folder: Path) -> None:
    for name, text in SECRETS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_training_script_trains_on_a_hub_data_set_and_pushes_only_what_it_wrote(hub, tmp_path):
    """--dataset_name and --push_to_hub, online; D9: the secrets in --output_dir stay on this machine."""
    out = tmp_path / "run"
    plant_secrets(out)
    result = train(hub, tmp_path, out, "--dataset_name", BUTTERFLIES, "--push_to_hub", "--hub_model_id", "tiny-ddpm")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Training on Hub: {BUTTERFLIES}: 8 images" in result.stdout
    repo = hub.repo("models", f"{USER}/tiny-ddpm")
    assert set(repo.files) == {"README.md", "model_index.json", "unet/config.json",
                               "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
                               "samples/epoch-0001.png", "logs/loss.csv"}
    assert f"Pushed 7 files to {hub.url}/{USER}/tiny-ddpm" in result.stdout
    assert repo.files["unet/diffusion_pytorch_model.safetensors"] == (
        out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    card = repo.files["README.md"].decode()
    assert f"Hub: {BUTTERFLIES}" in card and f'DDPMPipeline.from_pretrained("{USER}/tiny-ddpm")' in card
    assert str(tmp_path) not in card


def test_a_stalled_hub_stops_the_push_before_training(hub, stall, photos, tmp_path):
    """D6, before training: creating the repository is bounded, and nothing trains."""
    stall("POST /api/repos/create")
    out = tmp_path / "run"
    result = train(hub, tmp_path, out, "--train_data_dir", str(photos), "--push_to_hub", "--hub_model_id", "stalled",
                   timeout=120, COURSE_HUB_TIMEOUT="2")  # before the fix: waits forever (TimeoutExpired)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "did not answer within 2 s" in result.stderr and "Nothing was trained" in result.stderr
    assert "Traceback" not in result.stderr and not (out / "unet").exists()


def test_a_stalled_upload_is_bounded_and_says_how_to_upload_later(hub, stall, photos, tmp_path):
    """D6, after training: the upload is bounded and the saved pipeline is named. D35: trained on a
    folder of the learner's images, the model card does not publish the folder's path."""
    stall("POST /api/validate-yaml", "POST /api/models/")
    out = tmp_path / "run"
    result = train(hub, tmp_path, out, "--train_data_dir", str(photos), "--push_to_hub", "--hub_model_id",
                   "upload-stalls", timeout=180, COURSE_HUB_TIMEOUT="2")  # before the fix: waits forever
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Trained 2 steps" in result.stdout and (out / "unet" / "diffusion_pytorch_model.safetensors").exists()
    message = result.stderr.strip().splitlines()[-1]
    assert f"Uploading to {USER}/upload-stalls" in message and "did not answer within" in message
    assert f"The pipeline is saved in {out}" in message and "hf upload" in message
    card = (out / "README.md").read_text()
    assert "a folder of your own images" in card and "alice-private-photos" not in card and str(photos) not in card


NOTEBOOK_PUSH = """
import sys, time, course_utils as cu
from pathlib import Path
from huggingface_hub import create_repo, get_full_repo_name, upload_folder
Path("my-pipeline").mkdir()
Path("my-pipeline", "README.md").write_text("a model card")
repo_id = sys.argv[1]
for call, args, kwargs in [(get_full_repo_name, ("model-name",), {}), (create_repo, (repo_id,), dict(exist_ok=True)),
                           (upload_folder, (), dict(repo_id=repo_id, folder_path="my-pipeline"))]:
    started = time.perf_counter()
    try:
        cu.hub_call(call, *args, **kwargs)
        print("ANSWERED", call.__name__)
    except cu.hub_timeouts.HubTimeout as error:
        print(f"GAVE UP after {time.perf_counter() - started:.0f} s:", error)
"""


@pytest.mark.parametrize("stalled, name", [("GET /api/whoami-v2", "get_full_repo_name"),
                                           ("POST /api/repos/create", "create_repo"),
                                           ("POST /api/models/", "upload_folder")], ids=["who-am-i", "create", "upload"])
def test_notebook_01_s_hub_calls_give_up_on_a_stalled_hub(hub, stall, tmp_path, stalled, name):
    """Notebook 01's share cell: ``get_full_repo_name``, ``create_repo`` and ``upload_folder`` through ``cu.hub_call`` end in one
    line that says what to do when the Hub stops answering (before: the cell never ended)."""
    repo_id = f"{USER}/share-{name}"
    hub.add("models", repo_id)  # exists: the call that is not stalled answers
    stall(stalled)
    env = hub_env(hub, tmp_path, COURSE_HUB_TIMEOUT="2")
    result = subprocess.run([sys.executable, "-c", NOTEBOOK_PUSH, repo_id], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    gave_up = [line for line in lines if line.startswith("GAVE UP")]
    assert len(lines) == 3 and len(gave_up) == 1, lines
    assert f"{name}: the Hub ({hub.url}) did not answer within" in gave_up[0] and "COURSE_HUB_TIMEOUT" in gave_up[0]
    assert int(gave_up[0].split()[3]) <= 5  # 2 s (create) or 2 s plus the folder's few bytes at 100 kB/s


# --------------------------------------------------------------------------- the book build (D36)
def test_the_book_build_never_talks_to_the_hub(hub, tmp_path, monkeypatch):
    """D36: with a token and a reachable Hub, a docs build must not create a repository or upload."""
    from tools import book

    cell = ("import course_utils as cu\nfrom huggingface_hub import create_repo, get_token\n"
            "if get_token() and cu.hub_reachable():\n    create_repo('book-build-side-effect', exist_ok=True)\n"
            "print('token:', get_token() is not None, 'reachable:', cu.hub_reachable())")
    path = tmp_path / "share.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), str(path))
    for key, value in hub_env(hub, tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = len(hub.requests)
    nb, _ = book.execute(path, tmp_path / "cache", quick=True, device="cpu", use_cache=False)
    assert "token: False reachable: False" in nb.cells[0].outputs[0]["text"]
    assert hub.requests[before:] == [] and hub.repo("models", f"{USER}/book-build-side-effect") is None
