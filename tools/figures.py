"""The measured figures (``docs/figures.json``): read by tests and benchmarks, written by benchmarks.

A figure is measured once, by a benchmark, and stored here with the run that measured it; the
README and the notebooks state it, and ``tests/test_figures.py`` checks that they state the stored
value. To add one: run its benchmark with ``--record`` (or add the key by hand, with the run named
in the section's ``"run"``), then add a (phrase, key) row to the table of the test file.
"""
from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "docs" / "figures.json"


def load(section: str | None = None) -> dict:
    """All figures, or one benchmark's section of them."""
    figures = json.loads(PATH.read_text(encoding="utf-8"))
    return figures if section is None else figures[section]


def record(section: str, run: str, **values) -> None:
    """Store ``values`` (and the ``run`` that measured them) in ``section``, keeping its other figures."""
    figures = load()
    figures.setdefault(section, {}).update(run=run, **values)
    PATH.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
