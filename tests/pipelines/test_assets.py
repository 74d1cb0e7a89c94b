"""Every asset materializes with dg.materialize on a generated lake and records what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from eventlog.orders.log import open_order_log
from pipelines.assets import ALL_ASSETS, PROJECTION_NAMES
from pipelines.checks import log_counts
from pipelines.definitions import resources_for
from projections import plan, vector_store
from projections.warehouse import checkpoints, connect

TABLES = "SELECT table_name FROM duckdb_tables() WHERE schema_name = $schema"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize(
    lake: Path, instance: dg.DagsterInstance, run_config: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """dg.materialize every asset; returns each asset's materialization metadata values."""
    result = dg.materialize(
        ALL_ASSETS,
        instance=instance,
        resources=resources_for(str(lake), "hashing"),
        run_config={**QUIET, **(run_config or {})},
    )
    assert result.success
    return {
        e.materialization.asset_key.to_user_string(): {
            k: v.value for k, v in e.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


def head_of(lake: Path) -> int:
    with open_order_log(lake, create=False, seal_on_close=False) as log:
        return log.head()


def test_every_asset_materializes_with_outputs_and_metadata(
    small_lake: Path, instance: dg.DagsterInstance
) -> None:
    meta = materialize(small_lake, instance)
    assert set(meta) == {*PROJECTION_NAMES, "training_set"}
    with open_order_log(small_lake, create=False, seal_on_close=False) as log:
        head = log.head()
        counts = log_counts(log, head)
    con = connect(small_lake, read_only=True)
    try:
        stored = checkpoints(con)
        for p in plan.PROJECTIONS:
            rows = con.execute(f"SELECT count(*) FROM {p.view}").fetchone()[0]
            m = meta[p.name]
            assert m["rows"] == m["dagster/row_count"] == rows > 0, p.name
            assert m["head_read"] == m["to_position"] == stored[p.name].position == head
            assert m["from_position"] == 0 and m["positions_applied"] == head
            assert m["lag_events"] == 0 and m["lag_seconds"] == 0.0
            assert m["duration_s"] > 0 and m["rebuilt"] is False
            first_column = con.execute(f"SELECT * FROM {p.view} LIMIT 0").description[0][0]
            assert f"| {first_column} |" in m["preview"] or f"| {first_column} " in m["preview"]
            assert m["preview"].count("\n") == 1 + min(5, rows)
    finally:
        con.close()
    assert meta["order_events"]["rows"] == counts.events
    assert meta["orders"]["rows"] == counts.orders
    store = vector_store.VectorStore(small_lake, create=False)
    for name, expected in (
        (vector_store.EVENT_NARRATIVES, counts.events),
        (vector_store.ORDER_STORIES, counts.orders),
    ):
        table = store.open_table(store.require(name).table)
        assert meta[name]["rows"] == table.count_rows() == expected
        assert meta[name]["model"] == "hashing-64" and meta[name]["to_position"] == head
        # the rendered texts hold personal data: the preview leaves them out (docs/erasure.md)
        assert "| text |" not in meta[name]["preview"] and "order_id" in meta[name]["preview"]
    training = pq.read_table(small_lake / "training" / "training_set.parquet")
    assert meta["training_set"]["rows"] == training.num_rows == 38  # SMALL, seed 3
    assert meta["training_set"]["positives"] == 4
    assert meta["training_set"]["orders"] == len(set(training.column("order_id").to_pylist()))
    assert meta["training_set"]["head_read"] == head


def test_second_materialization_applies_only_the_new_events(
    small_lake: Path, instance: dg.DagsterInstance
) -> None:
    from eventlog.orders.generate import generate

    materialize(small_lake, instance)
    before = head_of(small_lake)
    generate(small_lake, orders=5, days=3, seed=99)
    after = head_of(small_lake)
    assert after > before
    meta = materialize(small_lake, instance)
    for name in ("order_events", vector_store.EVENT_NARRATIVES):
        assert meta[name]["from_position"] == before
        assert meta[name]["to_position"] == meta[name]["head_read"] == after
        assert meta[name]["positions_applied"] == after - before
    assert meta["orders"]["rows"] == meta["order_stories"]["rows"]


def test_rebuild_config_builds_a_new_table_from_position_zero(
    small_lake: Path, instance: dg.DagsterInstance
) -> None:
    materialize(small_lake, instance)
    config = {"ops": {"orders": {"config": {"rebuild": True}}}}
    meta = materialize(small_lake, instance, config)
    assert meta["orders"]["rebuilt"] is True and meta["orders"]["table"] == "builds.orders__2"
    assert meta["orders"]["from_position"] == head_of(small_lake)
    assert meta["customers"]["rebuilt"] is False
    con = connect(small_lake, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM analytics.orders").fetchone()[0] == 60
        tables = con.execute(TABLES, {"schema": "builds"}).fetchall()
    finally:
        con.close()
    assert ("orders__2",) in tables and ("orders__1",) not in tables


def test_event_log_observation_has_the_head_as_data_version(
    small_lake: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    job = defs.resolve_job_def("catch_up")
    result = job.execute_in_process(instance=instance, run_config=QUIET)
    assert result.success
    [obs] = result.asset_observations_for_node("event_log")
    head = head_of(small_lake)
    assert obs.tags["dagster/data_version"] == str(head)
    assert obs.metadata["head"].value == head and obs.metadata["streams"].value == 60
