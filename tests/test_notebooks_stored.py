"""What all four notebooks share, checked on each: stored clean (no outputs, no execution counts,
no widget state), the same set-up cell first, the Python 3 kernel, and unique cell ids.

The lesson-specific checks live in test_notebook01.py, test_notebook02.py and
test_translation_parity.py; these are the ones every notebook must pass, English or Chinese.
"""
from pathlib import Path

import nbformat
import pytest

from course_utils import links
from tools import cn_sync

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# The set-up cell, as the English notebooks have it; the Chinese twins translate its comments.
SETUP_CELL = f'''# Set-up. Locally (`make course`, or the conda environment) everything is installed already and
# this cell does nothing. On Colab or Kaggle it installs the course package and only what is
# missing: torch is already there and is never reinstalled.
import importlib.util
import os
import subprocess
import sys

COURSE_PACKAGE = "{links.PIP_SPEC}"
ON_HOSTED = "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ
if ON_HOSTED and importlib.util.find_spec("course_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", COURSE_PACKAGE], check=True)'''


def test_all_four_notebooks_are_checked():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 4 and sum(n.endswith(f"{cn_sync.SUFFIX}.ipynb") for n in names) == 2, names


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def stored(request):
    """(file name, notebook) of one stored notebook."""
    return request.param.name, nbformat.read(request.param, as_version=4)


def test_stored_without_outputs(stored):
    name, nb = stored
    nbformat.validate(nb)
    stored = [c.id for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not stored, f"{name}: outputs or execution counts stored in cells {stored}: clear them before committing"
    timed = [c.id for c in nb.cells if "execution" in c.metadata]
    assert not timed, f"{name}: execution timings stored in cells {timed}"


def test_no_widget_state(stored):
    name, nb = stored
    # GitHub fails to render a notebook with metadata.widgets but no state: never store it.
    assert "widgets" not in nb.metadata, f"{name}: widget state stored in the notebook's metadata"
    assert not [c.id for c in nb.cells if "widgets" in c.metadata], f"{name}: widget state stored in cells"


def test_first_code_cell_is_the_shared_setup_cell(stored):
    name, nb = stored
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert f'"{links.PIP_SPEC}"' in first.source, f"{name}: the set-up cell must install {links.PIP_SPEC}"
    if name.endswith(f"{cn_sync.SUFFIX}.ipynb"):  # comments translated, code identical
        assert cn_sync.code_key(first.source) == cn_sync.code_key(SETUP_CELL), name
    else:
        assert first.source == SETUP_CELL, name


def test_python3_kernel(stored):
    name, nb = stored
    kernelspec = nb.metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3" and kernelspec.get("language") == "python", (name, kernelspec)
    assert nb.metadata.get("language_info", {}).get("name") == "python", name


def test_cell_ids_are_present_and_unique(stored):
    name, nb = stored
    ids = [c.get("id") for c in nb.cells]
    assert all(ids), f"{name}: cells without an id"
    assert len(ids) == len(set(ids)), f"{name}: repeated ids {sorted({i for i in ids if ids.count(i) > 1})}"
