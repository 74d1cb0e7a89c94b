"""Committed notebooks carry no outputs, execution counts or run metadata (docs/notebooks.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _strip_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "strip_notebooks", ROOT / "scripts" / "strip_notebooks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_four_notebooks_are_committed() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert names == [
        "01_sql_tour.ipynb",
        "02_time_travel.ipynb",
        "03_semantic_search.ipynb",
        "04_outcome_model.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    found = _strip_script().problems(notebook)
    assert found == [], f"{path.name} is not stripped; run `python scripts/strip_notebooks.py`"


def test_check_flags_outputs_and_strip_removes_them(tmp_path: Path) -> None:
    script = _strip_script()
    executed = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Q"},
            {
                "cell_type": "code",
                "metadata": {"execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}},
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
                "source": "print(1)",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "x.ipynb"
    script.write(path, executed)

    assert script.main(["--check", str(path)]) == 1
    assert script.main([str(path)]) == 0
    stripped = json.loads(path.read_text(encoding="utf-8"))
    assert script.problems(stripped) == []
    assert stripped["cells"][1]["source"] == "print(1)"
    assert script.main(["--check", str(path)]) == 0
