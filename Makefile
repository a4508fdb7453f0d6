# The two commands of the README:  `make course`  and  `make test`.
# TORCH picks the PyTorch build: the default lets pip choose (CUDA where it can);
# CI and CPU-only machines use e.g. `make test TORCH=torch==2.13.0`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch
BIN     = $(VENV)/bin

.PHONY: help setup course test lint benchmark cn-status lesson-code clean

help:                       ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | expand -t 14

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[dev]"
	touch $@

setup: $(VENV)/.installed   ## create .venv with torch, course_utils and the dev tools

course: setup               ## open the course in JupyterLab (works offline on the embedded data)
	$(BIN)/jupyter lab notebooks/

test: setup                 ## the whole test suite, notebooks included, in quick mode
	COURSE_QUICK=$${COURSE_QUICK-1} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup                 ## ruff: pyflakes, pycodestyle and import order, notebooks included
	$(BIN)/ruff check .

benchmark: setup            ## speed figures (not tests)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

cn-status: setup            ## which Chinese notebook cells need attention after an English change
	$(BIN)/python tools/cn_sync.py --check

lesson-code: setup          ## after editing a lesson-code cell (corrupt, BasicUNet): export it into course_utils
	$(BIN)/python tools/export_lesson_code.py

clean:
	rm -rf $(VENV) .pytest_cache
