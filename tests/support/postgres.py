"""A throwaway PostgreSQL server for the tests (``benchmarks.pg_server``), and lakes on it.

If the server cannot start, the ``postgres`` fixture fails with the reason: no test is
skipped for it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from benchmarks.pg_server import PostgresServer, find_bin_dir, start_server, stop_server
from eventlog.lake import LakeConfig, write_config

__all__ = ["PostgresServer", "find_bin_dir", "make_postgres_lake", "start_server", "stop_server"]


def make_postgres_lake(server: PostgresServer, lake: Path) -> str:
    """Point a lake directory at a fresh schema of the server; returns the schema name."""
    schema = f"lake_{uuid.uuid4().hex[:12]}"
    lake.mkdir(parents=True, exist_ok=True)
    write_config(lake, LakeConfig(server.url(), schema))
    return schema
