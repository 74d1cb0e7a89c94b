"""A throwaway S3-compatible server for the tests (``benchmarks.s3_server``), and lakes on it.

If the server cannot start, the ``s3`` fixture fails with the reason: no test is skipped
for it. Credentials reach the log the way they do in production: through the AWS
environment variables (set with ``monkeypatch``), never through ``lake.toml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.s3_server import S3Server, StoppableS3, start_s3, stop_s3
from eventlog.lake import LakeConfig, read_config, write_config

__all__ = ["S3Server", "StoppableS3", "make_s3_lake", "start_s3", "stop_s3", "use_s3_env"]


def use_s3_env(monkeypatch: pytest.MonkeyPatch, server: S3Server) -> None:
    """Give this test's process the server's credentials (and no other AWS settings)."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    for key, value in server.env().items():
        if key != "AWS_ENDPOINT_URL":  # the lake names its endpoint
            monkeypatch.setenv(key, value)


def make_s3_lake(server: S3Server, lake: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point a lake directory's parts at a fresh bucket of the server (its tail stays as
    configured: SQLite, or the PostgreSQL of ``lake.toml``); returns the parts URL."""
    bucket = server.make_bucket()
    url = f"s3://{bucket}/lake"
    lake.mkdir(parents=True, exist_ok=True)
    current = read_config(lake)
    write_config(lake, LakeConfig(current.tail, current.schema, url, server.endpoint, "us-east-1"))
    use_s3_env(monkeypatch, server)
    return url
