"""The event log beside its references: the ``eventsourcing`` library and raw pyarrow.

Every figure is measured in the same run as its reference, on the same disk:

* single command: ``handle`` (load state from the stream index, decide, append with the
  expected version) vs an ``eventsourcing`` Application doing get, mutate, save on a
  SQLite file (both WAL, synchronous FULL: durable on return);
* group commit (``handle_many``) events/s vs the peer building and saving the same
  aggregates, and vs its own ceiling (the Order decider's work alone, no log);
* bulk append (``append_batch``) events/s vs pyarrow
  writing the same envelope rows to one Parquet file with the same settings, fsynced
  (the limit), and vs the peer saving many aggregates in one ``app.save``;
* whole-log ``read`` events/s vs the peer selecting and decoding its notifications;
* ``read_stream`` latency on a log of 1M events (200k with ``--quick``), bulk-loaded:
  as the bulk appends left it (a stream's events in many row groups of many parts),
  then after ``compact`` (one part, with its stream file: the events clustered by
  stream), beside the peer's ``repository.get``.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import Result, median, percentile
from eventlog.decider import fold
from eventlog.handler import CommandHandler
from eventlog.log import EventLog
from eventlog.orders import ORDER_DECIDER, AddItem, CreateOrder
from eventlog.orders.log import open_order_log
from eventlog.parts import WRITE_OPTIONS

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
AREA = "event log"


# ----------------------------------------------------------------- the peer
@functools.cache
def _peer_classes() -> tuple[Any, Any]:
    """The peer's Order aggregate and application (defined once: topics are global)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Order(Aggregate):  # the same two commands as the Order decider's path
        @event("OrderCreated")
        def __init__(
            self,
            customer_id: str,
            customer_name: str,
            customer_email: str,
            currency: str,
            channel: str,
        ) -> None:
            self.customer_id = customer_id
            self.currency = currency
            self.item_count = 0
            self.subtotal_cents = 0

        @event("ItemAdded")
        def add_item(
            self, sku: str, product_name: str, quantity: int, unit_price_cents: int
        ) -> None:
            if self.item_count + quantity > 1_000_000:
                raise ValueError("too many items")
            self.item_count += quantity
            self.subtotal_cents += quantity * unit_price_cents

    class Orders(Application[Any]):
        log_section_size = 1000

    return Orders, Order


def _peer_app(path: Path) -> Any:
    orders_cls, order_cls = _peer_classes()
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    return orders_cls(env=env), order_cls


def _create(i: int) -> CreateOrder:
    return CreateOrder(
        order_id=f"order-{i}",
        at=T0,
        customer_id=f"c-{i % 97}",
        customer_name="Ada Lovelace",
        customer_email="ada@example.com",
        currency="EUR",
        channel="web",
    )


def _add(i: int, k: int = 0) -> AddItem:
    return AddItem(
        order_id=f"order-{i}",
        at=T0 + timedelta(minutes=k + 1),
        sku=f"sku-{k % 17}",
        product_name=f"Product {k % 17}",
        quantity=1 + k % 3,
        unit_price_cents=1299,
    )


# ----------------------------------------------------------------- single command
def interleaved_latencies(
    log: EventLog, app: Any, order_cls: Any, n: int
) -> tuple[list[float], list[float]]:
    """Seconds per command, ours and the peer's, interleaved so both see the same load.

    Each side creates an order and adds an item to it (``n`` commands each); both the
    log and the peer's application are closed afterwards.
    """
    handler = CommandHandler(log, ORDER_DECIDER)
    ours: list[float] = []
    peer: list[float] = []
    for i in range(n // 2):
        for command in (_create(i), _add(i)):
            start = time.perf_counter()
            handler.handle(command.order_id, command)
            ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        order = order_cls(f"c-{i % 97}", "Ada Lovelace", "ada@example.com", "EUR", "web")
        app.save(order)
        peer.append(time.perf_counter() - start)
        start = time.perf_counter()
        loaded = app.repository.get(order.id)
        loaded.add_item("sku-0", "Product 0", 1, 1299)
        app.save(loaded)
        peer.append(time.perf_counter() - start)
    log.close()
    app.close()
    return ours, peer


def latency_results(
    ours: list[float], peer: list[float], peer_name: str, area: str = AREA
) -> list[Result]:
    """The handle p50 (judged against the peer's) and p99 rows of interleaved latencies."""
    p50, peer50 = median(ours) * 1e3, median(peer) * 1e3
    p99, peer99 = percentile(ours, 99) * 1e3, percentile(peer, 99) * 1e3
    return [
        Result(
            area,
            "handle latency p50",
            p50,
            "ms",
            f"{peer_name} p50",
            peer50,
            "<= peer p50",
            p50 <= peer50,
        ),
        Result(area, "handle latency p99", p99, "ms", f"{peer_name} p99", peer99),
    ]


def _single_command(workdir: Path, n: int) -> list[Result]:
    """Ours and the peer's commands interleaved, so both see the same machine load."""
    app, order_cls = _peer_app(workdir / "peer-single.db")
    ours, peer = interleaved_latencies(open_order_log(workdir / "single"), app, order_cls, n)
    return [
        *latency_results(ours, peer, "eventsourcing"),
        Result(
            AREA,
            "handle commands/s",
            len(ours) / sum(ours),
            "cmd/s",
            "eventsourcing cmd/s",
            len(peer) / sum(peer),
        ),
    ]


# ----------------------------------------------------------------- group commit, bulk
def _bulk_table(n: int, streams: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, streams, n)
    sku = rng.integers(0, 500, n)
    qty = rng.integers(1, 5, n)
    price = rng.integers(100, 20_000, n)
    payloads = [
        f'{{"product_name":"Product {s}","quantity":{q},"sku":"sku-{s}","unit_price_cents":{p}}}'
        for s, q, p in zip(sku.tolist(), qty.tolist(), price.tolist(), strict=True)
    ]
    occurred = np.int64(int(T0.timestamp() * 1e6)) + rng.integers(0, 86_400_000_000, n)
    return pa.table(
        {
            "stream_id": pa.array([f"bulk-{s}" for s in stream.tolist()]),
            "event_type": pa.array(["ItemAdded"] * n),
            "payload": pa.array(payloads),
            "occurred_at": pa.array(occurred, pa.timestamp("us", "UTC")),
        }
    )


def _pyarrow_limit(table: pa.Table, path: Path) -> float:
    """Seconds pyarrow takes to write the envelope rows to one Parquet file, fsynced."""
    start = time.perf_counter()
    with open(path, "wb") as fh:
        pq.write_table(table, fh, **WRITE_OPTIONS)
        fh.flush()
        os.fsync(fh.fileno())
    return time.perf_counter() - start


def _peer_batched(
    workdir: Path, events: int, per_aggregate: int = 10, per_save: int = 100
) -> tuple[float, float]:
    """The peer saving ``per_save`` aggregates of ``per_aggregate`` events at once.

    Returns (events/s of ``app.save`` alone, events/s of the whole command path: building
    the aggregates by calling their command methods, then saving them).
    """
    app, order_cls = _peer_app(workdir / "peer-batch.db")
    aggregates = events // per_aggregate
    save_only = whole = 0.0
    for lo in range(0, aggregates, per_save):
        batch = []
        start = time.perf_counter()
        for _ in range(min(per_save, aggregates - lo)):
            order = order_cls("c-1", "Ada Lovelace", "ada@example.com", "EUR", "web")
            for k in range(per_aggregate - 1):
                order.add_item(f"sku-{k}", f"Product {k}", 1, 1299)
            batch.append(order)
        saving = time.perf_counter()
        app.save(*batch)
        done = time.perf_counter()
        save_only += done - saving
        whole += done - start
    app.close()
    n = aggregates * per_aggregate
    return n / save_only, n / whole


def _batches(commands: int, batch: int) -> Iterator[tuple[list[Any], list[Any]]]:
    """The group commit's commands, a batch at a time: the orders' creates, then three
    items on each (as (order id, command) pairs)."""
    for lo in range(0, commands, batch):
        ids = range(lo, min(commands, lo + batch))
        creates = [(f"order-{i}", _create(i)) for i in ids]
        adds = [(f"order-{i}", _add(i, k)) for i in ids for k in range(3)]
        yield creates, adds


def _group_commit(workdir: Path, commands: int, batch: int) -> float:
    log = open_order_log(workdir / "group")
    handler = CommandHandler(log, ORDER_DECIDER)
    total = 0.0
    events = 0
    for creates, adds in _batches(commands, batch):
        start = time.perf_counter()
        for chunk in (creates, adds):
            results = handler.handle_many(chunk, read_back=False)
            events += sum(
                len(r.events)
                or (r.append.last_position - r.append.first_position + 1 if r.append else 0)
                for r in results
            )
        total += time.perf_counter() - start
    log.close()
    return events / total


def _deciding_alone(commands: int, batch: int) -> float:
    """Events/s of the group commit's domain work alone: decide, evolve and the state's
    JSON dict for the same commands, no log (the ceiling of ``_group_commit``)."""
    decider = ORDER_DECIDER
    states: dict[str, Any] = {}
    total = 0.0
    events = 0
    for creates, adds in _batches(commands, batch):
        start = time.perf_counter()
        for chunk in (creates, adds):
            for sid, command in chunk:
                state = states.get(sid) or decider.initial(sid)
                new = decider.decide(command, state)
                states[sid] = state = fold(decider, new, state)
                decider.state_to_json(state)
                events += len(new)
        total += time.perf_counter() - start
    return events / total


def _bulk(workdir: Path, rows: int, streams: int) -> tuple[EventLog, float, float, int]:
    """Build the big log with append_batch in 100k-row batches; returns events/s and limit."""
    log = open_order_log(workdir / "bulk", seal_on_close=False)
    ours = limit = 0.0
    batch = 100_000
    for lo in range(0, rows, batch):
        table = _bulk_table(min(batch, rows - lo), streams, seed=lo)
        start = time.perf_counter()
        res = log.append_batch(table)
        ours += time.perf_counter() - start
        written = log.read_all(after=res.first_position - 1, until=res.last_position)
        limit += _pyarrow_limit(written, workdir / "limit.parquet")
    return log, rows / ours, rows / limit, rows


# ----------------------------------------------------------------- read
def _read_all(log: EventLog) -> float:
    start = time.perf_counter()
    n = sum(t.num_rows for t in log.read())
    return n / (time.perf_counter() - start)


def _peer_read(workdir: Path) -> tuple[float, int]:
    """Events/s of the peer reading and decoding every notification, 1000 per page."""
    app, _ = _peer_app(workdir / "peer-batch.db")
    start = time.perf_counter()
    n, cursor = 0, 1
    while True:
        page = app.notification_log.select(cursor, 1000)
        if not page:
            break
        for notification in page:
            app.mapper.to_domain_event(notification)
        n += len(page)
        cursor = page[-1].id + 1
    seconds = time.perf_counter() - start
    app.close()
    return n / seconds, n


def _read_stream(log: EventLog, streams: int, samples: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    log.read_stream("bulk-0")  # the first call indexes what bulk appends left unindexed
    index_s = time.perf_counter() - start
    rng = random.Random(5)
    times = []
    for _ in range(samples):
        sid = f"bulk-{rng.randrange(streams)}"
        start = time.perf_counter()
        log.read_stream(sid)
        times.append(time.perf_counter() - start)
    return median(times) * 1e3, percentile(times, 99) * 1e3, index_s


def _peer_get(workdir: Path, samples: int) -> float:
    app, _ = _peer_app(workdir / "peer-batch.db")
    ids = [n.originator_id for n in app.notification_log.select(1, 1000)]
    rng = random.Random(5)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        app.repository.get(rng.choice(ids))
        times.append(time.perf_counter() - start)
    app.close()
    return median(times) * 1e3


def run(workdir: Path, quick: bool) -> list[Result]:
    """Measure the log and its references; sizes shrink with ``quick``."""
    single = 400 if quick else 2000
    group = 2_000 if quick else 10_000
    rows = 200_000 if quick else 1_000_000
    peer_events = 10_000 if quick else 40_000
    streams = rows // 10
    results = _single_command(workdir, single)
    group_rate = _group_commit(workdir, group, 500)
    deciding_rate = _deciding_alone(group, 500)
    peer_batch, peer_command_path = _peer_batched(workdir, peer_events)
    log, bulk_rate, limit_rate, n = _bulk(workdir, rows, streams)
    results += [
        Result(
            AREA,
            "group commit (handle_many, 500 cmds)",
            group_rate,
            "events/s",
            "eventsourcing commands + batched save",
            peer_command_path,
        ),
        Result(
            AREA,
            "group commit (handle_many, 500 cmds)",
            group_rate,
            "events/s",
            "decide + evolve + state JSON alone, no log (ceiling)",
            deciding_rate,
        ),
        Result(
            AREA,
            f"bulk append_batch ({n:,} events)",
            bulk_rate,
            "events/s",
            "pyarrow write_table (limit)",
            limit_rate,
            ">= 0.5x pyarrow",
            bulk_rate >= 0.5 * limit_rate,
        ),
        Result(
            AREA,
            f"bulk append_batch ({n:,} events)",
            bulk_rate,
            "events/s",
            "eventsourcing batched save",
            peer_batch,
            ">= 20x peer",
            bulk_rate >= 20 * peer_batch,
        ),
    ]
    read_rate = _read_all(log)
    peer_read, peer_n = _peer_read(workdir)
    results.append(
        Result(
            AREA,
            f"read whole log ({log.head():,} events)",
            read_rate,
            "events/s",
            f"eventsourcing select+decode ({peer_n:,})",
            peer_read,
            ">= 20x peer",
            read_rate >= 20 * peer_read,
        )
    )
    samples = 300 if quick else 1000
    raw50, raw99, index_s = _read_stream(log, streams, samples)
    start = time.perf_counter()
    log.compact()
    compact_s = time.perf_counter() - start
    p50, p99, _ = _read_stream(log, streams, samples)
    peer_get = _peer_get(workdir, 300)
    size = f"{log.head():,}-event log"
    results += [
        Result(
            AREA,
            f"read_stream p50 ({size}, bulk parts as loaded)",
            raw50,
            "ms",
            f"eventsourcing get p50 ({peer_n:,}-event store)",
            peer_get,
        ),
        Result(AREA, f"read_stream p99 ({size}, bulk parts as loaded)", raw99, "ms"),
        Result(
            AREA,
            f"read_stream p50 ({size}, compacted: stream files)",
            p50,
            "ms",
            f"eventsourcing get p50 ({peer_n:,}-event store)",
            peer_get,
            "<= peer p50",
            p50 <= peer_get,
        ),
        Result(AREA, f"read_stream p99 ({size}, compacted: stream files)", p99, "ms"),
        Result(AREA, "stream index catch-up after bulk appends", index_s, "s"),
        Result(AREA, f"compact ({size}: merge + stream files)", compact_s, "s"),
    ]
    log.tail.close()
    return results


if __name__ == "__main__":
    print(json.dumps([r.to_json() for r in run(Path("benchmarks/.work/log"), True)], indent=2))
