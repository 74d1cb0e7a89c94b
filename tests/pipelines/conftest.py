"""Fixtures of the Dagster tests: a small generated lake (copied per test) and definitions on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

SMALL = {"orders": 60, "days": 35, "seed": 3}


@pytest.fixture(scope="session")
def small_lake_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated lake per test session (60 orders over 35 days); never modified."""
    from eventlog.orders.generate import generate

    path = tmp_path_factory.mktemp("template") / "lake"
    generate(path, **SMALL)
    return path


@pytest.fixture
def small_lake(small_lake_template: Path, tmp_path: Path) -> Path:
    """A private copy of the generated lake for one test."""
    path = tmp_path / "small-lake"
    shutil.copytree(small_lake_template, path)
    return path


@pytest.fixture
def defs(small_lake: Path) -> dg.Definitions:
    """The project's definitions bound to the small lake, with the fast hashing embedder."""
    from pipelines.definitions import build_definitions

    return build_definitions(lake=str(small_lake), embedder_kind="hashing")


@pytest.fixture
def instance() -> dg.DagsterInstance:
    """A fresh ephemeral Dagster instance."""
    return dg.DagsterInstance.ephemeral()
