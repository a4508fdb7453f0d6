"""What the notebook tests share: reading a notebook, finding its cells by id, and its prose with
whitespace normalised (so re-wrapping a paragraph never fails a test).

Imported by the notebook test files as an ordinary module (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def read_notebook(name: str) -> nbformat.NotebookNode:
    """The stored notebook ``notebooks/<name>`` (e.g. ``"01_introduction_to_diffusers.ipynb"``)."""
    return nbformat.read(NOTEBOOKS / name, as_version=4)


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
