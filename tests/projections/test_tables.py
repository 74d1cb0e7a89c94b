"""Each analytics.* projection: given these events, then exactly these rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from eventlog.envelope import NewEvent
from eventlog.log import EventLog
from projections.runner import catch_up
from projections.warehouse import connect
from tests.support.histories import open_log


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def ev(event_type: str, at: datetime, **payload: Any) -> NewEvent:
    meta = {
        "actor": "alice",
        "command_id": f"cmd-{event_type}-{at:%d%H%M}",
        "correlation_id": "c-1",
    }
    return NewEvent(event_type, payload, occurred_at=at, metadata=meta)


CREATED_C1 = {
    "customer_id": "c1",
    "customer_name": "Ann",
    "customer_email": "ann@x.org",
    "currency": "EUR",
    "channel": "web",
}

O1 = [
    ev("OrderCreated", t(1, 10), **CREATED_C1),
    ev("ItemAdded", t(1, 10, 1), sku="A", product_name="Apple", quantity=2, unit_price_cents=500),
    ev("ItemAdded", t(1, 10, 2), sku="B", product_name="Bread", quantity=1, unit_price_cents=1000),
    ev("ItemRemoved", t(1, 10, 3), sku="A", quantity=1),
    ev("DiscountApplied", t(1, 10, 4), code="SPRING", amount_cents=200),
    ev(
        "ShippingAddressUpdated",
        t(1, 10, 5),
        recipient="Ann",
        street="1 Rue",
        city="Lyon",
        postal_code="69001",
        country="FR",
    ),
    ev("PaymentAuthorized", t(1, 10, 6), payment_id="p1", amount_cents=1300, method="card"),
    ev("PaymentCaptured", t(1, 10, 7), payment_id="p1", amount_cents=1300),
    ev("OrderShipped", t(2, 9), carrier="DHL", tracking_number="TRK1"),
    ev("OrderDelivered", t(3, 9)),
    ev("RefundIssued", t(4, 9), amount_cents=300, reason="bruised apple"),
    ev("CustomerNoteAdded", t(4, 10), author="ops", note="refunded"),
]
O2 = [
    ev("OrderCreated", t(1, 11), **CREATED_C1),
    ev("ItemAdded", t(1, 11, 1), sku="C", product_name="Cheese", quantity=1, unit_price_cents=700),
    ev("PaymentFailed", t(1, 11, 2), payment_id="p9", reason="declined"),
    ev("OrderCancelled", t(1, 12), reason="no payment"),
]
O3 = [
    ev(
        "OrderCreated",
        t(2, 8),
        customer_id="c2",
        customer_name="Bo",
        customer_email="bo@x.org",
        currency="USD",
        channel="app",
    ),
    ev("ItemAdded", t(2, 8, 1), sku="A", product_name="Apple", quantity=4, unit_price_cents=250),
    ev("PaymentAuthorized", t(2, 8, 2), payment_id="p2", amount_cents=1000, method="paypal"),
    ev("PaymentCaptured", t(2, 8, 3), payment_id="p2", amount_cents=1000),
]


@pytest.fixture
def built(lake: Path) -> Iterator[tuple[EventLog, duckdb.DuckDBPyConnection]]:
    log = open_log(lake)
    log.append("o1", O1)
    log.append("o2", O2)
    log.append("o3", O3)
    catch_up(log)
    con = connect(log)
    yield log, con
    con.close()
    log.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_order_events_one_typed_row_per_event_with_audit_trail(built: Any) -> None:
    _, con = built
    got = rows(con, "SELECT * FROM analytics.order_events ORDER BY position")
    assert len(got) == len(O1) + len(O2) + len(O3)
    added = got[1]
    assert added["order_id"] == "o1" and added["version"] == 2
    assert added["event_type"] == "ItemAdded"
    assert (added["sku"], added["product_name"], added["quantity"], added["unit_price_cents"]) == (
        "A",
        "Apple",
        2,
        500,
    )
    assert added["occurred_at"] == t(1, 10, 1)
    assert added["customer_id"] is None and added["amount_cents"] is None
    assert (added["actor"], added["command_id"], added["correlation_id"]) == (
        "alice",
        "cmd-ItemAdded-011001",
        "c-1",
    )
    assert added["causation_id"] is None
    assert got[0]["customer_email"] == "ann@x.org"
    assert [r["position"] for r in got] == list(range(1, len(got) + 1))


def test_orders_current_state_with_lifecycle_times(built: Any) -> None:
    _, con = built
    by_id = {r["order_id"]: r for r in rows(con, "SELECT * FROM analytics.orders")}
    o1 = by_id["o1"]
    assert {
        k: o1[k]
        for k in (
            "customer_id",
            "currency",
            "status",
            "item_count",
            "subtotal_cents",
            "discount_cents",
            "total_cents",
            "authorized_cents",
            "captured_cents",
            "refunded_cents",
            "payment_failures",
            "shipping_city",
            "shipping_country",
            "carrier",
            "note_count",
            "version",
            "last_event_type",
        )
    } == {
        "customer_id": "c1",
        "currency": "EUR",
        "status": "delivered",
        "item_count": 2,
        "subtotal_cents": 1500,
        "discount_cents": 200,
        "total_cents": 1300,
        "authorized_cents": 1300,
        "captured_cents": 1300,
        "refunded_cents": 300,
        "payment_failures": 0,
        "shipping_city": "Lyon",
        "shipping_country": "FR",
        "carrier": "DHL",
        "note_count": 1,
        "version": 12,
        "last_event_type": "CustomerNoteAdded",
    }
    assert (o1["created_at"], o1["paid_at"], o1["shipped_at"], o1["delivered_at"]) == (
        t(1, 10),
        t(1, 10, 7),
        t(2, 9),
        t(3, 9),
    )
    assert o1["cancelled_at"] is None
    o2 = by_id["o2"]
    assert (o2["status"], o2["payment_failures"], o2["cancelled_at"], o2["paid_at"]) == (
        "cancelled",
        1,
        t(1, 12),
        None,
    )
    assert (by_id["o3"]["status"], by_id["o3"]["paid_at"]) == ("paid", t(2, 8, 3))


def test_order_lines_as_the_cart_stands(built: Any) -> None:
    _, con = built
    got = con.execute(
        "SELECT order_id, sku, product_name, quantity, unit_price_cents, line_total_cents "
        "FROM analytics.order_lines ORDER BY order_id, sku"
    ).fetchall()
    assert got == [
        ("o1", "A", "Apple", 1, 500, 500),
        ("o1", "B", "Bread", 1, 1000, 1000),
        ("o2", "C", "Cheese", 1, 700, 700),
        ("o3", "A", "Apple", 4, 250, 1000),
    ]


def test_payments_one_row_per_payment(built: Any) -> None:
    _, con = built
    got = con.execute(
        "SELECT order_id, payment_id, currency, method, authorized_cents, captured_cents, "
        "failed, failure_reason, captured_at FROM analytics.payments ORDER BY order_id"
    ).fetchall()
    assert got == [
        ("o1", "p1", "EUR", "card", 1300, 1300, False, None, t(1, 10, 7)),
        ("o2", "p9", "EUR", None, 0, 0, True, "declined", None),
        ("o3", "p2", "USD", "paypal", 1000, 1000, False, None, t(2, 8, 3)),
    ]


def test_daily_sales_per_day_and_currency(built: Any) -> None:
    _, con = built
    got = con.execute(
        "SELECT day, currency, orders_created, orders_paid, orders_cancelled, "
        "gross_revenue_cents, refunds_cents, net_revenue_cents, average_order_value_cents "
        "FROM analytics.daily_sales ORDER BY day, currency"
    ).fetchall()
    assert got == [
        (date(2026, 3, 1), "EUR", 2, 1, 1, 1300, 0, 1300, 1300),
        (date(2026, 3, 2), "USD", 1, 1, 0, 1000, 0, 1000, 1000),
        (date(2026, 3, 4), "EUR", 0, 0, 0, 0, 300, -300, None),
    ]


def test_customers_lifetime_value_and_refund_rate(built: Any) -> None:
    _, con = built
    got = rows(con, "SELECT * FROM analytics.customers ORDER BY customer_id")
    assert got == [
        {
            "customer_id": "c1",
            "currency": "EUR",
            "customer_name": "Ann",
            "customer_email": "ann@x.org",
            "orders": 2,
            "orders_paid": 1,
            "orders_cancelled": 1,
            "captured_cents": 1300,
            "refunded_cents": 300,
            "lifetime_value_cents": 1000,
            "refund_rate": pytest.approx(300 / 1300),
            "first_order_at": t(1, 10),
            "last_order_at": t(1, 11),
        },
        {
            "customer_id": "c2",
            "currency": "USD",
            "customer_name": "Bo",
            "customer_email": "bo@x.org",
            "orders": 1,
            "orders_paid": 1,
            "orders_cancelled": 0,
            "captured_cents": 1000,
            "refunded_cents": 0,
            "lifetime_value_cents": 1000,
            "refund_rate": 0.0,
            "first_order_at": t(2, 8),
            "last_order_at": t(2, 8),
        },
    ]


def test_back_dated_event_lands_on_its_own_day_incrementally(built: Any) -> None:
    log, con = built
    # Recorded now, it happened on March 1st: a second refund for o3 and a removed item.
    log.append("o3", [ev("RefundIssued", t(1, 9), amount_cents=100, reason="late claim")])
    log.append("o1", [ev("CustomerNoteAdded", t(1, 9, 30), author="ops", note="early note")])
    con.close()
    reports = {r.name: r for r in catch_up(log)}
    assert reports["orders"].events_applied == 2 and reports["orders"].lag_events == 0
    con = connect(log)
    try:
        day1 = con.execute(
            "SELECT currency, refunds_cents, net_revenue_cents FROM analytics.daily_sales "
            "WHERE day = DATE '2026-03-01' ORDER BY currency"
        ).fetchall()
        assert day1 == [("EUR", 0, 1300), ("USD", 100, -100)]
        o1 = con.execute(
            "SELECT note_count, version, last_event_type FROM analytics.orders "
            "WHERE order_id = 'o1'"
        ).fetchone()
        # The back-dated note folds before the others: the last event is still the March 4 note.
        assert o1 == (2, 13, "CustomerNoteAdded")
        c2 = con.execute(
            "SELECT refunded_cents, lifetime_value_cents FROM analytics.customers "
            "WHERE customer_id = 'c2'"
        ).fetchone()
        assert c2 == (100, 900)
    finally:
        con.close()
