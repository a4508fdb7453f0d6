"""The exercise mechanism: a check answers in one specific sentence, in the notebook's language."""
import pytest

from course_utils.exercises import Exercise, Text, Wrong
from course_utils.settings import exercise_language


def _positive(x):
    if x <= 0:
        raise Wrong(Text(en=f"x is {x}; it must be above 0.", zh=f"x 是 {x}，它必须大于 0。"))


EXAMPLE = Exercise("example", _positive, hint=Text(en="Think big.", zh="往大里想。"), solution=Text(en="`x = 1`", zh="`x = 1`"))


def test_check_rejects_with_the_reason_and_accepts(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")
    wrong = EXAMPLE.check(-2)
    assert not wrong and "x is -2" in str(wrong) and "Not yet" in wrong._repr_html_()
    assert EXAMPLE.check(3) and "Correct" in str(EXAMPLE.check(3))


@pytest.mark.parametrize("env, session, expected", [
    ({"COURSE_LANG": "zh"}, "", "zh"),
    ({}, "notebooks/02_diffusion_models_from_scratch_CN.ipynb", "zh"),
    ({}, "notebooks/02_diffusion_models_from_scratch.ipynb", "en"),
    ({}, "", "both"),
])
def test_language_follows_the_setting_or_the_notebook(monkeypatch, env, session, expected):
    monkeypatch.delenv("COURSE_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if session:
        monkeypatch.setenv("JPY_SESSION_NAME", session)
    assert exercise_language() == expected
    shown = EXAMPLE.hint().render()
    assert ("Think big." in shown) == (expected != "zh") and ("往大里想" in shown) == (expected != "en")


def test_notebook_modules_load_on_first_use():
    import course_utils as cu

    with pytest.raises(AttributeError):
        cu.exercises.not_a_notebook
