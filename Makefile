# Quick start: `make demo` runs the main job, `make test` runs every test.
# Both create .venv and install what they need when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# The exact versions the tests passed with (pyproject.toml keeps the lower bounds).
LOCK := constraints.txt

.PHONY: demo test test-fast test-scale-out lint typecheck bench ui notebooks clean browser-deps lock postgres-deps

$(STAMP): pyproject.toml $(LOCK)
	@echo "Installing LedgerLake and its dependencies into $(VENV) from $(LOCK):"
	@echo "this takes a few minutes and about 3 GB of disk (torch, Dagster, LanceDB, JupyterLab)."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) -e '.[dev]'
	@# bytecode, as a wheel install writes it (PYTHONDONTWRITEBYTECODE would leave none)
	$(BIN)/python -m compileall -q eventlog projections pipelines > /dev/null
	touch $(STAMP)

# Where pip finds local wheels (the CPU build of torch), from the environment or pip's config.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(BIN)/pip config get global.find-links 2>/dev/null))

# Refresh the lock after changing dependencies (or merging a branch that did): install
# what pyproject.toml asks for without the old lock, then let uv resolve the whole set,
# keeping every version already installed that still fits. torch stays the CPU build.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip freeze --exclude-editable > $(VENV)/installed.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --python $(BIN)/python \
		$(if $(FIND_LINKS),--find-links $(FIND_LINKS)) \
		--constraint $(VENV)/installed.txt --no-annotate --custom-compile-command 'make lock' \
		--quiet -o $(LOCK)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ledgerlake demo

browser-deps:
	@bash scripts/ensure-chromium.sh

postgres-deps:
	@bash scripts/ensure-postgres.sh

test: $(STAMP) browser-deps postgres-deps
	$(BIN)/python -m pytest

# The pipeline off one machine: starts PostgreSQL and an S3 server (moto) on loopback and
# runs the end-to-end test and the object-storage drills against them (also in `make test`).
test-scale-out: $(STAMP) postgres-deps
	$(BIN)/python -m pytest tests/pipelines/test_objectstore_e2e.py tests/eventlog/test_objectstore.py

test-fast: $(STAMP) postgres-deps
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) postgres-deps
	$(BIN)/python -m benchmarks

.PHONY: serve
serve: $(STAMP)
	$(BIN)/ledgerlake serve

ui: $(STAMP)
	$(BIN)/ledgerlake ui

notebooks: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf lake .pytest_cache .mypy_cache .ruff_cache
