"""The log's backends for the contract tests: how to make a lake of each kind.

``BACKENDS`` maps a backend's name to the function that prepares an empty lake
directory for it (given the pytest request, to reach the PostgreSQL and S3 server
fixtures only when a test of that backend runs). Every test parametrized over it runs on
each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eventlog.lake import read_config

Prepare = Callable[[pytest.FixtureRequest, Path], None]


def _sqlite(request: pytest.FixtureRequest, lake: Path) -> None:
    """Nothing to do: a lake directory without a config commits to ``tail.sqlite``."""


def _postgresql(request: pytest.FixtureRequest, lake: Path) -> None:
    from tests.support.postgres import make_postgres_lake

    make_postgres_lake(request.getfixturevalue("postgres"), lake)


def _postgresql_s3(request: pytest.FixtureRequest, lake: Path) -> None:
    """The PostgreSQL tail with its parts in a bucket of the test S3 server."""
    from tests.support.s3 import make_s3_lake

    _postgresql(request, lake)
    make_s3_lake(request.getfixturevalue("s3"), lake, request.getfixturevalue("monkeypatch"))


BACKENDS: dict[str, Prepare] = {
    "sqlite-tail+parquet": _sqlite,
    "postgresql-tail+parquet": _postgresql,
    "postgresql-tail+s3": _postgresql_s3,
}


def drop_tail(lake: Path) -> None:
    """Lose the lake's tail (the SQLite file, or the PostgreSQL schema): a disaster drill."""
    config = read_config(lake)
    if config.tail is None:
        for f in lake.glob("tail.sqlite*"):
            f.unlink()
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(config.tail, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(config.schema)))


# The crash drills patch the local part-file functions (temp file, link, fsync); the
# object-storage crash drills are in tests/eventlog/test_objectstore.py.
FILE_BACKENDS = {name: prepare for name, prepare in BACKENDS.items() if not name.endswith("+s3")}
