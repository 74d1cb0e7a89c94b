"""The Dagster instance of a lake: DAGSTER_HOME is ``<lake>/.dagster`` with our dagster.yaml.

The UI (``ledgerlake ui``) and the demo (``ledgerlake demo``) share this instance, so runs
materialized by the demo show up in the UI. The dagster.yaml limits every concurrency pool
to one step at a time: the assets that write the DuckDB file share the pool ``warehouse``,
so two runs never fight over its lock (DuckDB allows one writing process per file).
"""

from __future__ import annotations

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


def dagster_home(lake: Path) -> Path:
    """The DAGSTER_HOME of a lake, created with our dagster.yaml when missing or stale."""
    home = (lake / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    return home


def lake_instance(lake: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance stored in the lake (the one the UI shows)."""
    home = dagster_home(lake)
    return dg.DagsterInstance.from_config(str(home))
