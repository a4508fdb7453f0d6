"""What the notebook tests share. The conventions of tests/test_notebook01.py and test_notebook02.py:

- **Tests specify behaviour.** A test runs the notebook's own code (``tools.notebook_code.run_cells``:
  cells by id or up to a stop cell, in a namespace that may hold stand-ins such as a tiny model,
  with ``replace={variable: value}`` for a size) and compares numbers, pixels or behaviour. Nothing
  asserts wording, formatting or how the code is spelt.
- **Numbers the prose states**: one table per notebook, ``STATED`` in its test file. A row is the
  phrase as the prose says it, with each number a ``{field}``; the ``facts`` fixture computes every
  field from code (running cells, the package, or ``assigned`` below for a size a cell picks).
  A rewording changes one row; a new number is one row (and one entry in ``facts`` if it is new).
  The phrase is searched in all of the notebook's markdown, whitespace normalised.
- **Measured figures** (run times, sample quality) live in ``docs/figures.json``, written by the
  benchmark that measures them (``--record``) and read with ``tools.figures.load``; the tables fill
  their fields from it, so the prose, the README and the benchmark cannot disagree.
"""
from __future__ import annotations

import ast

import torch

from tools.notebook_code import read_notebook

__all__ = ["read_notebook", "cells_by_id", "prose", "says", "missing_phrases", "assigned", "sizes_on"]


def cells_by_id(nb) -> dict:
    """Every cell by its id: tests name cells by id, never by position."""
    return {c.id: c for c in nb.cells}


def normalised(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space."""
    return " ".join(text.split())


def prose(nb) -> str:
    """All markdown of ``nb``, whitespace normalised: search it for normalised phrases."""
    return normalised("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))


def says(text: str, phrase: str) -> bool:
    """True when ``phrase`` occurs in ``text`` whatever the line breaks and spacing of either."""
    return normalised(phrase) in normalised(text)


def missing_phrases(text: str, table, facts: dict) -> list[str]:
    """The rows of ``table`` (phrase templates with ``{field}``s) that ``text`` does not state with ``facts``."""
    return [row.format(**facts) for row in table if not says(text, row.format(**facts))]


def assigned(source: str, name: str, **names):
    """The value the top-level statement ``name = ...`` of a cell's ``source`` computes, evaluated
    with ``names`` (``cu`` and the like). For the sizes a cell picks with ``cu.pick``; see ``sizes_on``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return eval(compile(ast.Expression(node.value), f"{name} = ...", "eval"), dict(names))
    raise KeyError(f"no top-level assignment to {name} in the cell")


def sizes_on(monkeypatch, *, gpu: bool, quick: bool) -> None:
    """Make ``cu.pick`` choose as it would on a CUDA GPU or a CPU, in quick mode or at full size."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    if quick:
        monkeypatch.setenv("COURSE_QUICK", "1")
    else:
        monkeypatch.delenv("COURSE_QUICK", raising=False)
