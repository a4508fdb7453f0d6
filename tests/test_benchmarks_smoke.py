"""Smoke test of benchmarks/data_pipeline.py so the benchmark cannot rot: it runs both of its data
pipelines and its main() on a few small JPEGs. Shapes and ranges only, never timings."""
import pytest
import torch

from benchmarks import data_pipeline


@pytest.fixture(scope="module")
def bench():
    return data_pipeline


@pytest.fixture
def jpegs(bench, tmp_path):
    return bench.make_standin_folder(tmp_path / "jpegs", count=6, width=80, height=60, quality=90)


def check_batch(batch, size=4):
    assert batch.shape == (size, 3, 32, 32) and batch.dtype == torch.float32
    assert -1 <= batch.min() < 0 < batch.max() <= 1  # normalised to [-1, 1], not [0, 1]
    assert batch.std() > 0.1  # pictures, not a flat colour


def test_standin_jpegs_are_full_size_and_cached(bench, jpegs):
    from PIL import Image

    files = sorted(jpegs.glob("*.jpg"))
    assert len(files) == 6
    with Image.open(files[0]) as img:
        assert img.format == "JPEG" and img.size == (80, 60)
    mtime = files[0].stat().st_mtime_ns
    bench.make_standin_folder(jpegs, count=6, width=80, height=60, quality=90)
    assert files[0].stat().st_mtime_ns == mtime  # an existing folder is reused, not rewritten


def test_both_pipelines_give_training_batches(bench, jpegs):
    course, seconds = bench.course_batches(jpegs, batch_size=4)
    assert seconds >= 0
    original = bench.original_loader(jpegs, batch_size=4, workers=0)
    course_batch, original_batch = next(iter(course)), next(iter(original))
    check_batch(course_batch)
    check_batch(original_batch)
    # The original decodes each file every step: one epoch covers the folder (6 = 4 + 2).
    assert [len(b) for b in original] == [4, 2]


def test_timing_loop_with_a_tiny_model(bench, jpegs):
    from course_utils import make_unet

    model = make_unet("butterflies-cpu", block_out_channels=(8, 8, 16, 16), norm_num_groups=4)
    pipelines = {"course": bench.course_batches(jpegs, batch_size=4)[0],
                 "original": bench.original_loader(jpegs, batch_size=4)}
    times = bench.time_pipelines(pipelines, bench.make_train_step(model), steps=2, warmup=1)
    assert set(times) == {"course", "original"}
    assert all(len(t["data"]) == len(t["compute"]) == 2 for t in times.values())  # warm-up not counted


def test_main_runs_end_to_end(bench, jpegs, capsys):
    assert bench.main(["--folder", str(jpegs), "--preset", "butterflies-cpu", "--steps", "1",
                       "--warmup", "0", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "original: JPEG Dataset, workers=0" in out and "data share" in out
    assert sum(line.startswith(("PASS:", "MISS:")) for line in out.splitlines()) == 2


def test_sample_quality_classifier_and_augmentation_run():
    """benchmarks/mnist_sample_quality.py's pieces on a few random images (its notebook run is tests/test_book.py's)."""
    from benchmarks import mnist_sample_quality as quality

    x = torch.rand(6, 1, 28, 28)
    assert quality.shift(x, torch.Generator().manual_seed(0)).shape == x.shape
    result = quality.verdict(quality.make_classifier().eval(), x)
    assert result["n"] == 6 and sum(result["counts"]) == 6 and 0 <= result["confident"] <= 6


def test_sample_quality_distance_and_not_a_digit_check():
    """The judge of benchmarks/mnist_sample_quality.py: KID is about 0 between two samples of one
    distribution and large against another; the "not a digit" check flags what lies far from the
    reference features and, calibrated on the reference's own kind, few of those."""
    from benchmarks import mnist_sample_quality as quality

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 16, generator=g), torch.randn(300, 16, generator=g)
    assert abs(quality.kid(a, b)) < 0.05 < quality.kid(a, b + 2)
    classifier = quality.make_classifier().eval()
    blobs = torch.zeros(300, 1, 28, 28)
    blobs[:, :, 8:20, 8:20] = torch.rand(300, 1, 1, 1, generator=g)  # one kind of image: a grey square
    judge = quality.Judge(classifier, blobs[:200], blobs[200:])
    same, noise = judge.score(blobs[200:]), judge.score(torch.rand(50, 1, 28, 28, generator=g))
    assert same["not_a_digit"] <= 0.1 and noise["not_a_digit"] == 1.0 and noise["kid"] > same["kid"]
    pairs = quality.overlaid_pairs(blobs, torch.arange(300) % 10, 4)
    assert pairs.shape == (4, 1, 28, 28)


def test_ddpm_retrain_trains_the_notebook_s_ddpm_model_again_and_scores_it(monkeypatch, capsys):
    """benchmarks/ddpm_retrain.py in quick mode: the notebook's DDPM cells train once per seed, and each
    training is sampled and scored."""
    from benchmarks import ddpm_retrain

    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ddpm_retrain.main(["--quick", "--seeds", "3", "4", "--n", "8", "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("our DDPM step, 2 steps") == 2 and "seed 3: 4 steps of 16" in printed
