"""The warehouse file: schemas, UTC, the events view, and what concurrent access does."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from eventlog.envelope import NewEvent
from eventlog.errors import LakeNotFoundError
from eventlog.orders.log import open_order_log
from projections.runner import catch_up
from projections.warehouse import (
    WarehouseBusyError,
    WarehouseNotFoundError,
    connect,
    create_events_view,
    warehouse_path,
)
from tests.projections.test_tables import O1, O2
from tests.support.histories import open_log

HOLD_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from projections.warehouse import connect
    con = connect(Path(sys.argv[1]))
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def test_schemas_and_utc(lake: Path) -> None:
    con = connect(lake)
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert {"analytics", "temporal", "meta"} <= schemas
    assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    con.close()
    assert warehouse_path(lake) == lake / "warehouse.duckdb"


def test_read_only_open_needs_a_warehouse_and_refuses_writes(lake: Path) -> None:
    with pytest.raises(LakeNotFoundError, match=f"no lake at {lake}; create one"):
        connect(lake, read_only=True)
    open_order_log(lake).close()
    with pytest.raises(WarehouseNotFoundError, match="ledgerlake project"):
        connect(lake, read_only=True)
    connect(lake).close()
    ro = connect(lake, read_only=True)
    with pytest.raises(duckdb.Error, match="read-only"):
        ro.execute("CREATE TABLE analytics.x (a INT)")
    ro.close()


def _hold(lake: Path, seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(lake), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "holding"
    return child


def test_reader_waits_for_a_writer_process_then_gives_up_clearly(lake: Path) -> None:
    connect(lake).close()
    child = _hold(lake, 30)
    try:
        with pytest.raises(WarehouseBusyError, match="another process holds it"):
            connect(lake, read_only=True, timeout_s=0.3)
    finally:
        child.kill()
        child.wait()


def test_reader_gets_in_once_the_writer_run_ends(lake: Path) -> None:
    connect(lake).close()
    child = _hold(lake, 1.0)
    started = time.monotonic()
    con = connect(lake, read_only=True, timeout_s=30)
    assert time.monotonic() - started > 0.2  # it had to wait for the writer
    con.close()
    child.wait()


def test_events_view_shows_parts_and_tail(lake: Path) -> None:
    log = open_log(lake, seal_max_age=timedelta(days=365))
    log.append("o1", O1)
    log.seal()
    log.append("o2", O2)  # stays in the SQLite tail
    log.append("o9", [NewEvent("OrderDelivered", {}, occurred_at=O2[0].occurred_at)])
    assert log.sealed_head() == len(O1) < log.head()
    con = connect(log)
    create_events_view(con, log)
    got = con.execute(
        "SELECT count(*), min(position), max(position), count(DISTINCT stream_id) FROM events"
    ).fetchone()
    assert got == (log.head(), 1, log.head(), 3)
    types = con.execute("SELECT typeof(event_type), typeof(occurred_at) FROM events LIMIT 1")
    assert types.fetchall() == [("VARCHAR", "TIMESTAMP WITH TIME ZONE")]
    con.close()
    ro = connect(log, read_only=True)  # notebooks: the view works on read-only opens too
    create_events_view(ro, log)
    assert ro.execute("SELECT count(*) FROM events").fetchall() == [(log.head(),)]
    ro.close()
    log.close()


def test_catch_up_reads_the_tail_too(lake: Path) -> None:
    log = open_log(lake, seal_max_age=timedelta(days=365))
    log.append("o1", O1[:3])
    assert log.sealed_head() == 0
    [report] = [r for r in catch_up(log, names=["order_events"])]
    assert (report.to_position, report.rows) == (3, 3)
    log.close()
