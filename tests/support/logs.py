"""Helpers for the event-log tests: a manual clock, event builders, a writer subprocess.

Run as a script, this module is the writer process of the concurrency and crash tests:

    python tests/support/logs.py concurrent LAKE WORKER N STREAMS OUT
    python tests/support/logs.py crash LAKE SEED ACKS [CRASH_POINT]
    python tests/support/logs.py writers LAKE WORKER SECONDS OUT

Each successful append is written to a side file and fsynced *after* the call returned,
so the file lists only acknowledged appends; a crash point makes the process
``os._exit`` at one exact step of the commit protocol.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from eventlog.envelope import NewEvent
from eventlog.orders.log import open_order_log

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves by hand (it may also go backwards)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock by a timedelta's keyword arguments (negative goes back)."""
        self.now += timedelta(**delta)


def created(customer: str = "c-1", **meta: Any) -> NewEvent:
    """An OrderCreated event."""
    return NewEvent(
        "OrderCreated",
        {
            "customer_id": customer,
            "customer_name": "Ada Lovelace",
            "customer_email": "ada@example.com",
            "currency": "EUR",
            "channel": "web",
        },
        metadata=meta,
    )


def item(sku: str = "sku-1", quantity: int = 1, price: int = 1250, **kw: Any) -> NewEvent:
    """An ItemAdded event."""
    payload = {
        "sku": sku,
        "product_name": f"Product {sku}",
        "quantity": quantity,
        "unit_price_cents": price,
    }
    return NewEvent("ItemAdded", payload, **kw)


def note(text: str = "please gift wrap", **kw: Any) -> NewEvent:
    """A CustomerNoteAdded event."""
    return NewEvent("CustomerNoteAdded", {"author": "customer", "note": text}, **kw)


def bulk_table(n: int, streams: int, *, prefix: str = "bulk", seed: int = 0) -> pa.Table:
    """A bulk-append table of n CustomerNoteAdded events spread over ``streams`` streams."""
    rng = random.Random(seed)
    ids = [f"{prefix}-{rng.randrange(streams)}" for _ in range(n)]
    payloads = [json.dumps({"author": "import", "note": f"note {i}"}) for i in range(n)]
    return pa.table(
        {
            "stream_id": ids,
            "event_type": ["CustomerNoteAdded"] * n,
            "payload": payloads,
            "occurred_at": pa.array([T0] * n, pa.timestamp("us", "UTC")),
        }
    )


def envelope_rows(*, start: int, n: int) -> pa.Table:
    """n valid envelope rows at positions start.. of one fresh stream ``orphan``."""
    from eventlog.envelope import ENVELOPE_SCHEMA

    return pa.table(
        {
            "position": list(range(start, start + n)),
            "stream_type": ["order"] * n,
            "stream_id": ["orphan"] * n,
            "version": list(range(1, n + 1)),
            "event_id": [str(uuid.uuid4()) for _ in range(n)],
            "event_type": ["CustomerNoteAdded"] * n,
            "schema_version": [1] * n,
            "occurred_at": [T0] * n,
            "recorded_at": [T0] * n,
            "payload": ['{"author":"a","note":"n"}'] * n,
            "metadata": ["{}"] * n,
        }
    ).cast(ENVELOPE_SCHEMA)


def all_events(log: Any) -> pa.Table:
    """The whole log as one table (parts and tail)."""
    table: pa.Table = log.read_all()
    return table


def positions(log: Any) -> list[int]:
    """Every position in the log, in order."""
    return list(all_events(log).column("position").to_pylist())


# ---------------------------------------------------------------- writer processes
HERE = Path(__file__).resolve()


def writer_command(*args: object) -> list[str]:
    """The argv that runs this module as a writer process."""
    return [sys.executable, str(HERE), *(str(a) for a in args)]


def _ack(fh: Any, record: dict[str, Any]) -> None:
    fh.write(json.dumps(record) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def _concurrent(lake: str, worker: str, n: str, streams: str, out: str) -> None:
    """Append n times to random shared streams with the version this worker last read."""
    from eventlog.errors import ConcurrencyError

    rng = random.Random(int(worker))
    log = open_order_log(lake, seal_max_events=40, seal_on_close=False)
    Path(out + ".ready").touch()
    go = Path(out).parent / "go"
    while not go.exists():  # start together, so the workers really race
        time.sleep(0.005)
    clashes = 0
    with open(out, "w") as fh:
        for i in range(int(n)):
            sid = f"shared-{rng.randrange(int(streams))}"
            version = log.stream_version(sid)
            events = [note(f"w{worker} #{i} e{k}") for k in range(rng.randint(1, 3))]
            try:
                res = log.append(sid, events, expected_version=version)
            except ConcurrencyError as exc:
                assert exc.expected == version and exc.actual != version
                clashes += 1
                continue
            _ack(
                fh,
                {
                    "stream_id": sid,
                    "first": res.first_position,
                    "last": res.last_position,
                    "first_version": res.first_version,
                    "expected": version,
                },
            )
        _ack(fh, {"clashes": clashes})
    log.tail.close()


CRASH_POINTS = ("after_publish", "before_commit", "after_tmp", "between_parts", "next_marker")


def _install_crash_point(point: str) -> None:
    """Make the process die at one exact step of the commit protocol."""
    from eventlog import (
        maintenance as maintenance_module,
        parts as parts_module,
        storage as storage_module,
    )

    if point == "after_publish":  # part published, the tail not committed
        original = storage_module.PartStore.publish

        def publish_then_die(self: Any, date: str, table: pa.Table) -> Any:
            original(self, date, table)
            os._exit(9)

        storage_module.PartStore.publish = publish_then_die  # type: ignore[method-assign]
    elif point == "before_commit":  # every part published, rows deleted, no commit
        original_seal = maintenance_module.Maintenance.seal_locked

        def seal_then_die(self: Any) -> None:
            original_seal(self)
            if self.log.tail.meta("sealed_head") > 0:
                os._exit(9)

        maintenance_module.Maintenance.seal_locked = seal_then_die  # type: ignore[method-assign]
    elif point == "after_tmp":  # temp file written and fsynced, never published

        def die_on_link(src: Any, dst: Any) -> None:
            os._exit(9)

        parts_module.os.link = die_on_link  # type: ignore[assignment]
    elif point == "between_parts":  # a bulk append published some of its parts, not all
        original_publish = storage_module.publish_part

        def publish_some_then_die(staged: Any) -> Any:
            part = original_publish(staged)
            for marker in (staged.part.path.parents[1] / "_inflight").iterdir():
                span = marker.read_text().split()
                if span and int(span[0]) <= part.first and part.last < int(span[1]):
                    os._exit(9)
            return part

        storage_module.publish_part = publish_some_then_die  # type: ignore[assignment]
    elif point == "next_marker":  # a part published, the next marker created but empty
        original_marker = storage_module._write_marker

        def die_writing_second_marker(path: Path, span: tuple[int, int]) -> None:
            mine = [m for m in path.parent.iterdir() if m.name.startswith(f"{os.getpid()}-")]
            if mine:  # this transaction already marked (and published) a span
                path.write_text("")  # the marker being written, killed before its span
                os._exit(9)
            original_marker(path, span)

        storage_module._write_marker = die_writing_second_marker  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown crash point {point!r}; expected one of {CRASH_POINTS}")


def _crash(lake: str, seed: str, acks: str, point: str | None = None) -> None:
    """Append forever (tail appends, seals, bulk appends) until killed; ack each success."""

    if point:
        _install_crash_point(point)
    rng = random.Random(int(seed))
    log = open_order_log(
        lake, seal_max_events=25, bulk_threshold=10_000, bulk_part_rows=100, seal_on_close=False
    )
    with open(acks, "a") as fh:
        for _ in _forever():
            roll = rng.random()
            if roll < 0.08:
                table = bulk_table(rng.randint(50, 400), 20, prefix=f"b{seed}", seed=rng.random())
                ids = [str(uuid.uuid4()) for _ in range(table.num_rows)]
                table = table.append_column("event_id", pa.array(ids))
                res = log.append_batch(table)
                _ack(fh, {"first": res.first_position, "last": res.last_position, "event_ids": ids})
            elif roll < 0.12:
                log.seal()
            else:
                sid = f"s{seed}-{rng.randrange(30)}"
                events = [
                    note(f"n{rng.random()}", event_id=str(uuid.uuid4()))
                    for _ in range(rng.randint(1, 3))
                ]
                res = log.append(sid, events)
                _ack(
                    fh,
                    {
                        "first": res.first_position,
                        "last": res.last_position,
                        "event_ids": [e.event_id for e in events],
                    },
                )


def _many_writers(lake: str, worker: str, seconds: str, out: str) -> None:
    """Append and handle commands on shared streams for ``seconds``; ack each success.

    Raw appends carry their own event ids and the version this writer last read (a clash
    is counted); commands carry command ids. A storage error (the database restarting)
    is retried with the same ids until it goes through: a retry never doubles an event.
    """
    from eventlog.errors import ConcurrencyError, LedgerLakeError, StorageError
    from eventlog.handler import CommandHandler
    from eventlog.orders import ORDER_DECIDER, AddCustomerNote, CreateOrder

    rng = random.Random(int(worker))
    log = open_order_log(lake, seal_max_events=200, seal_on_close=False)
    handler = CommandHandler(log, ORDER_DECIDER)
    Path(out + ".ready").touch()
    go = Path(out).parent / "go"
    while not go.exists():
        time.sleep(0.005)
    deadline = time.monotonic() + float(seconds)
    clashes = storage_errors = 0

    def retried(call: Any) -> Any:
        nonlocal storage_errors
        while True:
            try:
                return call()
            except StorageError:
                storage_errors += 1
                time.sleep(0.2)

    with open(out, "w") as fh:
        i = 0
        while time.monotonic() < deadline:
            i += 1
            if rng.random() < 0.5:
                sid = f"shared-{rng.randrange(6)}"
                events = [
                    note(f"w{worker} #{i} e{k}", event_id=str(uuid.uuid4()))
                    for k in range(rng.randint(1, 3))
                ]
                try:
                    version = retried(lambda sid=sid: log.stream_version(sid))
                    res = retried(
                        lambda sid=sid, events=events, version=version: log.append(
                            sid, events, expected_version=version
                        )
                    )
                except ConcurrencyError:
                    clashes += 1
                    continue
                ids = [e.event_id for e in events]
            else:
                oid = f"order-{rng.randrange(8)}"
                at = T0 + timedelta(seconds=i)
                if retried(lambda oid=oid: log.stream_version(oid)) == 0:
                    cmd: Any = CreateOrder(
                        order_id=oid,
                        at=at,
                        customer_id="c-1",
                        customer_name="Ada",
                        customer_email="ada@example.com",
                        currency="EUR",
                        channel="web",
                    )
                else:
                    cmd = AddCustomerNote(
                        order_id=oid, at=at, author="support", note=f"w{worker} #{i}"
                    )
                cid = f"w{worker}-{i}"
                try:
                    result = retried(
                        lambda oid=oid, cmd=cmd, cid=cid: handler.handle(oid, cmd, command_id=cid)
                    )
                except ConcurrencyError:
                    clashes += 1
                    continue
                except LedgerLakeError:  # an order another writer created first
                    continue
                if result.append is None:
                    continue
                res = result.append
                ids = [e.event_id for e in result.events]
            _ack(fh, {"first": res.first_position, "last": res.last_position, "event_ids": ids})
        _ack(fh, {"clashes": clashes, "storage_errors": storage_errors})
    log.tail.close()


def _forever() -> Iterator[int]:
    i = 0
    while True:
        yield i
        i += 1


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "concurrent":
        _concurrent(*rest)
    elif mode == "crash":
        _crash(*rest)
    elif mode == "writers":
        _many_writers(*rest)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
