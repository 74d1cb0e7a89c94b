"""Every notebook runs headless, top to bottom, against a small generated lake.

The lake is built once per session (150 orders through the real generator, the real
projections and the real embedding model) and handed to the kernels through
LEDGERLAKE_HOME, the one setting the notebooks read (docs/notebooks.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def _kernel_env(lake: Path, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LEDGERLAKE_HOME": str(lake),
            "PLOOMBER_STATS_ENABLED": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "LANCE_LOG": "error",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            # Temporary files the notebooks write (training exports, a lake copy) land here.
            "TMPDIR": str(tmp),
        }
    )
    return env


def _fingerprint(lake: Path) -> dict[str, str]:
    """Content hash of every file in the lake except SQLite's transient -wal/-shm files."""
    prints: dict[str, str] = {}
    for path in sorted(lake.rglob("*")):
        if path.is_file() and not re.search(r"-(wal|shm)$", path.name):
            prints[str(path.relative_to(lake))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


@pytest.fixture(scope="session")
def notebook_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small lake with every projection: 150 generated orders, warehouse and vectors."""
    from eventlog.orders.generate import generate
    from projections.embeddings import SentenceTransformerEmbedder
    from projections.runner import catch_up
    from projections.vectors import catch_up_vectors

    lake = tmp_path_factory.mktemp("notebooks") / "lake"
    generate(lake, orders=150, days=30, seed=7)
    catch_up(lake)
    catch_up_vectors(lake, embedder=SentenceTransformerEmbedder())
    yield lake


def _execute(path: Path, env: dict[str, str]) -> Any:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute(env=env)
    return notebook


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless_without_errors(
    path: Path, notebook_lake: Path, tmp_path: Path
) -> None:
    before = _fingerprint(notebook_lake)

    executed = _execute(path, _kernel_env(notebook_lake, tmp_path))

    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    images = [
        out
        for cell in code
        for out in cell.outputs
        if out.output_type in {"display_data", "execute_result"} and "image/png" in out.data
    ]
    assert images, f"{path.name} draws no chart"
    assert _fingerprint(notebook_lake) == before, f"{path.name} changed the lake it read"


def test_first_code_cell_explains_how_to_build_a_missing_lake(tmp_path: Path) -> None:
    env = _kernel_env(tmp_path / "no-lake-here", tmp_path)
    firsts = []
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        first = next(cell for cell in notebook.cells if cell.cell_type == "code")
        assert "find_lake(" in first.source, f"{path.name}: first code cell must call find_lake"
        firsts.append(first)
    shell = nbformat.v4.new_notebook(cells=firsts)
    client = NotebookClient(
        shell, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    messages = []
    with client.setup_kernel(env=env):
        for index, cell in enumerate(shell.cells):
            with pytest.raises(CellExecutionError) as caught:
                client.execute_cell(cell, index)
            messages.append(str(caught.value))
    for message in messages:
        assert "LakeNotFoundError" in message
        assert "no-lake-here" in message
        assert "make demo" in message


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_its_question_and_ends_with_what_was_learned(path: Path) -> None:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    first, last = "".join(cells[0]["source"]), "".join(cells[-1]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "**Question:**" in first
    assert cells[-1]["cell_type"] == "markdown" and last.startswith("## What you learned")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_nothing_outside_the_lake_and_the_repo(path: Path) -> None:
    source = "\n".join(
        "".join(cell["source"])
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
        if cell["cell_type"] == "code"
    )
    assert not re.search(r"""["'](/|~|[A-Za-z]:\\)""", source), "absolute path in a notebook"
    assert "find_lake(" in source
