"""The log-head sensor, the compaction job and its schedule."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from eventlog.orders.log import open_order_log
from pipelines.definitions import resources_for
from pipelines.sensors import compact_log_schedule, log_head_sensor

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def evaluate(lake: Path, instance: dg.DagsterInstance, cursor: str | None = None) -> object:
    """One sensor tick against the lake (build_sensor_context, real resources)."""
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources_for(str(lake), "hashing")
    ) as context:
        return log_head_sensor(context)


def head_of(lake: Path) -> int:
    with open_order_log(lake, create=False, seal_on_close=False) as log:
        return log.head()


def test_sensor_requests_catch_up_until_projections_reach_the_head(
    small_lake: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    from eventlog.orders.generate import generate

    head = head_of(small_lake)
    first = evaluate(small_lake, instance)
    assert isinstance(first, dg.SensorResult)
    [request] = first.run_requests or []
    assert request.run_key == f"head-{head}" and first.cursor == str(head)
    assert "orders" in request.tags["ledgerlake/lagging"]
    # The same head is not requested twice while the run is pending.
    again = evaluate(small_lake, instance, cursor=first.cursor)
    assert isinstance(again, dg.SkipReason) and "already requested" in (again.skip_message or "")

    run = defs.resolve_job_def("catch_up").execute_in_process(instance=instance, run_config=QUIET)
    assert run.success
    caught = evaluate(small_lake, instance, cursor=first.cursor)
    assert isinstance(caught, dg.SkipReason) and f"head {head}" in (caught.skip_message or "")

    generate(small_lake, orders=3, days=2, seed=42)
    new_head = head_of(small_lake)
    moved = evaluate(small_lake, instance, cursor=first.cursor)
    assert isinstance(moved, dg.SensorResult)
    assert [r.run_key for r in moved.run_requests or []] == [f"head-{new_head}"]
    assert moved.cursor == str(new_head)


def test_sensor_targets_the_catch_up_job(defs: dg.Definitions) -> None:
    sensor = defs.resolve_sensor_def("log_head_sensor")
    assert sensor.job_name == "catch_up"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_compact_log_job_merges_parts_without_changing_events(
    lake: Path, instance: dg.DagsterInstance
) -> None:
    from pipelines.definitions import build_definitions
    from tests.support.logs import ManualClock, created

    with open_order_log(lake, clock=ManualClock()) as log:
        for i in range(4):  # four small sealed parts on one date
            log.append(f"ord-{i}", [created(f"c-{i}")])
            log.seal()
        before_parts = len(log.live_parts())
        before = log.read_all().column("event_id").to_pylist()
    defs = build_definitions(lake=str(lake), embedder_kind="hashing")
    result = defs.resolve_job_def("compact_log").execute_in_process(
        instance=instance, run_config=QUIET
    )
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata  # type: ignore[union-attr]
    with open_order_log(lake, create=False, seal_on_close=False) as log:
        after_parts = len(log.live_parts())
        assert log.read_all().column("event_id").to_pylist() == before
        assert log.verify().ok
    assert before_parts == 4 and after_parts == 1
    assert metadata["parts_before"].value == 4 and metadata["parts_after"].value == 1


def test_compaction_schedule_is_nightly() -> None:
    context = dg.build_schedule_context(scheduled_execution_time=None)
    request = compact_log_schedule.evaluate_tick(context)
    assert compact_log_schedule.cron_schedule == "30 3 * * *"
    assert compact_log_schedule.execution_timezone == "UTC"
    assert request.run_requests and request.run_requests[0].job_name in (None, "compact_log")
