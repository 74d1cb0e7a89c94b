"""Each asset check passes on a good lake and fails on corrupt or lagging input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines import checks
from pipelines.definitions import resources_for
from projections import vector_store
from projections.warehouse import checkpoints, connect, pinned_dir, warehouse_path

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture
def caught_up(
    small_lake: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> Iterator[tuple[Path, dg.DagsterInstance, dg.ExecuteInProcessResult]]:
    """The small lake after one catch_up run (every check evaluated)."""
    result = defs.resolve_job_def("catch_up").execute_in_process(
        instance=instance, run_config=QUIET
    )
    yield small_lake, instance, result


def find(name: str, asset: str) -> dg.AssetChecksDefinition:
    """The check definition called ``name`` on ``asset``."""
    for check in checks.ALL_CHECKS:
        key = next(iter(check.check_keys))
        if key.name == name and key.asset_key.to_user_string() == asset:
            return check
    raise AssertionError(f"no check {name} on {asset}")


def evaluate(
    lake: Path, instance: dg.DagsterInstance, name: str, asset: str
) -> dg.AssetCheckResult:
    """Run one check directly with the lake's resources."""
    res = resources_for(str(lake), "hashing")
    check = find(name, asset)
    needs = check.node_def.required_resource_keys
    kwargs = {k: res[k] for k in needs}
    if "context" in check.node_def.compute_fn.decorated_fn.__code__.co_varnames[:1]:
        result = check(dg.build_asset_check_context(instance=instance), **kwargs)
    else:
        result = check(**kwargs)
    assert isinstance(result, dg.AssetCheckResult)
    return result


def physical(lake: Path, name: str) -> str:
    con = connect(lake, read_only=True)
    try:
        return checkpoints(con)[name].table_name
    finally:
        con.close()


def write(lake: Path, sql: str, params: dict[str, Any] | None = None) -> None:
    con = connect(lake)
    try:
        con.execute(sql, params or {})
    finally:
        con.close()


def test_every_check_passes_after_catch_up(caught_up: Any) -> None:
    _, _, result = caught_up
    evaluations = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(evaluations) == len(checks.ALL_CHECKS) and all(ev.passed for ev in evaluations)


def test_log_integrity_fails_on_a_missing_part_and_blocks_the_projections(
    small_lake: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    assert evaluate(small_lake, instance, "log_integrity", "event_log").passed
    parts = sorted((small_lake / "events").rglob("*.parquet"))
    parts[len(parts) // 2].unlink()
    result = evaluate(small_lake, instance, "log_integrity", "event_log")
    assert not result.passed and result.metadata["problems"].value
    run = defs.resolve_job_def("catch_up").execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False
    )
    assert not run.success
    assert run.get_asset_materialization_events() == []  # nothing built on a corrupt log


@pytest.mark.parametrize("name", ["order_events", "orders", "order_states"])
def test_caught_up_fails_when_a_checkpoint_lags_the_head_it_read(caught_up: Any, name: str) -> None:
    lake, instance, _ = caught_up
    assert evaluate(lake, instance, "caught_up", name).passed
    write(lake, "UPDATE meta.checkpoints SET position = position - 7 WHERE name = $n", {"n": name})
    result = evaluate(lake, instance, "caught_up", name)
    assert not result.passed and result.metadata["behind"].value == 7


def test_caught_up_fails_for_a_lagging_vector_projection(caught_up: Any) -> None:
    lake, instance, _ = caught_up
    store = vector_store.VectorStore(lake)
    table = store.require(vector_store.EVENT_NARRATIVES).table
    path = store.dir / f"checkpoint.{table}.json"
    data = json.loads(path.read_text())
    data["position"] -= 3
    path.write_text(json.dumps(data))
    result = evaluate(lake, instance, "caught_up", vector_store.EVENT_NARRATIVES)
    assert not result.passed and result.metadata["behind"].value == 3


def test_caught_up_fails_without_a_materialization(small_lake: Path) -> None:
    result = evaluate(small_lake, dg.DagsterInstance.ephemeral(), "caught_up", "orders")
    assert not result.passed and "no materialization" in (result.description or "")


@pytest.mark.parametrize(("name", "key"), [("order_events", "position"), ("orders", "order_id")])
def test_rows_match_log_fails_when_rows_go_missing(caught_up: Any, name: str, key: str) -> None:
    lake, instance, _ = caught_up
    assert evaluate(lake, instance, "rows_match_log", name).passed
    table = physical(lake, name)
    pinned = sorted(pinned_dir(warehouse_path(lake)).glob(f"{table.split('.')[1]}/*.parquet"))
    if pinned:  # order_events reads the sealed events from the warehouse's pinned files
        part = pq.read_table(pinned[0])
        pinned[0].unlink()  # a new file: never write through a link another build shares
        pq.write_table(part.slice(2), pinned[0])
    else:
        write(lake, f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} LIMIT 2)")
    result = evaluate(lake, instance, "rows_match_log", name)
    assert not result.passed
    assert result.metadata["expected"].value - result.metadata["rows"].value == 2


def test_rows_match_log_fails_for_missing_stories(caught_up: Any) -> None:
    lake, instance, _ = caught_up
    store = vector_store.VectorStore(lake)
    tbl = store.open_table(store.require(vector_store.ORDER_STORIES).table)
    first = tbl.head(1).column("order_id")[0].as_py()
    tbl.delete(f"order_id = '{first}'")
    result = evaluate(lake, instance, "rows_match_log", vector_store.ORDER_STORIES)
    assert not result.passed and result.metadata["rows"].value == 59


def test_intervals_check_fails_on_overlapping_states(caught_up: Any) -> None:
    lake, instance, _ = caught_up
    assert evaluate(lake, instance, "intervals_do_not_overlap", "order_states").passed
    table = physical(lake, "order_states")
    # Stretch the first closed state of one order past the start of its next state.
    write(
        lake,
        f"UPDATE {table} SET valid_to = valid_to + INTERVAL 1 DAY WHERE (order_id, valid_from) = "
        f"(SELECT (order_id, valid_from) FROM {table} WHERE valid_to IS NOT NULL "
        "ORDER BY order_id, valid_from LIMIT 1)",
    )
    result = evaluate(lake, instance, "intervals_do_not_overlap", "order_states")
    assert not result.passed and result.metadata["overlaps"].value == 1


def test_narrative_vector_check_fails_on_a_broken_vector(caught_up: Any) -> None:
    lake, instance, _ = caught_up
    assert evaluate(lake, instance, "every_narrative_has_a_vector", "event_narratives").passed
    store = vector_store.VectorStore(lake)
    alias = store.require(vector_store.EVENT_NARRATIVES)
    tbl = store.open_table(alias.table)
    row = tbl.to_arrow().filter(pc.equal(pc.field("position"), 5))
    missing = pa.nulls(1, row.schema.field("vector").type)
    broken = row.set_column(row.schema.get_field_index("vector"), "vector", missing)
    tbl.delete("position = 5")
    tbl.add(broken)
    result = evaluate(lake, instance, "every_narrative_has_a_vector", "event_narratives")
    assert not result.passed and result.metadata["positions"].value == [5]


def test_vector_problems_finds_missing_and_missized_vectors() -> None:
    table = pa.table(
        {
            "position": [1, 2, 3, 4],
            "text": ["ok", "", "short", "none"],
            "vector": [[1.0, 0.0], [1.0, 0.0], [1.0], None],
        }
    )
    assert checks.vector_problems(table, 2) == [2, 3, 4]
