"""`ledgerlake ui` for real: its daemon launches catch_up when the log grows, and SIGTERM
stops it (webserver and daemon too), even when a script started it in the background."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dagster_ui import DagsterUI, runs, session_processes, start_ui, wait_for_run
from tests.support.terminal import piped

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def background_ui(tmp_path: Path) -> Iterator[DagsterUI]:
    """`ledgerlake ui` started like `ledgerlake ui &` from a script (SIGINT ignored)."""
    from eventlog.generate import generate

    lake = tmp_path / "lake"
    generate(lake, orders=30, days=30, seed=11)
    ARTIFACTS.mkdir(exist_ok=True)
    ui = start_ui(lake, ARTIFACTS / "dagster-ui-daemon.log", like_a_background_job=True)
    try:
        yield ui
    finally:
        ui.stop()  # the fallback: SIGINT, then SIGKILL to the whole group


def sensor_run_for(ui: DagsterUI, head: int, timeout: float = 240.0) -> dict[str, Any]:
    """The catch_up run the log-head sensor requested for ``head`` (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in runs(ui):
            tags = {t["key"]: t["value"] for t in run["tags"]}
            if (
                run["jobName"] == "catch_up"
                and tags.get("dagster/sensor_name") == "log_head_sensor"
                and tags.get("ledgerlake/head") == str(head)
            ):
                return run
        time.sleep(2)
    raise AssertionError(
        f"the daemon launched no catch_up for head {head}:\n{ui.log_text()[-4000:]}"
    )


def warehouse_orders(lake: Path) -> int:
    from projections.warehouse import connect

    con = connect(lake, read_only=True, timeout_s=60)
    try:
        row = con.execute("SELECT count(*) FROM analytics.orders").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def test_the_daemon_catches_up_after_an_append_and_sigterm_stops_everything(
    background_ui: DagsterUI,
) -> None:
    from eventlog.orders.log import reading

    ui, lake = background_ui, background_ui.lake
    with reading(lake) as log:
        head = log.head()
    first = sensor_run_for(ui, head)
    assert wait_for_run(ui, first["runId"]) == "SUCCESS", ui.log_text()[-4000:]
    assert warehouse_orders(lake) == 30

    created = piped(
        "--lake",
        str(lake),
        "handle",
        json.dumps(
            {
                "command": "CreateOrder",
                "order_id": "ord-daemon-1",
                "customer_id": "cus-daemon",
                "customer_name": "Dee Mon",
                "customer_email": "dee@example.com",
                "currency": "EUR",
                "channel": "web",
            }
        ),
    )
    assert created.returncode == 0, created.stderr
    with reading(lake) as log:
        new_head = log.head()
    assert new_head == head + 1
    second = sensor_run_for(ui, new_head)
    assert second["runId"] != first["runId"]
    assert wait_for_run(ui, second["runId"]) == "SUCCESS", ui.log_text()[-4000:]
    assert warehouse_orders(lake) == 31

    # SIGTERM to the one process a script knows (`kill $!`), not to its group.
    pid = ui.process.pid
    session = os.getsid(pid)
    assert len(session_processes(session)) >= 3  # dagster dev, webserver, daemon
    os.kill(pid, signal.SIGTERM)
    code = ui.process.wait(timeout=90)
    deadline = time.monotonic() + 30
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = session_processes(session)
    ui.stopped = True
    assert not left, f"processes left running after SIGTERM: {left}\n{ui.log_text()[-3000:]}"
    assert code is not None
