"""Encrypted parts decrypted in worker processes while the warehouse pins them."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import projections.unseal as unseal_module
from eventlog.errors import IntegrityError, StorageError
from eventlog.log import EventLog
from eventlog.orders.log import forget_customer
from eventlog.parts import Part
from projections.runner import rebuild
from projections.snapshot import pin_parts
from projections.unseal import unseal, workers_for
from projections.warehouse import connect
from tests.projections.test_bluegreen import _history
from tests.support.histories import append_commit, open_log


def _parted(lake: Path, commits: int = 4) -> EventLog:
    """A lake whose order histories lie in ``commits`` sealed parts."""
    log = open_log(lake)
    history = _history(40)
    step = len(history) // commits
    for i in range(commits):
        append_commit(log, history[i * step : (i + 1) * step if i < commits - 1 else None])
        log.seal()
    assert len(log.parts()) == commits
    return log


def _in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unseal_module, "SPAWN_ROWS", 0)
    monkeypatch.setattr(unseal_module.os, "cpu_count", lambda: 2)


def _refuse(log: EventLog, part: Part, dest: Path) -> None:
    """A writer that fails on the lake's second part (run in a worker process)."""
    if part.first > 1:
        raise IntegrityError(f"refused {part.name}")
    dest.write_bytes(b"")


def _die(log: EventLog, part: Part, dest: Path) -> None:
    os._exit(3)


def test_workers_pin_what_this_process_pins(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _parted(lake)
    forget_customer(log, "c3")
    here = pin_parts(log, lake / "here", "b")
    _in_workers(monkeypatch)
    todo = [(p, lake / p.name) for p in log.parts()]
    assert workers_for(log, todo) == 2
    there = pin_parts(log, lake / "there", "b")
    names = sorted(p.name for p in here.directory.glob("*.parquet"))
    assert names == sorted(p.name for p in there.directory.glob("*.parquet"))
    assert len(names) == 4 and here.cut == there.cut == log.sealed_head() == 80
    for name in names:
        assert pq.read_table(here.directory / name).equals(pq.read_table(there.directory / name))
    rows = [r for name in names for r in pq.read_table(there.directory / name).to_pylist()]
    assert not any(isinstance(v, str) and "enc:v1:" in v for r in rows for v in r.values())
    assert sum(r["customer_name"] == "[erased]" for r in rows) == 6  # c3's orders
    # and a rebuild through them shows the same warehouse
    rebuild(log, None, ["orders"])
    con = connect(log, read_only=True)
    rows = con.execute(
        "SELECT customer_id, customer_name, count(*) FROM analytics.orders GROUP BY ALL ORDER BY 1"
    ).fetchall()
    con.close()
    assert ("c3", "[erased]", 6) in rows and ("c2", "N", 6) in rows
    log.close()


def test_a_part_a_worker_cannot_pin_is_reported_as_that_part(lake: Path) -> None:
    log = _parted(lake)
    parts = sorted(log.parts(), key=lambda p: p.first)
    todo = [(p, lake / f"{i}.parquet") for i, p in enumerate(parts)]
    seen: list[tuple[str, BaseException]] = []

    def on_error(part: Part, dest: Path, exc: BaseException) -> None:
        seen.append((part.name, exc))

    unseal(log, todo, 2, _refuse, on_error)
    assert len(seen) == 1
    name, exc = seen[0]
    assert isinstance(exc, IntegrityError) and str(exc) == f"refused {name}"
    assert name != parts[0].name
    log.close()


def test_a_worker_that_dies_is_a_storage_error(lake: Path) -> None:
    log = _parted(lake, commits=2)
    todo = [(p, lake / f"{i}.parquet") for i, p in enumerate(log.parts())]
    with pytest.raises(StorageError, match=r"decrypting worker process exited with status 3"):
        unseal(log, todo, 2, _die, lambda *_: None)
    log.close()


def test_small_or_single_core_work_stays_in_this_process(lake: Path) -> None:
    log = _parted(lake)
    todo = [(p, lake / p.name) for p in log.parts()]
    assert workers_for(log, todo) == 0  # 40 orders: less than starting a worker costs
    log.close()
