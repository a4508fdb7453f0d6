# The two commands of the README:  `make course`  and  `make test`.
# TORCH picks the PyTorch build: the default lets pip choose (CUDA where it can);
# CI and CPU-only machines use e.g. `make test TORCH=torch==2.13.0`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch
BIN     = $(VENV)/bin

.PHONY: help setup course test nbmake lint benchmark benchmark-long book cn-status lesson-code clean

help:                       ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | expand -t 16

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# torch first, with pip (TORCH picks the build); the rest with uv, which resolves and installs in seconds
# what pip takes minutes for, and keeps the torch already there. pip does it all if uv cannot be had.
$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)"
	($(BIN)/pip install -q uv && $(BIN)/uv pip install --python $(BIN)/python -e ".[dev,book]") \
		|| $(BIN)/pip install -e ".[dev,book]"
	touch $@

setup: $(VENV)/.installed   ## create .venv with torch, course_utils and the dev tools

course: setup               ## open the course in JupyterLab (works offline on the embedded data)
	$(BIN)/jupyter lab notebooks/

# One pytest worker per core, each test file on one worker (a file's tests share their fixtures: the
# book's one execution of each notebook, the local Hub), one torch thread per worker (tiny models).
PYTEST_ARGS ?= -n auto --dist loadfile

test: setup                 ## the whole test suite, notebooks included, in quick mode
	COURSE_QUICK=$${COURSE_QUICK-1} OMP_NUM_THREADS=$${OMP_NUM_THREADS-1} $(BIN)/python -m pytest $(PYTEST_ARGS)

nbmake: setup               ## all four notebooks (the Chinese twins too) under nbmake, in quick mode
	COURSE_QUICK=$${COURSE_QUICK-1} $(BIN)/python -m pytest --nbmake --nbmake-timeout=900 notebooks/

lint: setup                 ## ruff: pyflakes, pycodestyle and import order, notebooks included
	$(BIN)/ruff check .

# Benchmarks print figures (not tests); each runs as a module: python -m benchmarks.NAME [--help].
FAST_BENCHMARKS = data_pipeline train_speed widgets
LONG_BENCHMARKS = notebook01_cpu mnist_sample_quality ddpm_retrain book_build

benchmark: setup            ## the fast benchmarks: data pipeline, training speed, widgets (minutes)
	for b in $(FAST_BENCHMARKS); do $(BIN)/python -m benchmarks.$$b || exit 1; done

benchmark-long: setup       ## notebook 01 at full size on the CPU, notebook 02 and its sample quality, the book build (~45 min)
	for b in $(LONG_BENCHMARKS); do HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks.$$b || exit 1; done

book: setup                 ## the reading edition: execute the notebooks (cached), render the bilingual site in build/book/html
	$(BIN)/python -m tools.book

cn-status: setup            ## which Chinese notebook cells need attention after an English change
	$(BIN)/python -m tools.cn_sync --check

lesson-code: setup          ## after editing a lesson-code cell (corrupt, BasicUNet): export it into course_utils
	$(BIN)/python -m tools.export_lesson_code

clean:                      ## remove .venv and pytest's cache
	rm -rf $(VENV) .pytest_cache
