"""Every English notebook runs top to bottom in quick mode, offline, in a fresh kernel.

The run is the reading edition's quick execution (``tools.book.execute`` into build/book-quick/.cache,
with its hidden first cell that only registers how widgets display): tests/test_book.py renders the
site from these executed notebooks, so each notebook runs once for both. A failing cell fails the
test with the cell's code and traceback. The Chinese twins are not run again: their code is the
English code (tests/test_translation_parity.py). ``make nbmake`` runs all four notebooks under
nbmake, plain, as a notebook server would.
"""
import pytest

from tools import book

QUICK_CACHE = book.ROOT / "build" / "book-quick" / ".cache" / "quick"  # where tests/test_book.py's build looks


@pytest.mark.parametrize("path", book.english_notebooks(), ids=lambda p: p.name)
def test_the_notebook_runs_in_quick_mode(path):
    try:
        nb, _ = book.execute(path, QUICK_CACHE, quick=True, device=book.device_kind())
    except book.BookError as error:
        pytest.fail(str(error), pytrace=False)
    cells = [c for c in book.code_cells(nb) if c.source.strip()]
    not_run = [c.get("id") for c in cells if not c.get("execution_count")]
    assert cells and not not_run, f"{path.name}: cells that did not run: {not_run}"
