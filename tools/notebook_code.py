"""Run a notebook's code cells in a namespace: the one loop every test, benchmark and tool uses.

    run_cells(notebook, cells=None, *, until=None, skip=(), namespace=None, replace=None,
              cwd=<the notebook's folder>, quiet=False, timings=None) -> namespace

- ``notebook``: a path, or a file name under ``notebooks/`` (``"02_diffusion_models_from_scratch.ipynb"``).
- ``cells``: the ids of the code cells to run, in that order. ``None``: every code cell in the
  notebook's order, stopping after ``until`` (which runs) and leaving out the ids in ``skip``.
- ``namespace``: the globals the cells run in; pass names a cell needs (a tiny model, fake data),
  or the namespace a previous call returned to carry on from there. A new one when ``None``.
- ``replace``: ``{variable: value}``: wherever a cell that runs assigns ``variable = ...`` at its
  top level, it assigns ``value`` instead (any object; the statement is swapped, the rest of the
  cell runs as written). A replacement no cell used raises, so a renamed variable fails loudly.
- ``cwd``: the working directory while the cells run (Jupyter and nbmake use the notebook's folder).
- ``quiet``: swallow the cells' printouts (benchmarks); tests leave it off to read them.
- ``timings``: a dict to fill with the seconds each cell took.

Cells run as ``exec`` of their source, compiled with the cell id as file name so a traceback says
which cell failed; matplotlib figures are closed after each cell. Nothing is displayed: a
widget cell builds its widget, which is what a headless run can check.
"""
from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import time
from functools import lru_cache
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REPLACED = "__replaced__"  # the namespace entry a replaced assignment reads from


def notebook_path(notebook: str | Path) -> Path:
    """``notebook`` as a path: a bare file name is looked up under ``notebooks/``."""
    path = Path(notebook)
    return path if path.parent != Path() or path.is_file() else NOTEBOOKS / path


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def read_notebook(notebook: str | Path) -> nbformat.NotebookNode:
    """The stored notebook (read once per version of the file)."""
    path = notebook_path(notebook)
    return _read(path, path.stat().st_mtime_ns)


def code_cells(notebook: str | Path) -> dict:
    """The notebook's code cells by id, in the notebook's order."""
    return {cell.id: cell for cell in read_notebook(notebook).cells if cell.cell_type == "code"}


def _replace_assignments(source: str, names, used: set) -> str:
    """``source`` with each top-level ``name = ...`` (any number of lines) of ``names`` reading the replacement."""
    lines = source.splitlines()
    for node in reversed(ast.parse(source).body):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in names):
            name = node.targets[0].id
            lines[node.lineno - 1:node.end_lineno] = [f"{name} = {REPLACED}[{name!r}]"]
            used.add(name)
    return "\n".join(lines)


def _selected(cells: dict, ids, until, skip, name) -> list:
    if ids is not None:
        missing = [i for i in ids if i not in cells]
        if missing:
            raise KeyError(f"{name} has no code cells {missing}")
        return [cells[i] for i in ids]
    if until is not None and until not in cells:
        raise KeyError(f"{name} has no code cell {until!r} to stop at")
    chosen = []
    for cell_id, cell in cells.items():
        if cell_id not in skip:
            chosen.append(cell)
        if cell_id == until:
            break
    return chosen


def run_cells(notebook: str | Path, cells=None, *, until: str | None = None, skip=(), namespace: dict | None = None,
              replace: dict | None = None, cwd: str | Path | None = None, quiet: bool = False,
              timings: dict | None = None) -> dict:
    """Execute code cells of ``notebook`` in ``namespace`` and return it (see the module docstring)."""
    path = notebook_path(notebook)
    chosen = _selected(code_cells(path), cells, until, set(skip), path.name)
    namespace = {"__name__": "__notebook__"} if namespace is None else namespace
    replace = dict(replace or {})
    namespace[REPLACED] = replace
    used: set = set()
    previous = os.getcwd()
    os.chdir(path.parent if cwd is None else cwd)
    try:
        for cell in chosen:
            source = _replace_assignments(cell.source, replace, used) if replace else cell.source
            code = compile(source, f"{path.name}, cell {cell.id}", "exec")
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
                exec(code, namespace)
            if timings is not None:
                timings[cell.id] = time.perf_counter() - started
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close("all")
    finally:
        os.chdir(previous)
    unused = sorted(set(replace) - used)
    if unused:
        raise KeyError(f"no cell run in {path.name} assigns {unused} at its top level: nothing to replace")
    return namespace
