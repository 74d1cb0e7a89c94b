"""The bulk-loaded order logs the projection and object-storage benchmarks measure on.

``build_log`` appends about N events of complete order histories (created, items, an
address, paid, shipped and delivered; some cancelled, some refunded) with
``append_batch``; ``build_log_extra`` appends more new orders to the same lake, and
``append_notes`` one event each to orders it already holds.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from eventlog.log import EventLog
from eventlog.orders.log import open_order_log

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = [f"SKU-{i:04d}" for i in range(200)]
CITIES = [("Lyon", "FR"), ("Oslo", "NO"), ("Porto", "PT"), ("Graz", "AT")]


def order_history(i: int, rng: random.Random) -> list[tuple[str, str, str, int]]:
    """One order's events as (stream_id, event_type, payload JSON, occurred_at µs)."""
    oid = f"order-{i:08d}"
    t = int((T0 + timedelta(minutes=rng.randrange(60 * 24 * 60))).timestamp() * 1_000_000)
    out: list[tuple[str, str, str, int]] = []

    def add(event_type: str, payload: dict[str, Any]) -> None:
        nonlocal t
        out.append((oid, event_type, json.dumps(payload, separators=(",", ":")), t))
        t += rng.randrange(1, 3600) * 1_000_000

    cust = f"cust-{rng.randrange(20_000):06d}"
    add(
        "OrderCreated",
        {
            "channel": "web",
            "currency": "EUR",
            "customer_email": f"{cust}@example.com",
            "customer_id": cust,
            "customer_name": f"Customer {cust}",
        },
    )
    total = 0
    for _ in range(rng.randint(1, 3)):
        sku, qty, price = rng.choice(SKUS), rng.randint(1, 3), rng.randrange(100, 5000)
        total += qty * price
        add(
            "ItemAdded",
            {
                "product_name": f"Product {sku}",
                "quantity": qty,
                "sku": sku,
                "unit_price_cents": price,
            },
        )
    city, country = rng.choice(CITIES)
    add(
        "ShippingAddressUpdated",
        {
            "city": city,
            "country": country,
            "postal_code": "1000",
            "recipient": "R",
            "street": "1 Main St",
        },
    )
    if rng.random() < 0.1:
        add("OrderCancelled", {"reason": "changed mind"})
        return out
    pid = f"pay-{i}"
    add("PaymentAuthorized", {"amount_cents": total, "method": "card", "payment_id": pid})
    add("PaymentCaptured", {"amount_cents": total, "payment_id": pid})
    add("OrderShipped", {"carrier": "DHL", "tracking_number": f"T{i}"})
    add("OrderDelivered", {})
    if rng.random() < 0.1:
        add("RefundIssued", {"amount_cents": total // 2, "reason": "damaged"})
    return out


def build_log(lake: Path, events: int, seed: int = 7, first_order: int = 0) -> tuple[EventLog, int]:
    """Append about ``events`` order events with ``append_batch``; returns (log, orders)."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, str, int]] = []
    i = first_order
    while len(rows) < events:
        rows.extend(order_history(i, rng))
        i += 1
    rows.sort(key=lambda r: r[3])
    log = open_order_log(lake, seal_on_close=False)
    for start in range(0, len(rows), 200_000):
        chunk = rows[start : start + 200_000]
        log.append_batch(
            pa.table(
                {
                    "stream_id": [r[0] for r in chunk],
                    "event_type": [r[1] for r in chunk],
                    "payload": [r[2] for r in chunk],
                    "occurred_at": pa.array(np.array([r[3] for r in chunk], dtype=np.int64)).cast(
                        pa.timestamp("us", "UTC")
                    ),
                }
            )
        )
    return log, i - first_order


def build_log_extra(lake: Path, events: int, first_order: int) -> EventLog:
    """Append ``events`` more events (new orders) to an existing lake."""
    log, _ = build_log(lake, events, seed=11, first_order=first_order)
    return log


def append_notes(log: EventLog, orders: int, n_orders: int) -> None:
    """Append a ``CustomerNoteAdded`` to each of ``orders`` existing orders (at random)."""
    picked = random.Random(5).sample(range(n_orders), orders)
    at = int((T0 + timedelta(days=61)).timestamp() * 1_000_000)
    log.append_batch(
        pa.table(
            {
                "stream_id": [f"order-{i:08d}" for i in picked],
                "event_type": ["CustomerNoteAdded"] * orders,
                "payload": [
                    json.dumps({"author": "support", "note": f"called about order {i}"})
                    for i in picked
                ],
                "occurred_at": pa.array(np.full(orders, at, dtype=np.int64)).cast(
                    pa.timestamp("us", "UTC")
                ),
            }
        )
    )
