"""Shared pytest setup: quiet LanceDB, offline Hugging Face, and a fresh lake per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventlog.orders.log import open_order_log


def pytest_configure(config: pytest.Config) -> None:
    # Set for the test process only (never at import time of the packages).
    os.environ.setdefault("LANCE_LOG", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty lake directory."""
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def log(lake: Path) -> Iterator[object]:
    """An EventLog on a fresh lake with the Order registry, closed after the test."""

    event_log = open_order_log(lake)
    yield event_log
    event_log.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A throwaway PostgreSQL server for the whole session; fails (never skips) if it cannot start."""
    from tests.support.postgres import start_server, stop_server

    try:
        server = start_server()
    except Exception as exc:
        pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def s3() -> Iterator[object]:
    """A throwaway S3-compatible server (moto) for the whole session; fails (never skips)."""
    from tests.support.s3 import start_s3, stop_s3

    try:
        server = start_s3()
    except Exception as exc:
        pytest.fail(f"cannot start the test S3 server: {exc}", pytrace=False)
    yield server
    stop_s3(server)
