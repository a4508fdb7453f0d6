"""The lesson code has one source of truth, the notebook cell; the package copy is exported from it.

tools/export_lesson_code.py writes the cells "corrupt" and "basic-unet" of notebook 02 into
course_utils; these tests fail while a package copy is stale, and check the tool itself.
"""
from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest

import course_utils as cu
from course_utils import basic_unet, corruption
from tools import export_lesson_code as tool

ROOT = Path(__file__).resolve().parents[1]


def test_package_copies_match_their_cells():
    stale = [e.module for e in tool.stale()]
    assert not stale, f"{stale} differ from their notebook cells: run python -m tools.export_lesson_code"


def test_package_objects_are_the_cells_code():
    """What the package imports is the cell's code, character for character."""
    exports = {e.cell_id: e for e in tool.EXPORTS}
    assert inspect.getsource(corruption.corrupt).strip() in tool.cell_source(exports["corrupt"])
    assert inspect.getsource(basic_unet.BasicUNet).strip() in tool.cell_source(exports["basic-unet"])


def test_cu_does_not_offer_what_the_learner_writes():
    """The learner defines corrupt and BasicUNet in notebook 02: `cu.` must not offer them."""
    assert not {"corrupt", "BasicUNet"} & set(dir(cu))


def test_each_cell_says_where_its_copy_lives():
    for export in tool.EXPORTS:
        source = tool.cell_source(export)
        assert export.module in source and "tools/export_lesson_code.py" in source, export.cell_id


@pytest.fixture
def scratch_repo(tmp_path):
    """A copy of the notebooks and the exported modules, for the tool to work on."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    for export in tool.EXPORTS:
        (tmp_path / export.module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / export.module, tmp_path / export.module)
    return tmp_path


def test_check_fails_on_an_edited_cell_and_export_repairs_it(scratch_repo, capsys):
    import nbformat

    path = scratch_repo / "notebooks" / tool.SCRATCH
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if c.get("id") == "corrupt"]
    cell.source = cell.source.replace("noise = torch.rand_like(x)", "noise = torch.randn_like(x)  # Gaussian")
    nbformat.write(nb, path)

    assert tool.main(["--check"], root=scratch_repo) == 1
    assert "stale: course_utils/corruption.py" in capsys.readouterr().out
    assert tool.main([], root=scratch_repo) == 0
    assert "torch.randn_like(x)  # Gaussian" in (scratch_repo / "course_utils" / "corruption.py").read_text()
    assert tool.main(["--check"], root=scratch_repo) == 0


def test_missing_cell_id_says_what_to_do(scratch_repo):
    import nbformat

    path = scratch_repo / "notebooks" / tool.SCRATCH
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.get("id") == "basic-unet":
            cell.id = "renamed"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no cell with id 'basic-unet'"):
        tool.main(["--check"], root=scratch_repo)
