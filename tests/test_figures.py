"""The measured figures (docs/figures.json) and the README that states them.

A figure is measured by a benchmark and stored once, in docs/figures.json (``tools.figures``),
with the run that measured it; the benchmark records it (``--record RUN``) and compares new runs
with it. The notebooks' tables (``STATED`` in tests/test_notebook0X.py) and ``README`` below fill
their phrases from it. To add a figure: record it (or add it to its section by hand, naming the
run), then add the phrase that states it here or in the notebook's table, the value as
``{section[key]}``.
"""
from pathlib import Path

from notebook_helpers import missing_phrases

from tools import figures

ROOT = Path(__file__).resolve().parents[1]

#: Every measured figure README.md states, as a phrase with ``{section[key]}`` fields.
README = [
    "| ~{notebook01_cpu[minutes]} min |",
    "| {mnist_sample_quality[minutes]} min, {mnist_sample_quality[training_minutes]} of them in the two training loops "
    "| - | <= 10 min: met |",  # the target: test_notebook02_s_recorded_run_meets_its_time_target
    "real digits {mnist_sample_quality[real_kid]}, uniform noise {mnist_sample_quality[noise_kid]}, two real digits "
    "overlaid {mnist_sample_quality[overlaid_kid]}; BasicUNet (40 steps) {mnist_sample_quality[basic_kid]}; the DDPM "
    "model (1,000 steps of 32) with our DDPM step {mnist_sample_quality[ddpm_kid]}, with DDIM's defaults "
    "{mnist_sample_quality[ddim_kid]}, DDIM with `use_clipped_model_output=True` {mnist_sample_quality[ddim_clipped_kid]}, "
    "DDIM with `eta=1` {mnist_sample_quality[ddim_eta1_kid]}",
    "an earlier run that trained the DDPM model on batches of {mnist_sample_quality_longer[ddpm_batch_size]}: our DDPM "
    "step {mnist_sample_quality_longer[ddpm_kid]}",
    "our DDPM step, KID: {mnist_ddpm_retrain[seed0_kid]}, {mnist_ddpm_retrain[seed1_kid]} and "
    "{mnist_ddpm_retrain[seed2_kid]} for seeds 0, 1 and 2 (the notebook's own training: {mnist_sample_quality[ddpm_kid]})",
    # notebook 02's picture: the previous benchmark's run (its confidence measure)
    "({readme_digits[basic_pct]}% of them classified with confidence)",
]


def test_every_section_names_the_run_that_measured_it():
    for name, section in figures.load().items():
        if isinstance(section, dict):
            assert section.get("run"), f"docs/figures.json: section {name!r} does not name its run"


def test_the_readme_states_the_measured_figures():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not missing_phrases(text, README, figures.load()), "reword the row of README, or correct the README"


def test_record_keeps_the_other_figures(tmp_path, monkeypatch):
    path = tmp_path / "figures.json"
    path.write_text('{"a": {"run": "old", "x": 1, "y": 2}}')
    monkeypatch.setattr(figures, "PATH", path)
    figures.record("a", "new run", x=3)
    figures.record("b", "other run", z=4)
    assert figures.load() == {"a": {"run": "new run", "x": 3, "y": 2}, "b": {"run": "other run", "z": 4}}


def test_notebook02_s_recorded_run_meets_its_time_target():
    """The README says "<= 10 min: met": the recorded whole run is within the benchmark's budget."""
    from benchmarks.mnist_sample_quality import BUDGET_MINUTES

    assert BUDGET_MINUTES == 10
    assert figures.load("mnist_sample_quality")["minutes"] <= BUDGET_MINUTES
