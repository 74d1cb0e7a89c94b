"""find_lake: one setting (LEDGERLAKE_HOME, else <repo root>/lake) and a clear error when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlog.errors import InvalidInputError, exit_code_for
from projections.notebook import LakeNotFoundError, find_lake, repo_root


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "ledgerlake"\n', encoding="utf-8")
    return root


def _built_lake(path: Path, *parts: str) -> Path:
    path.mkdir(parents=True)
    for part in parts:
        if part.endswith("/"):
            (path / part).mkdir()
        else:
            (path / part).write_bytes(b"")
    return path


def test_default_is_lake_at_the_repo_root_even_from_the_notebooks_folder(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    lake = _built_lake(root / "lake", "tail.sqlite", "warehouse.duckdb")

    found = find_lake(environ={}, cwd=root / "notebooks")

    assert found == lake.resolve()
    assert repo_root(root / "notebooks") == root.resolve()


def test_ledgerlake_home_wins_over_the_default(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _built_lake(root / "lake", "tail.sqlite", "warehouse.duckdb")
    other = _built_lake(tmp_path / "elsewhere", "events/", "warehouse.duckdb", "vectors/")

    found = find_lake(
        ("events", "warehouse", "vectors"),
        environ={"LEDGERLAKE_HOME": str(other)},
        cwd=root / "notebooks",
    )

    assert found == other.resolve()


def test_relative_home_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    lake = _built_lake(tmp_path / "mylake", "tail.sqlite", "warehouse.duckdb")

    assert find_lake(environ={"LEDGERLAKE_HOME": "mylake"}, cwd=tmp_path) == lake.resolve()


def test_missing_lake_says_where_it_looked_and_how_to_build_it(tmp_path: Path) -> None:
    root = _repo(tmp_path)

    with pytest.raises(LakeNotFoundError) as caught:
        find_lake(environ={}, cwd=root / "notebooks")

    message = str(caught.value)
    assert str((root / "lake").resolve()) in message
    assert "LEDGERLAKE_HOME" in message
    assert "make demo" in message
    assert "ledgerlake generate" in message
    assert exit_code_for(caught.value) == 2


def test_lake_without_a_required_projection_names_it(tmp_path: Path) -> None:
    lake = _built_lake(tmp_path / "lake", "tail.sqlite", "warehouse.duckdb")

    with pytest.raises(LakeNotFoundError, match=r"LanceDB vectors \(vectors\)"):
        find_lake(("events", "vectors"), environ={"LEDGERLAKE_HOME": str(lake)})
    with pytest.raises(LakeNotFoundError, match=r"DuckDB warehouse"):
        find_lake(
            ("warehouse",),
            environ={"LEDGERLAKE_HOME": str(_built_lake(tmp_path / "bare", "events/"))},
        )


def test_unknown_part_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown lake part"):
        find_lake(("warehouse", "nope"), environ={"LEDGERLAKE_HOME": str(tmp_path)})
