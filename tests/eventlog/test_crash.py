"""A writer process killed at random moments, and at each exact step of the commit protocol.

The writer (tests/support/logs.py, mode ``crash``) appends to the tail, seals and makes
bulk appends, and writes every acknowledged append to a side file after the call returned.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eventlog.log import EventLog
from eventlog.orders.log import open_order_log
from eventlog.parts import list_parts, temp_files
from tests.support.backends import FILE_BACKENDS as BACKENDS
from tests.support.logs import CRASH_POINTS, writer_command

KILLS = 25


@pytest.fixture(params=sorted(BACKENDS))
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An empty lake of each backend (the writer process finds its tail in the lake)."""
    path = tmp_path / "lake"
    path.mkdir()
    BACKENDS[request.param](request, path)
    return path


def _acked(acks: Path) -> list[dict[str, object]]:
    if not acks.exists():
        return []
    lines = acks.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _every_published_part_reads(lake: Path) -> None:
    for part in list_parts(lake / "events"):
        pq.read_table(part.path)  # a partial part would fail here


def _check_after_crash(lake: Path, acks: Path) -> EventLog:
    """Open (repairing), then: verify clean, every acknowledged append present."""
    _every_published_part_reads(lake)
    log = open_order_log(lake, seal_on_close=False)
    report = log.verify()
    assert report.ok, report.problems
    assert temp_files(log.events_dir) == []
    assert not log.inflight_dir.exists() or not any(log.inflight_dir.iterdir())
    table = log.read_all(columns=["position", "event_id"])
    event_ids = table.column("event_id").to_pylist()
    assert table.column("position").to_pylist() == list(range(1, len(event_ids) + 1))
    for ack in _acked(acks):
        first, last = int(ack["first"]), int(ack["last"])  # type: ignore[call-overload]
        assert event_ids[first - 1 : last] == ack["event_ids"], f"acknowledged {first}..{last} lost"
    return log


def _wait_for_progress(acks: Path, before: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while (acks.stat().st_size if acks.exists() else 0) <= before:
        assert proc.poll() is None, "the writer died on its own"
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_append(lake: Path, tmp_path: Path) -> None:
    acks = tmp_path / "acks.jsonl"
    rng = random.Random(7)
    for i in range(KILLS):
        before = acks.stat().st_size if acks.exists() else 0
        proc = subprocess.Popen(writer_command("crash", lake, i, acks))
        _wait_for_progress(acks, before, proc)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log = _check_after_crash(lake, acks)
        log.tail.close()
    assert len(_acked(acks)) > KILLS
    log = open_order_log(lake)
    assert log.head() >= max(int(a["last"]) for a in _acked(acks))  # type: ignore[call-overload]
    log.close()


def _meta(lake: Path, key: str) -> int:
    """A counter as the tail holds it, read without repairing anything."""
    log = open_order_log(lake, read_only=True)
    try:
        return log.tail.meta(key)
    finally:
        log.tail.close()


def _sealed_head(lake: Path) -> int:
    return _meta(lake, "sealed_head")


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_each_step_is_repaired_on_open(lake: Path, tmp_path: Path, point: str) -> None:
    acks = tmp_path / "acks.jsonl"
    proc = subprocess.run(writer_command("crash", lake, 3, acks, point), timeout=120, check=False)
    assert proc.returncode == 9, "the writer should have died at the crash point"
    sealed = _sealed_head(lake)
    events = lake / "events"
    if point == "after_tmp":
        assert temp_files(events), "a temp file was left behind"
    else:
        assert any(p.last > sealed for p in list_parts(events)), "a part beyond the sealed head"
        assert any((events / "_inflight").iterdir()), "the in-flight marker was left behind"
    head = _meta(lake, "head")
    log = _check_after_crash(lake, acks)
    assert log.sealed_head() >= sealed
    assert all(p.last <= log.sealed_head() for p in list_parts(events))
    if point == "between_parts":  # the half-published batch was never committed: undone
        assert log.head() == head
    log.close()
