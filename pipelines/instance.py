"""The Dagster instance of a lake: DAGSTER_HOME is ``<lake>/.dagster`` with our dagster.yaml.

The UI (``ledgerlake ui``) and the demo (``ledgerlake demo``) share this instance, so runs
materialized by the demo show up in the UI. The dagster.yaml limits every concurrency pool
to one step at a time: the assets that write the DuckDB file share the pool ``warehouse``,
so two runs never fight over its lock (DuckDB allows one writing process per file).

When the lake's tail is PostgreSQL (``lake.toml``), the instance keeps its runs, event
logs and schedules there too (``dagster-postgres``), in the schema ``<lake schema>_dagster``
of the same database: any machine that has the lake's config sees the same runs. The URL
in dagster.yaml is the lake's (no password: libpq takes it from ``PGPASSWORD`` or a
passfile when Dagster connects). See docs/dagster.md for a deployment's dagster.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

WAREHOUSE_POOL = "warehouse"
VECTOR_POOL = "vector_store"

DAGSTER_YAML = """\
# Written by ledgerlake (pipelines/instance.py): the Dagster instance of this lake.
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  pools:
    # One step at a time per pool: 'warehouse' guards the DuckDB file lock.
    default_limit: 1
    granularity: op
  runs:
    max_concurrent_runs: 4
"""


POSTGRES_STORAGE = """\
# The lake's tail is PostgreSQL: runs, event logs and schedules live beside it.
storage:
  postgres:
    postgres_url: {url}
"""


def dagster_schema(lake_schema: str) -> str:
    """The PostgreSQL schema of a lake's Dagster records."""
    return f"{lake_schema}_dagster"


def postgres_storage_url(tail: str, schema: str) -> str:
    """The lake's tail URL with Dagster's schema as its search path (no password).

    The driver is named: dagster-postgres speaks psycopg2, and SQLAlchemy would pick
    psycopg 3 for a bare ``postgresql://``.
    """
    sep = "&" if "?" in tail else "?"
    rest = tail.split("://", 1)[1]
    return f"postgresql+psycopg2://{rest}{sep}options=-csearch_path%3D{schema}"


def instance_yaml(lake: Path) -> str:
    """The dagster.yaml of a lake: ours, plus PostgreSQL storage when the tail is there."""
    from eventlog.lake import read_config

    config = read_config(lake)
    if config.tail is None:
        return DAGSTER_YAML
    url = postgres_storage_url(config.tail, dagster_schema(config.schema))
    return DAGSTER_YAML + POSTGRES_STORAGE.format(url=json.dumps(url))


def _ensure_schema(tail: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    from eventlog.errors import StorageError
    from eventlog.tails.postgres_sql import redacted

    try:
        with psycopg.connect(tail, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot prepare Dagster's schema {schema} at {redacted(tail)}: {exc}"
        ) from None


def dagster_home(lake: Path) -> Path:
    """The DAGSTER_HOME of a lake, created with our dagster.yaml when missing or stale."""
    from eventlog.lake import read_config

    home = (lake / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = instance_yaml(lake)
    lake_config = read_config(lake)
    if lake_config.tail is not None:
        _ensure_schema(lake_config.tail, dagster_schema(lake_config.schema))
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
    return home


def lake_instance(lake: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance stored in the lake (the one the UI shows)."""
    home = dagster_home(lake)
    return dg.DagsterInstance.from_config(str(home))
