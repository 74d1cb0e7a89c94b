# Quick start: `make demo` runs the main job, `make test` runs every test.
# Both create .venv and install what they need when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-fast lint typecheck bench ui notebooks clean browser-deps postgres-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ledgerlake demo

browser-deps:
	@bash scripts/ensure-chromium.sh

postgres-deps:
	@bash scripts/ensure-postgres.sh

test: $(STAMP) browser-deps postgres-deps
	$(BIN)/python -m pytest

test-fast: $(STAMP) postgres-deps
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) postgres-deps
	$(BIN)/python -m benchmarks

ui: $(STAMP)
	$(BIN)/ledgerlake ui

notebooks: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf lake .pytest_cache .mypy_cache .ruff_cache
