"""The fold's cart lines and payments, held to ``evolve`` and to set-based SQL.

``projections.fold_lines`` computes ``analytics.order_lines`` and ``analytics.payments``
from the fold's sorted rows. Two independent references check it on random histories
(back-dated events, ties in ``occurred_at``, removals of more than a line holds,
captures and failures of unknown payments) and on any prefix of them:

- ``evolve``'s final state: every line's sku, product name, quantity and unit price,
  every payment's amounts and failed flag;
- the window and aggregate SQL the projections ran before the fold computed them: every
  column, times, method and failure reason included.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from projections.fold import fold_orders
from projections.fold_arrays import small_pages
from projections.fold_lines import LINES_SCHEMA, PAYMENTS_SCHEMA
from tests.support.fold_input import evolved, fold_rows, fold_table
from tests.support.histories import T0, RawEvent, histories

# The reference statements, over ``e`` (the events), as the projections once ran them.
LINES_SQL = """
SELECT order_id, sku, product_name, quantity, unit_price_cents,
       quantity * unit_price_cents AS line_total_cents, first_added_at, last_changed_at
FROM (
    SELECT
        order_id, sku,
        arg_max(qsum, n) - least(0, min(qsum)) AS quantity,
        arg_max(product_name, n) FILTER (WHERE event_type = 'ItemAdded') AS product_name,
        arg_max(unit_price_cents, n) FILTER (WHERE event_type = 'ItemAdded') AS unit_price_cents,
        min(occurred_at) FILTER (WHERE event_type = 'ItemAdded') AS first_added_at,
        max(occurred_at) AS last_changed_at
    FROM (
        SELECT *,
            sum(CASE event_type WHEN 'ItemAdded' THEN quantity ELSE -quantity END) OVER ws AS qsum,
            row_number() OVER ws AS n
        FROM e
        WHERE event_type IN ('ItemAdded', 'ItemRemoved')
        WINDOW ws AS (PARTITION BY order_id, sku ORDER BY occurred_at, version
                      ROWS UNBOUNDED PRECEDING)
    )
    GROUP BY order_id, sku
)
WHERE quantity > 0
"""

PAYMENTS_SQL = """
SELECT
    p.order_id, p.payment_id, coalesce(c.currency, '') AS currency,
    arg_max(p.method, (p.occurred_at, p.version)) FILTER (WHERE p.event_type = 'PaymentAuthorized')
        AS method,
    coalesce(sum(p.amount_cents) FILTER (WHERE p.event_type = 'PaymentAuthorized'), 0)
        AS authorized_cents,
    coalesce(sum(p.amount_cents) FILTER (WHERE p.event_type = 'PaymentCaptured'), 0)
        AS captured_cents,
    bool_or(p.event_type = 'PaymentFailed') AS failed,
    arg_max(p.reason, (p.occurred_at, p.version)) FILTER (WHERE p.event_type = 'PaymentFailed')
        AS failure_reason,
    min(p.occurred_at) FILTER (WHERE p.event_type = 'PaymentAuthorized') AS authorized_at,
    max(p.occurred_at) FILTER (WHERE p.event_type = 'PaymentCaptured') AS captured_at,
    min(p.occurred_at) FILTER (WHERE p.event_type = 'PaymentFailed') AS failed_at
FROM e AS p
LEFT JOIN (
    SELECT order_id, arg_max(currency, (occurred_at, version)) AS currency
    FROM e WHERE event_type = 'OrderCreated' GROUP BY order_id
) AS c USING (order_id)
WHERE p.event_type IN ('PaymentAuthorized', 'PaymentCaptured', 'PaymentFailed')
GROUP BY p.order_id, p.payment_id, c.currency
"""


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: repr(sorted(r.items())))


def _sql(events: pa.Table, select: str) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("e", events)
    got = con.sql(select).to_arrow_table().to_pylist()
    con.close()
    return _sorted(got)


def _assert_lines_and_payments(rows: list[dict[str, Any]]) -> None:
    events = fold_table(rows, lines=True)
    folded = fold_orders(events, lines=True, pieces=1)
    assert folded.lines is not None and folded.payments is not None
    assert folded.lines.schema == LINES_SCHEMA
    assert folded.payments.schema == PAYMENTS_SCHEMA
    lines = _sorted(folded.lines.to_pylist())
    payments = _sorted(folded.payments.to_pylist())

    final = {state.order_id: state for state in evolved(rows)}  # the last state wins
    assert sorted(
        (r["order_id"], r["sku"], r["product_name"], r["quantity"], r["unit_price_cents"])
        for r in lines
    ) == sorted(
        (oid, ln.sku, ln.product_name, ln.quantity, ln.unit_price_cents)
        for oid, state in final.items()
        for ln in state.lines
    )
    assert sorted(
        (r["order_id"], r["payment_id"], r["authorized_cents"], r["captured_cents"], r["failed"])
        for r in payments
    ) == sorted(
        (oid, p.payment_id, p.authorized_cents, p.captured_cents, p.failed)
        for oid, state in final.items()
        for p in state.payments
    )

    assert lines == _sql(events, LINES_SQL)
    assert payments == _sql(events, PAYMENTS_SQL)

    # folded in pieces (ranges of order ids, in threads) the rows are the same, in order
    pieces = fold_orders(events, lines=True, pieces=2)
    assert pieces.lines is not None and pieces.lines.equals(folded.lines)
    assert pieces.payments is not None and pieces.payments.equals(folded.payments)


def _ev(order_id: str, event_type: str, minute: int, **payload: Any) -> RawEvent:
    return RawEvent(order_id, event_type, payload, T0 + timedelta(minutes=minute))


def _added(minute: int, quantity: int, name: str = "P", price: int = 100) -> RawEvent:
    return _ev(
        "o-1",
        "ItemAdded",
        minute,
        sku="A",
        product_name=name,
        quantity=quantity,
        unit_price_cents=price,
    )


# A removal of more than the line holds empties it; the next add starts from zero, at
# the new name and price.
OVER_REMOVED = [
    [_added(1, 2), _ev("o-1", "ItemRemoved", 2, sku="A", quantity=3)],
    [_added(3, 1, "P v2", 120)],
]
# A removal back-dated before the line's first add does not reduce it.
REMOVED_FIRST = [[_added(5, 2)], [_ev("o-1", "ItemRemoved", 1, sku="A", quantity=1)]]
# A payment failed, then authorized and captured: the latest method and reason count.
PAYMENT_STORY = [
    [
        _ev("o-1", "PaymentFailed", 1, payment_id="p1", reason="declined"),
        _ev("o-1", "PaymentAuthorized", 2, payment_id="p1", amount_cents=50, method="card"),
        _ev("o-1", "PaymentCaptured", 3, payment_id="p1", amount_cents=20),
        _ev("o-1", "PaymentCaptured", 4, payment_id="p1", amount_cents=30),
    ],
    [
        _ev("o-1", "PaymentAuthorized", 0, payment_id="p1", amount_cents=5, method="paypal"),
        _ev("o-1", "PaymentFailed", 6, payment_id="p1", reason="expired"),
        _ev("o-1", "PaymentCaptured", 7, payment_id="p2", amount_cents=9),
    ],
]


@pytest.mark.parametrize("history", [OVER_REMOVED, REMOVED_FIRST, PAYMENT_STORY])
def test_edge_cases_agree(history: list[list[RawEvent]]) -> None:
    _assert_lines_and_payments(fold_rows(history))


def test_a_line_over_removed_starts_again_from_zero() -> None:
    events = fold_table(fold_rows(OVER_REMOVED), lines=True)
    lines = fold_orders(events, lines=True).lines
    assert lines is not None
    (line,) = lines.to_pylist()
    assert (line["quantity"], line["product_name"], line["line_total_cents"]) == (1, "P v2", 120)
    assert line["first_added_at"] == T0 + timedelta(minutes=1)
    assert line["last_changed_at"] == T0 + timedelta(minutes=3)


def test_a_payment_keeps_its_latest_method_and_reason() -> None:
    events = fold_table(fold_rows(PAYMENT_STORY), lines=True)
    payments = fold_orders(events, lines=True).payments
    assert payments is not None
    p1, p2 = sorted(payments.to_pylist(), key=lambda r: r["payment_id"])
    assert (p1["method"], p1["failure_reason"], p1["failed"]) == ("card", "expired", True)
    assert (p1["authorized_cents"], p1["captured_cents"]) == (55, 50)
    assert p1["authorized_at"] == T0 and p1["failed_at"] == T0 + timedelta(minutes=1)
    assert p1["captured_at"] == T0 + timedelta(minutes=4)
    assert (p2["method"], p2["authorized_cents"], p2["captured_cents"]) == (None, 0, 9)


def test_no_items_and_no_payments_give_empty_tables() -> None:
    rows = fold_rows([[_ev("o-1", "CustomerNoteAdded", 0, author="a", note="n")]])
    folded = fold_orders(fold_table(rows, lines=True), lines=True)
    assert folded.lines is not None and folded.lines.num_rows == 0
    assert folded.payments is not None and folded.payments.num_rows == 0
    assert fold_orders(fold_table(rows)).lines is None  # not asked for


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@example(history=OVER_REMOVED, split=1.0)
@example(history=PAYMENT_STORY, split=0.5)
@given(history=histories(), split=st.floats(0, 1))
def test_lines_and_payments_agree_with_evolve_and_sql_on_any_prefix(
    history: list[list[RawEvent]], split: float
) -> None:
    rows = fold_rows(history)
    _assert_lines_and_payments(rows)
    _assert_lines_and_payments(rows[: round(len(rows) * split)])


def test_the_fold_turns_numpys_huge_page_hint_off_and_back() -> None:
    hint = getattr(np._core.multiarray, "_set_madvise_hugepage", None)
    if hint is None:
        pytest.skip("this numpy has no huge-page hint")
    before = hint(True)
    try:
        with small_pages():
            assert hint(False) is False  # off while the fold runs
        assert hint(True) is True  # and as it was afterwards
        events = fold_table(fold_rows(OVER_REMOVED), lines=True)
        fold_orders(events, lines=True)
        assert hint(True) is True
    finally:
        hint(before)
