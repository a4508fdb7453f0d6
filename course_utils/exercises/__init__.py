"""Exercises that answer back, in the manner of Kaggle Learn's ``learntools``.

Each exercise that asks for code has a check the learner calls in the next cell, a hint and a
solution, in English and Chinese::

    cu.exercises.nb02.ex6.check(model)   # says what is wrong in one specific sentence, or that it works
    cu.exercises.nb02.ex6.hint()
    cu.exercises.nb02.ex6.solution()

The exercises of a notebook live in ``nbNN.py`` (``nb01``, ``nb02``), one ``Exercise`` each. A check
function receives what the learner passes, raises ``Wrong(Text(en=..., zh=...))`` naming the first
problem it finds, and returns a ``Text`` (or None) when the answer works.

Which language is shown: ``settings.exercise_language()`` (``COURSE_LANG=en|zh``, else the notebook's
file name when the front-end tells the kernel, else both).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable

from ..settings import exercise_language


@dataclass(frozen=True)
class Text:
    """One message in both languages; shows the one the notebook is read in (or both)."""

    en: str
    zh: str

    def render(self, language: str | None = None) -> str:
        language = language or exercise_language()
        if language == "en":
            return self.en
        if language == "zh":
            return self.zh
        return f"{self.en}\n\n{self.zh}"

    def __str__(self) -> str:
        return self.render()

    def _repr_markdown_(self) -> str:
        return self.render()


class Wrong(Exception):
    """Raised by a check function: the answer does not work yet, and ``text`` says why."""

    def __init__(self, text: Text):
        super().__init__(text.en)
        self.text = text


@dataclass(frozen=True)
class Result:
    """What ``Exercise.check`` returns: truthy when the answer works; shows as a coloured line."""

    ok: bool
    text: Text

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark = "Correct" if self.ok else "Not yet"
        return f"{mark}: {self.text.render()}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#b35900"
        mark = "✓ Correct / 正确" if self.ok else "✗ Not yet / 还没有"
        body = html.escape(self.text.render()).replace("\n\n", "<br>")
        return f'<div style="color:{colour}"><b>{mark}</b>: {body}</div>'


_DONE = Text(en="that works.", zh="可以了。")


class Exercise:
    """One exercise: ``check(...)`` runs the check on the learner's answer; ``hint()`` and
    ``solution()`` return text that shows as Markdown in the notebook."""

    def __init__(self, name: str, check: Callable[..., Text | None], hint: Text, solution: Text):
        self.name, self._check, self._hint, self._solution = name, check, hint, solution

    def check(self, *args, **kwargs) -> Result:
        try:
            note = self._check(*args, **kwargs)
        except Wrong as wrong:
            return Result(False, wrong.text)
        return Result(True, note or _DONE)

    def hint(self) -> Text:
        return self._hint

    def solution(self) -> Text:
        return self._solution

    def __repr__(self) -> str:
        return f"<exercise {self.name}: .check(...), .hint(), .solution()>"


def __getattr__(name: str):
    """``cu.exercises.nb01`` and ``cu.exercises.nb02`` load on first use."""
    if name.startswith("nb") and name[2:].isdigit():
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Exercise", "Result", "Text", "Wrong"]
