"""Erasure: what encrypting personal fields costs the writers, and what the cascade costs.

- bulk append of order histories (a third of the events carry personal fields), with
  encryption beside without, the two interleaved batch by batch (target >= 0.8x);
- ``handle`` p50 of a realistic command mix, with encryption beside without, the two
  logs' commands interleaved (target <= 1.1x);
- the cascade (``forget`` + ``erase --apply``) on a large lake with its warehouse built:
  one customer, then ten forgotten together (one batch), seconds per step.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks.common import Result, median
from eventlog.handler import CommandHandler
from eventlog.log import EventLog
from eventlog.orders import ORDER_DECIDER
from eventlog.orders.commands import (
    AddCustomerNote,
    AddItem,
    CreateOrder,
    UpdateShippingAddress,
)
from eventlog.orders.log import forget_customer, open_order_log
from eventlog.shred import Shredder

AREA = "erasure"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PER_ORDER = 10  # events per synthetic order; 3 of them carry personal fields


def _plain(log: EventLog) -> EventLog:
    """The same log without encryption (no key store): the reference."""
    log.shredder = Shredder(log.registry, None)
    return log


def _orders_table(first: int, orders: int, customers: int) -> pa.Table:
    """``orders`` order histories of ``PER_ORDER`` events each, stream after stream."""
    rng = np.random.default_rng(first)
    sids, types, payloads = [], [], []
    for i in range(first, first + orders):
        c = int(rng.integers(0, customers))
        sid = f"order-{i}"
        rows = [
            (
                "OrderCreated",
                f'{{"channel":"web","currency":"EUR","customer_email":"c{c}@example.com","customer_id":"cus-{c}","customer_name":"Customer {c}"}}',
            ),
            *[
                (
                    "ItemAdded",
                    f'{{"product_name":"Product {k}","quantity":1,"sku":"sku-{k}","unit_price_cents":{1000 + k}}}',
                )
                for k in range(5)
            ],
            (
                "ShippingAddressUpdated",
                f'{{"city":"Lyon","country":"FR","postal_code":"69{c % 1000:03d}","recipient":"Customer {c}","street":"{c} rue de la Paix"}}',
            ),
            ("PaymentAuthorized", '{"amount_cents":5010,"method":"card","payment_id":"p1"}'),
            ("PaymentCaptured", '{"amount_cents":5010,"payment_id":"p1"}'),
            ("CustomerNoteAdded", f'{{"author":"customer","note":"please ring twice, order {i}"}}'),
        ]
        for etype, payload in rows:
            sids.append(sid)
            types.append(etype)
            payloads.append(payload)
    n = len(sids)
    occurred = np.int64(int(T0.timestamp() * 1e6)) + np.arange(n, dtype=np.int64) * 1_000_000
    return pa.table(
        {
            "stream_id": pa.array(sids),
            "event_type": pa.array(types),
            "payload": pa.array(payloads),
            "occurred_at": pa.array(occurred, pa.timestamp("us", "UTC")),
        }
    )


def _bulk(workdir: Path, rows: int, batch: int) -> tuple[float, float]:
    """events/s with and without encryption, batches alternating between the two logs."""
    enc = open_order_log(workdir / "bulk-enc", seal_on_close=False)
    plain = _plain(open_order_log(workdir / "bulk-plain", seal_on_close=False))
    took = {"enc": 0.0, "plain": 0.0}
    orders = batch // PER_ORDER
    for k, lo in enumerate(range(0, rows // PER_ORDER, orders)):
        table = _orders_table(lo, orders, orders // 3 + 1)
        pair = [("enc", enc), ("plain", plain)]
        for name, log in pair if k % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            log.append_batch(table)
            took[name] += time.perf_counter() - start
    enc.close()
    plain.close()
    return rows / took["enc"], rows / took["plain"]


def _commands(i: int) -> list[Any]:
    oid, at = f"order-{i}", T0 + timedelta(minutes=i)
    return [
        CreateOrder(
            order_id=oid,
            at=at,
            customer_id=f"cus-{i % 97}",
            customer_name="Ada Lovelace",
            customer_email="ada@example.com",
            currency="EUR",
            channel="web",
        ),
        AddItem(
            order_id=oid,
            at=at,
            sku="sku-1",
            product_name="Teapot",
            quantity=1,
            unit_price_cents=1299,
        ),
        AddItem(
            order_id=oid, at=at, sku="sku-2", product_name="Cup", quantity=2, unit_price_cents=499
        ),
        UpdateShippingAddress(
            order_id=oid,
            at=at,
            recipient="Ada Lovelace",
            street="1 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country="GB",
        ),
        AddCustomerNote(order_id=oid, at=at, author="customer", note="leave it with the neighbour"),
    ]


def _handle(workdir: Path, orders: int) -> tuple[float, float]:
    """handle p50 (ms) with and without encryption, command by command interleaved."""
    enc = CommandHandler(open_order_log(workdir / "handle-enc"), ORDER_DECIDER)
    plain = CommandHandler(_plain(open_order_log(workdir / "handle-plain")), ORDER_DECIDER)
    took: dict[str, list[float]] = {"enc": [], "plain": []}
    for i in range(orders):
        for command in _commands(i):
            pair = [("enc", enc), ("plain", plain)]
            for name, handler in pair if i % 2 == 0 else pair[::-1]:
                start = time.perf_counter()
                handler.handle(command.order_id, command)
                took[name].append(time.perf_counter() - start)
    enc.log.close()
    plain.log.close()
    return median(took["enc"]) * 1e3, median(took["plain"]) * 1e3


def _cascade(workdir: Path, rows: int) -> list[Result]:
    """forget + erase --apply on a ``rows``-event lake with its warehouse built."""
    from projections import runner
    from projections.erasure import apply_erasures

    lake = workdir / "cascade"
    log = open_order_log(lake, seal_on_close=False)
    orders = rows // PER_ORDER
    customers = orders // 3
    for lo in range(0, orders, 10_000):
        log.append_batch(_orders_table(lo, min(10_000, orders - lo), customers))
    start = time.perf_counter()
    runner.catch_up(log, None, None)
    project_s = time.perf_counter() - start
    out = [Result(AREA, f"warehouse built from scratch ({rows:,} events)", project_s, "s")]
    for batch in (1, 10):
        start = time.perf_counter()
        for c in range(batch):
            forget_customer(log, f"cus-{c * 7 + batch}")
        forget_s = time.perf_counter() - start
        receipt = apply_erasures(log, lake)
        assert receipt is not None
        secs = receipt["seconds"]
        dominant = max((k for k in secs if k != "total"), key=lambda k: secs[k])
        out.append(
            Result(
                AREA,
                f"cascade, {batch} customer(s) forgotten together ({rows:,} events; "
                f"warehouse {secs['warehouse']:.1f}s, tail {secs['tail']:.1f}s, "
                f"forget {forget_s:.2f}s; dominated by {dominant})",
                secs["total"] + forget_s,
                "s",
                "warehouse built from scratch",
                project_s,
            )
        )
    log.close()
    return out


def run(workdir: Path, quick: bool) -> list[Result]:
    """Measure encryption's cost to the writers and the cascade; sizes shrink with ``quick``."""
    rows = 100_000 if quick else 500_000
    enc_rate, plain_rate = _bulk(workdir, rows, 50_000)
    enc50, plain50 = _handle(workdir, 100 if quick else 400)
    results = [
        Result(
            AREA,
            "bulk append with encryption",
            enc_rate,
            "events/s",
            "bulk append without encryption",
            plain_rate,
            ">= 0.8x",
            enc_rate >= 0.8 * plain_rate,
        ),
        Result(
            AREA,
            "handle p50 with encryption",
            enc50,
            "ms",
            "handle p50 without encryption",
            plain50,
            "<= 1.1x",
            enc50 <= 1.1 * plain50,
        ),
    ]
    return results + _cascade(workdir, 100_000 if quick else 1_000_000)
