"""Both English notebooks run online (against the Hub stand-in, tests/hub_stand_in.py) in quick mode, then
every code cell runs a second time, in order, in the same kernel.

One kernel per notebook does four jobs, so the notebooks run once each here (test_book.py runs them
offline elsewhere):

1. The online branches execute: notebook 01 downloads the pretrained pipeline, streams four
   butterflies, loads the data set from the Hub and uploads the trained pipeline with a model
   card; the scaling-up cell runs the training script online. Notebook 02 loads MNIST from the Hub.
2. Re-runs: after the whole run (and 3), running every code cell again in order succeeds (a learner who
   runs all cells twice, or goes back to the top, must not meet an error).
3. Scrolling back: each quick cell (under 5% of the run's time) runs once more in the state the whole run left,
   latest first, as when a learner reads back and re-runs a demo.
4. The same figures: the set-up cell seeds everything, so the second pass must draw the same
   pictures as the first. This is stricter than "Restart and run all twice gives the same
   figures": the second pass also meets what the first left behind (files, caches, variables).
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import nbformat
import pytest
from hub_stand_in import PRETRAINED, USER, hub_env

from tools.notebook_code import NOTEBOOKS

#: Cells that are known to fail on a second run (or to draw something else), by notebook: the
#: notebooks' authors fix them (issues 19 and 20); until then the tests say which cell it is.
KNOWN_RERUN_FAILURES: dict[str, str] = {}
KNOWN_FIGURE_CHANGES: dict[str, str] = {}
#: Cells that fail when run again after the cells below them, by notebook: none. (Found by this test in
#: 11/2026 and fixed: notebook 01 "shape" read the ``timesteps`` that the training loop overwrites, notebook
#: 02 "objective" and "samplers" the ``noise`` of the DDPM training.)
KNOWN_SCROLL_BACK_FAILURES: dict[str, set] = {}
QUICK_CELL_SHARE = 0.05  # the scroll-back pass re-runs the cells that took less than 5% of the run


def images_of(cell) -> list[bytes]:
    """The PNG pictures a cell displayed, in order."""
    return [out["data"]["image/png"] for out in cell.get("outputs", [])
            if out.get("output_type") in ("display_data", "execute_result") and "image/png" in out.get("data", {})]


def seconds(cell) -> float:
    """How long the cell took in the run that filled its outputs (nbclient records the times)."""
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                      for k in ("iopub.execute_input", "shell.execute_reply"))
    except (KeyError, ValueError):
        return float("inf")
    return (end - start).total_seconds()


def last_line(error: Exception) -> str:
    """The error's last line, without the terminal colours of an IPython traceback."""
    lines = [t for t in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines() if t.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def run_twice(name: str, workdir: Path, env: dict) -> dict:
    """Run notebook ``name`` in ``workdir`` with ``env``, then every code cell again in the same kernel."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(NOTEBOOKS / name), as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
        result = {"first": None, "second": None, "rerun_error": None}
        with client.setup_kernel():
            code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
            for index, cell in code:
                client.execute_cell(cell, index)
            result["first"] = copy.deepcopy(nb)
            # Scrolling back: each quick cell once more in the state the whole run left, latest first.
            result["scroll_back_errors"] = {}
            total = sum(seconds(cell) for _, cell in code)
            for index, cell in reversed(code):
                if seconds(cell) < QUICK_CELL_SHARE * total:
                    try:
                        client.execute_cell(cell, index)
                    except CellExecutionError as error:
                        result["scroll_back_errors"][cell.get("id")] = last_line(error)
            for index, cell in code:
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    result["rerun_error"] = (cell.get("id"), last_line(error))
                    break
            result["second"] = nb
        return result
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module", params=["01_introduction_to_diffusers.ipynb", "02_diffusion_models_from_scratch.ipynb"])
def twice(request, hub, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(Path(request.param).stem)
    env = hub_env(hub, workdir, COURSE_QUICK="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    before = len(hub.requests)
    result = run_twice(request.param, workdir, env)
    result.update(name=request.param, requests=hub.requests[before:], workdir=workdir)
    return result


def outputs_text(nb, cell_id: str) -> str:
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_online_branches_run(twice, hub):
    first = twice["first"]
    if twice["name"].startswith("01"):
        assert any(r.startswith(f"GET /{PRETRAINED}/resolve/") for r in twice["requests"])
        assert "original sizes: [(640, 427), (427, 640), (512, 384), (600, 600)]" in outputs_text(first, "data-pipeline")
        assert "from Hub: huggan/smithsonian_butterflies_subset" in outputs_text(first, "data")
        assert f"Uploaded: https://huggingface.co/{USER}/ddpm-butterflies-32px-course" in outputs_text(first, "share")
        pushed = hub.repo("models", f"{USER}/ddpm-butterflies-32px-course")
        assert pushed is not None and {"model_index.json", "README.md"} <= set(pushed.files)
        # The scaling-up cell's training script ran (its own output goes to the kernel's terminal, not the cell).
        assert "Written: logs, model_index.json, samples, scheduler, unet" in outputs_text(first, "scale")
    else:
        assert "training images from Hub: ylecun/mnist" in outputs_text(first, "data")


def test_every_cell_runs_again_after_a_whole_run(twice):
    name = twice["name"]
    if name in KNOWN_RERUN_FAILURES and twice["rerun_error"] is not None:
        pytest.xfail(KNOWN_RERUN_FAILURES[name])
    assert twice["rerun_error"] is None, f"{name}: re-running cell {twice['rerun_error'][0]!r} failed: " \
                                         f"{twice['rerun_error'][1]}"


def test_a_second_run_draws_the_same_figures(twice):
    name = twice["name"]
    if twice["rerun_error"] is not None:
        pytest.skip(f"the second run stopped at cell {twice['rerun_error'][0]!r}")
    changed = [c.get("id") for c, d in zip(twice["first"].cells, twice["second"].cells)
               if c.cell_type == "code" and images_of(c) != images_of(d)]
    if name in KNOWN_FIGURE_CHANGES and changed:
        pytest.xfail(KNOWN_FIGURE_CHANGES[name])
    assert not changed, f"{name}: the second run drew other pictures in cells {changed}"


def test_a_quick_cell_runs_again_after_the_cells_below_it(twice):
    """What a learner does when reading back: re-run a demo cell after the rest of the notebook ran."""
    name, failed = twice["name"], twice["scroll_back_errors"]
    known = KNOWN_SCROLL_BACK_FAILURES.get(name, set())
    unknown = {k: v for k, v in failed.items() if k not in known}
    assert not unknown, f"{name}: cells that fail when re-run after the cells below them: {unknown}"
    if failed:
        pytest.xfail(f"{name}: known (issues 19 and 20 fix them): cells {sorted(failed)} fail when re-run after the "
                     f"cells below them: {failed}")
