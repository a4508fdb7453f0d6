"""tools/notebook_code.run_cells: the one runner of notebook code for tests, benchmarks and tools."""
import nbformat
import pytest

from tools.notebook_code import run_cells


@pytest.fixture
def notebook(tmp_path):
    cells = [nbformat.v4.new_markdown_cell("# title", id="title"),
             nbformat.v4.new_code_cell("import os\nsize = 3\nfolder = os.getcwd()", id="setup"),
             nbformat.v4.new_code_cell("values = [\n    size,\n    size * 2,\n]\nprint('values', values)", id="values"),
             nbformat.v4.new_code_cell("total = sum(values)", id="total")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_cells_by_id_until_and_skip(notebook, tmp_path):
    assert run_cells(notebook)["total"] == 9
    assert "total" not in run_cells(notebook, until="values")
    ns = run_cells(notebook, ["setup"])
    assert ns["folder"] == str(tmp_path)  # the notebook's folder, as in Jupyter
    assert run_cells(notebook, ["values", "total"], namespace=dict(size=1))["total"] == 3
    assert "values" not in run_cells(notebook, skip=["values", "total"])


def test_replace_swaps_whole_assignments_and_says_when_unused(notebook, capsys):
    ns = run_cells(notebook, replace={"size": 10, "values": [1, 2]}, quiet=True)
    assert ns["size"] == 10 and ns["total"] == 3
    assert capsys.readouterr().out == ""
    with pytest.raises(KeyError, match="nothing to replace"):
        run_cells(notebook, ["setup"], replace={"missing": 1})


def test_errors_name_the_cell(notebook):
    with pytest.raises(KeyError, match="no code cells"):
        run_cells(notebook, ["nope"])
    with pytest.raises(NameError) as err:
        run_cells(notebook, ["total"])
    assert "cell total" in "".join(__import__("traceback").format_tb(err.tb))


def test_timings(notebook):
    timings = {}
    run_cells(notebook, timings=timings, quiet=True)
    assert list(timings) == ["setup", "values", "total"] and all(s >= 0 for s in timings.values())
