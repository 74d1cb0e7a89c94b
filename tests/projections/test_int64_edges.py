"""The warehouse's fold at the largest values the log accepts agrees with the Order evolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlog.decider import fold
from eventlog.envelope import NewEvent
from eventlog.errors import PayloadSchemaError
from eventlog.orders import ORDER_DECIDER
from eventlog.orders.events import order_registry
from eventlog.orders.log import open_order_log
from projections.runner import catch_up
from projections.warehouse import connect

CREATED = {
    "customer_id": "c-1",
    "customer_name": "Ada",
    "customer_email": "ada@example.com",
    "currency": "EUR",
    "channel": "web",
}
MAX_QUANTITY = order_registry().spec("ItemAdded").bounds["quantity"].hi
MAX_CENTS = order_registry().spec("ItemAdded").bounds["unit_price_cents"].hi


def totals(lake: Path, events: list[NewEvent]) -> tuple[int, int]:
    """(the warehouse's total_cents, the Python fold's total_cents) of one order."""
    with open_order_log(lake) as log:
        log.append("o-1", [NewEvent("OrderCreated", CREATED), *events])
        catch_up(log)
        stream = log.read_stream("o-1")
        stored = [
            log.registry.decode(t, v, p)
            for t, v, p in zip(
                stream.column("event_type").to_pylist(),
                stream.column("schema_version").to_pylist(),
                stream.column("payload").to_pylist(),
                strict=True,
            )
        ]
    state = fold(ORDER_DECIDER, stored, ORDER_DECIDER.initial("o-1"))
    con = connect(lake, read_only=True)
    try:
        row = con.execute("SELECT total_cents FROM analytics.orders").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), state.total_cents


def test_the_largest_lines_the_log_accepts_are_projected_exactly(lake: Path) -> None:
    item = {
        "sku": "s",
        "product_name": "p",
        "quantity": MAX_QUANTITY,
        "unit_price_cents": MAX_CENTS,
    }
    lines = [NewEvent("ItemAdded", item) for _ in range(50)]
    expected = 50 * MAX_QUANTITY * MAX_CENTS
    assert expected < 2**63  # fifty of the largest lines still fit a 64-bit column
    assert totals(lake, lines) == (expected, expected)


def test_a_discount_that_would_wrap_a_total_is_refused_at_the_door(lake: Path) -> None:
    with open_order_log(lake) as log, pytest.raises(PayloadSchemaError, match="amount_cents"):
        log.append("o-1", [NewEvent("DiscountApplied", {"code": "X", "amount_cents": -(2**63)})])
