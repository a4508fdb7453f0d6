"""Notebook 01's branches that CI's CPU would otherwise never take: the DreamBooth cell's guard
without 🤗 Transformers, and the training-script cell's output streamed into the cell as it comes."""
import contextlib
import io
import subprocess
import sys
import time
import types

import pytest
from notebook_helpers import cells_by_id, read_notebook

from course_utils import run_live

NOTEBOOKS = ["01_introduction_to_diffusers.ipynb", "01_introduction_to_diffusers_CN.ipynb"]


def _run_dreambooth_cell(name, monkeypatch, on_gpu, hub):
    import importlib

    import torch

    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    fake_cu = types.SimpleNamespace(hub_reachable=lambda: hub, pick=lambda **sizes: sizes.get("quick", 1))
    namespace = {"ON_GPU": on_gpu, "cu": fake_cu, "importlib": importlib, "torch": torch,
                 "device": torch.device("cpu"), "display": print}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(cells_by_id(read_notebook(name))["dreambooth"].source, namespace)
    return out.getvalue()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_dreambooth_without_transformers_says_what_to_install(name, monkeypatch):
    shown = _run_dreambooth_cell(name, monkeypatch, on_gpu=True, hub=True)
    assert shown.count("\n") == 1 and "pip install transformers" in shown, shown


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_dreambooth_without_a_gpu_or_the_hub_skips_in_one_line(name, monkeypatch):
    for on_gpu, hub in [(False, True), (True, False)]:
        shown = _run_dreambooth_cell(name, monkeypatch, on_gpu=on_gpu, hub=hub)
        assert shown.count("\n") == 1 and "needs a CUDA GPU" in shown


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_deprecated_torch_dtype(name):
    # diffusers >= 0.42 (the package's floor) spells it dtype=; torch_dtype= warns there
    assert not any("torch_dtype" in c.source for c in read_notebook(name).cells if c.cell_type == "code")


class _Clock(io.StringIO):
    """stdout that notes when each piece arrived."""

    def __init__(self):
        super().__init__()
        self.arrivals = []

    def write(self, text):
        if text:
            self.arrivals.append((time.perf_counter(), text))
        return super().write(text)


CHILD = "import time\nprint('first')\ntime.sleep(1.5)\nprint('progress 50%', end='\\r')\nprint('second')\n"


def test_run_live_shows_each_line_as_it_comes(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(sys, "stdout", clock)
    started = time.perf_counter()
    assert run_live([sys.executable, "-c", CHILD]) == 0
    finished = time.perf_counter()
    first = next(when for when, text in clock.arrivals if "first" in text)
    assert first - started < finished - started - 1.0, "the first line waited for the child to finish"
    assert clock.getvalue().replace("\r\n", "\n") == "first\nprogress 50%\rsecond\n"  # \r kept: bars redraw in place


def test_run_live_raises_on_failure_and_shows_the_error(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(sys, "stdout", clock)
    with pytest.raises(subprocess.CalledProcessError):
        run_live([sys.executable, "-c", "import sys; sys.exit('error: no such data set')"])
    assert "error: no such data set" in clock.getvalue()
    assert run_live([sys.executable, "-c", "raise SystemExit(3)"], check=False) == 3


def test_offline_standin_dataset_is_like_the_hub_s():
    from course_utils import butterfly_standin_dataset

    data = butterfly_standin_dataset(3, size=(160, 120))
    assert len(data) == 3 and data.features["image"].__class__.__name__ == "Image"
    assert data[0]["image"].size == (160, 120) and data[0]["image"].format == "JPEG"  # decoded on access
