"""Derived projections rebuilt side by side (``projections.lanes``): the same tables as one
at a time, dependencies first, each lane in UTC, failures raised."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from eventlog.generate import generate
from projections.lanes import lanes_for, side_by_side
from projections.plan import PROJECTIONS
from projections.projection import Projection
from projections.runner import catch_up, rebuild
from projections.tables import ORDERS
from projections.warehouse import checkpoints, connect
from tests.projections.test_tables import O1, O2, O3
from tests.support.histories import open_log


def _projection(name: str, *depends_on: str) -> Projection:
    return dataclasses.replace(ORDERS, name=name, depends_on=depends_on)


def test_lanes_follow_the_cores_within_bounds() -> None:
    assert lanes_for(1) == 1
    assert lanes_for(2) == 2
    assert lanes_for(64) == 4
    assert lanes_for(0) == 1


def test_independent_projections_run_at_once_and_dependents_wait() -> None:
    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'Asia/Tokyo'")  # what a new cursor would inherit
    both = threading.Barrier(2, timeout=10)  # broken unless a and b run at the same time
    spans: dict[str, tuple[float, float]] = {}
    zones: dict[str, str] = {}

    def work(lane: Any, p: Projection) -> str:
        started = time.perf_counter()
        assert lane is not con
        zones[p.name] = lane.execute("SELECT current_setting('TimeZone')").fetchone()[0]
        if p.name in ("a", "b"):
            both.wait()
            time.sleep(0.05)
        spans[p.name] = (started, time.perf_counter())
        return p.name.upper()

    chosen = [_projection("a"), _projection("b"), _projection("c", "a", "b", "elsewhere")]
    assert side_by_side(con, chosen, work, lanes=2) == ["A", "B", "C"]
    assert spans["c"][0] >= max(spans["a"][1], spans["b"][1])  # after both committed
    assert set(zones.values()) == {"UTC"}
    con.close()


def test_one_lane_runs_on_the_connection_in_order() -> None:
    con = duckdb.connect()
    order: list[str] = []

    def work(lane: Any, p: Projection) -> None:
        assert lane is con
        order.append(p.name)

    side_by_side(con, [_projection("a"), _projection("b"), _projection("c", "a")], work, 1)
    assert order == ["a", "b", "c"]
    con.close()


def test_a_failure_is_raised_and_its_dependents_never_start() -> None:
    con = duckdb.connect()
    started: list[str] = []

    def work(lane: Any, p: Projection) -> None:
        started.append(p.name)
        if p.name == "a":
            raise ValueError("a broke")
        time.sleep(0.1)  # b is still running when a fails: it finishes

    chosen = [_projection("a"), _projection("b"), _projection("c", "a"), _projection("d", "b")]
    with pytest.raises(ValueError, match="a broke"):
        side_by_side(con, chosen, work, lanes=2)
    assert sorted(started) == ["a", "b"]
    con.close()


def test_an_interrupt_stops_the_running_lanes() -> None:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    began = threading.Event()

    def work(lane: Any, p: Projection) -> None:
        if p.name == "long":
            began.set()  # about half a minute of summing unless it is interrupted
            lane.execute("SELECT sum(range % 7) FROM range(15_000_000_000)").fetchall()
        else:
            began.wait(10)
            time.sleep(0.2)  # the long query is running
            signal.raise_signal(signal.SIGINT)  # Ctrl-C: the main thread is interrupted

    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        side_by_side(con, [_projection("long"), _projection("ctrl_c")], work, lanes=2)
    assert time.perf_counter() - started < 10
    con.close()


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        p.name: sorted(con.execute(f"SELECT * FROM {p.view}").fetchall(), key=repr)
        for p in PROJECTIONS
    }


def test_side_by_side_rebuild_gives_the_tables_of_one_at_a_time(lake: Path) -> None:
    log = open_log(lake)
    generate(log, orders=80, days=6, seed=11)
    con = connect(log)
    # a machine whose zone is not UTC: a lane that kept it would put orders on other days
    con.execute("SET GLOBAL TimeZone = 'Asia/Tokyo'")
    rebuild(log, con, lanes=1)
    one_at_a_time = _tables(con)
    builds = {name: cp.build for name, cp in checkpoints(con).items()}
    reports = rebuild(log, con, lanes=2)
    assert [r.name for r in reports] == [p.name for p in PROJECTIONS]
    assert all(r.rebuilt for r in reports)
    assert {name: cp.build for name, cp in checkpoints(con).items()} == {
        name: build + 1 for name, build in builds.items()
    }
    side_by_side_tables = _tables(con)
    assert side_by_side_tables == one_at_a_time
    assert len(side_by_side_tables["daily_sales"]) > 1
    con.close()
    log.close()


def test_a_dependency_not_rebuilt_is_caught_up_before_its_dependents(lake: Path) -> None:
    log = open_log(lake)
    log.append("o1", O1)
    log.append("o2", O2)
    con = connect(log)
    catch_up(log, con)
    log.append("o3", O3)  # after the checkpoint: orders must take it before daily_sales
    reports = {r.name: r for r in rebuild(log, con, ["daily_sales", "order_states"], lanes=3)}
    assert not reports["orders"].rebuilt and reports["orders"].events_applied > 0
    assert reports["daily_sales"].rebuilt and reports["order_states"].rebuilt
    chosen = set(reports)
    assert chosen == {"order_events", "orders", "daily_sales", "order_states"}
    rebuilt = {name: rows for name, rows in _tables(con).items() if name in chosen}
    rebuild(log, con, lanes=1)
    assert {name: rows for name, rows in _tables(con).items() if name in chosen} == rebuilt
    con.close()
    log.close()
