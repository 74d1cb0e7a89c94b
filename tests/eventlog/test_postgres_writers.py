"""Many writer processes on the PostgreSQL tail, with a writer killed and the database
restarted under them: dense positions, gap-free versions, nothing acknowledged lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from eventlog.orders.log import open_order_log
from tests.support.logs import writer_command
from tests.support.postgres import PostgresServer, make_postgres_lake


def _start(
    lake: Path, tmp_path: Path, workers: int, seconds: float
) -> tuple[list[Any], list[Path]]:
    outs = [tmp_path / f"writer-{w}.jsonl" for w in range(workers)]
    procs = [
        subprocess.Popen(writer_command("writers", lake, w, seconds, outs[w]))
        for w in range(workers)
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{o}.ready").exists() for o in outs):
        assert time.monotonic() < deadline, "writers did not start"
        assert all(p.poll() is None for p in procs), "a writer died while starting"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    return procs, outs


def _acks(out: Path) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    lines = [json.loads(x) for x in out.read_text().splitlines() if x.endswith("}")]
    summary = lines[-1] if lines and "clashes" in lines[-1] else None
    return [a for a in lines if "first" in a], summary


def _check(lake: Path, acked: list[dict[str, Any]]) -> None:
    log = open_order_log(lake, seal_on_close=False)
    table = log.read_all(columns=["position", "stream_id", "version", "event_id"])
    pos = table.column("position").to_pylist()
    assert pos == list(range(1, len(pos) + 1)), "positions are dense"
    ids = table.column("event_id").to_pylist()
    for a in acked:
        assert ids[a["first"] - 1 : a["last"]] == a["event_ids"], f"lost {a['first']}..{a['last']}"
    by_stream: dict[str, list[int]] = {}
    for sid, ver in zip(
        table.column("stream_id").to_pylist(), table.column("version").to_pylist(), strict=True
    ):
        by_stream.setdefault(sid, []).append(ver)
    assert all(v == list(range(1, len(v) + 1)) for v in by_stream.values()), "versions gap-free"
    report = log.verify()
    assert report.ok, report.problems
    log.close()


@pytest.mark.slow
def test_four_writers_for_30_seconds(postgres: PostgresServer, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    make_postgres_lake(postgres, lake)
    procs, outs = _start(lake, tmp_path, 4, 30)
    for p in procs:
        assert p.wait(timeout=120) == 0
    acked: list[dict[str, Any]] = []
    clashes = 0
    for out in outs:
        mine, summary = _acks(out)
        assert summary is not None
        acked += mine
        clashes += summary["clashes"]
    assert len(acked) > 400 and clashes > 0, (len(acked), clashes)
    _check(lake, acked)
    events = sum(a["last"] - a["first"] + 1 for a in acked)
    print(f"4 writers, 30 s: {len(acked)} acknowledged appends, {events} events, {clashes} clashes")


@pytest.mark.slow
def test_a_killed_writer_and_a_restarted_database_lose_nothing_acknowledged(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    make_postgres_lake(postgres, lake)
    procs, outs = _start(lake, tmp_path, 4, 14)
    time.sleep(4)
    os.kill(procs[0].pid, signal.SIGKILL)  # mid-append, most likely: it appends non-stop
    time.sleep(2)
    postgres.restart(down_s=1.0)  # the other writers see their connections die
    for p in procs[1:]:
        assert p.wait(timeout=120) == 0
    procs[0].wait()
    acked: list[dict[str, Any]] = []
    storage_errors = 0
    for out in outs:
        mine, summary = _acks(out)
        acked += mine
        storage_errors += summary["storage_errors"] if summary else 0
    assert storage_errors > 0, "the restart was noticed (and retried through)"
    _check(lake, acked)
    print(f"kill + restart: {len(acked)} acknowledged appends, {storage_errors} storage errors")
