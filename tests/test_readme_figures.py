"""tools/readme_figures.py draws the README's pictures: the whole script runs in quick mode here (a few training
steps, so noise rather than pictures), and the committed pictures are small and linked from both READMEs."""
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures():
    from tools import readme_figures

    return readme_figures


def test_quick_run_draws_both_pictures(figures, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert figures.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]) == 0
    for name, min_size in ((figures.OVERVIEW, (900, 600)), (figures.CHAIN, (900, 250))):
        path = tmp_path / "out" / name
        assert 0 < path.stat().st_size <= figures.MAX_BYTES
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
    assert (tmp_path / "work" / "butterflies" / "unet" / "diffusion_pytorch_model.safetensors").is_file()  # trained, saved
    saved = torch.load(tmp_path / "work" / "digits.pt")
    assert saved["samples"].shape[1:] == (1, 28, 28) and saved["facts"]["n_steps"] == 40  # notebook 02's 40-step sampler
    out = capsys.readouterr().out
    assert "(quick mode: not a result)" in out and "--model_preset butterflies-cpu" in out


def test_training_command_is_notebook_01_s_cpu_recipe(figures):
    from course_utils.train.args import parse_args

    args = parse_args(figures.train_command(Path("x"))[3:])
    assert (args.model_preset, args.resolution, args.train_batch_size, args.num_epochs, args.learning_rate,
            args.random_flip, args.beta_schedule) == ("butterflies-cpu", 32, 64, 30, 4e-4, True, "squaredcos_cap_v2")


def test_forward_rows_start_clean_and_end_in_noise(figures):
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    rows = figures.forward_rows(images)
    assert rows.shape == (2, len(figures.FORWARD_STEPS), 3, 8, 8)
    assert torch.allclose(rows[:, 0], images, atol=0.05)  # t = 0: almost the image
    assert (rows[:, -1] - images).abs().mean() > 0.5  # t = 999: noise


@pytest.mark.parametrize("readme", ["README.md", "README_CN.md"])
def test_committed_pictures_are_small_and_shown(figures, readme):
    text = (ROOT / readme).read_text(encoding="utf-8")
    for name in (figures.OVERVIEW, figures.CHAIN):
        path = ROOT / "docs" / name
        assert path.is_file() and path.stat().st_size <= figures.MAX_BYTES
        assert f"(docs/{name})" in text
    assert "python -m tools.readme_figures" in text
