"""The runner: checkpoints, dependencies, stale code versions, lag, incremental cost."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from eventlog.errors import InvalidInputError
from projections import derive, plan
from projections.order_events import ORDER_EVENTS
from projections.plan import select
from projections.progress import lag
from projections.runner import StaleProjectionError, catch_up, rebuild
from projections.tables import ORDERS
from projections.warehouse import checkpoints, connect
from tests.projections.test_tables import O1, O2, O3
from tests.support.histories import open_log


def test_select_adds_dependencies_in_order() -> None:
    assert [p.name for p in select(["customers"])] == ["order_events", "orders", "customers"]
    assert [p.name for p in select(None)] == [p.name for p in plan.PROJECTIONS]
    with pytest.raises(InvalidInputError, match="unknown projection 'x'; expected one of"):
        select(["x"])


def test_checkpoint_moves_with_each_committed_batch(lake: Path) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    commits: list[tuple[str, int]] = []
    catch_up(
        log, names=["order_events"], batch_size=5, on_commit=lambda n, p: commits.append((n, p))
    )
    assert commits == [("order_events", 5), ("order_events", 10), ("order_events", 12)]
    con = connect(log)
    cp = checkpoints(con)["order_events"]
    assert (cp.position, cp.code_version, cp.table_name, cp.build) == (
        12,
        ORDER_EVENTS.code_version,
        "builds.order_events__1",
        1,
    )
    assert cp.recorded_at is not None
    con.close()
    with pytest.raises(InvalidInputError, match="batch_size"):
        catch_up(log, batch_size=0)
    log.close()


def test_second_catch_up_applies_only_new_events(lake: Path) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    log.append("o2", O2)
    catch_up(log)
    nothing = {r.name: r.events_applied for r in catch_up(log)}
    assert set(nothing.values()) == {0}
    log.append("o3", O3)
    reports = {r.name: r for r in catch_up(log)}
    assert reports["orders"].from_position == 16 and reports["orders"].to_position == 20
    assert reports["orders"].events_applied == 4 and reports["orders"].rows == 3
    log.close()


def test_changed_code_version_marks_stale_and_catch_up_rebuilds(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    catch_up(log)
    bumped = dataclasses.replace(ORDERS, code_version="2")
    monkeypatch.setattr(
        plan,
        "PROJECTIONS",
        tuple(bumped if p.name == "orders" else p for p in plan.PROJECTIONS),
    )
    monkeypatch.setitem(plan.BY_NAME, "orders", bumped)
    status = {x.name: x for x in lag(log)}
    assert status["orders"].stale and status["orders"].stored_code_version == "1"
    assert not status["order_events"].stale
    with pytest.raises(StaleProjectionError, match="code version 1, the code is at 2"):
        catch_up(log, rebuild_stale=False)
    reports = {r.name: r for r in catch_up(log)}
    assert reports["orders"].rebuilt and not reports["order_events"].rebuilt
    assert reports["orders"].extra["table"] == "builds.orders__2"
    assert not {x.name: x for x in lag(log)}["orders"].stale
    log.close()


def test_rebuild_only_the_named_projection(lake: Path) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    catch_up(log)
    reports = {r.name: r for r in rebuild(log, names=["order_lines"])}
    assert set(reports) == {"order_events", "order_lines"}
    assert reports["order_lines"].rebuilt and not reports["order_events"].rebuilt
    con = connect(log)
    assert checkpoints(con)["order_lines"].build == 2
    assert checkpoints(con)["orders"].build == 1
    con.close()
    log.close()


def test_lag_before_any_run(lake: Path) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    status = lag(log)
    assert [x.name for x in status] == [p.name for p in plan.PROJECTIONS]
    assert all(x.position == 0 and x.lag_events == 12 and x.table_name is None for x in status)
    log.close()


def test_the_last_source_batch_commits_with_the_derived_tables_or_not_at_all(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    catch_up(log)
    log.append("o2", O2)
    log.append("o3", O3)
    commits: list[tuple[str, int]] = []

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("derived projection failed")

    monkeypatch.setattr(derive, "apply_derived", broken)
    with pytest.raises(RuntimeError, match="derived projection failed"):
        catch_up(log, batch_size=3, on_commit=lambda n, p: commits.append((n, p)))
    con = connect(log)
    stored = {name: cp.position for name, cp in checkpoints(con).items()}
    rows = con.execute("SELECT max(position) FROM analytics.order_events").fetchall()[0][0]
    con.close()
    # the source's earlier batches committed on their own; its last one (up to the head,
    # 20) was to commit with the derived tables, so it rolled back with them
    assert commits and all(name == "order_events" for name, _ in commits)
    assert stored["order_events"] == rows == commits[-1][1] < log.head() == 20
    assert {p for n, p in stored.items() if n != "order_events"} == {12}
    monkeypatch.undo()
    reports = {r.name: r for r in catch_up(log, on_commit=lambda n, p: commits.append((n, p)))}
    assert reports["orders"].to_position == reports["order_events"].to_position == 20
    assert ("order_events", 20) in commits and ("orders", 20) in commits
    log.close()
