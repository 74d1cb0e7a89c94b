"""One fold, three implementations: ``evolve``, ``sql/fold.sql`` and the numpy ``fold_states``.

On random histories (back-dated events, ties in ``occurred_at``, events in any order of
types) and on any prefix of the log (the events known at a split), the state after each
event agrees field by field in all three, on every column of the one state definition
(``projections.order_state``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from eventlog.orders.decider import PUBLIC_FIELDS
from projections.fold import ORDER_COLUMNS, fold_orders, fold_states
from projections.order_state import STATE_COLUMNS, STATE_FIELDS, STATE_SELECT, state_column_ddl
from projections.projection import fold_query
from tests.support.fold_input import decoded, evolved, fold_rows, fold_table
from tests.support.histories import T0, RawEvent, histories


def _by_state(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["order_id"], r["version"]): {f: r[f] for f in STATE_FIELDS} for r in rows}


def _evolve_states(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The reference: evolve over each order's events in (occurred_at, version) order."""
    return {
        (state.order_id, state.version): {f: getattr(state, f) for f in STATE_FIELDS}
        for state in evolved(rows)
    }


def _sql_states(events: pa.Table) -> dict[tuple[str, int], dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events", events)
    sql = fold_query("SELECT * FROM events", f"SELECT {STATE_SELECT} FROM states")
    got = con.sql(sql).to_arrow_table().to_pylist()
    con.close()
    return _by_state(got)


def _numpy_states(events: pa.Table) -> dict[tuple[str, int], dict[str, Any]]:
    return _by_state(fold_states(events).to_pylist())


def _assert_three_agree(rows: list[dict[str, Any]]) -> None:
    expected = _evolve_states(rows)
    events = fold_table(rows)
    numpy_states = _numpy_states(events)
    sql_states = _sql_states(events)
    assert set(numpy_states) == set(sql_states) == set(expected)
    for key, want in expected.items():
        for name in STATE_FIELDS:  # field by field, so a failure names the field
            assert numpy_states[key][name] == want[name], ("numpy", key, name)
            assert sql_states[key][name] == want[name], ("sql", key, name)
    # folded in pieces (ranges of order ids, in threads) the rows are the same, in order
    for last_only in (False, True):
        whole = decoded(fold_states(events, last_only=last_only, pieces=1))
        assert decoded(fold_states(events, last_only=last_only, pieces=2)).equals(whole)
    _assert_last_states(events)


# the order-level columns sql/fold.sql also computes (per state; the last one counts)
_SQL_ORDER_COLUMNS = (
    "customer_name",
    "customer_email",
    "channel",
    "tracking_number",
    "created_at",
    "shipped_at",
    "delivered_at",
    "cancelled_at",
)


def _assert_last_states(events: pa.Table) -> None:
    """``Folded.last`` is each order's final state (every state's row with no valid_to),
    and its order-level columns, taken at the last rows alone, agree with the SQL fold's
    last state and with the order's largest recorded time and position."""
    folded = fold_orders(events, pieces=1)
    assert folded.every is not None and not set(ORDER_COLUMNS) & set(folded.every.schema.names)
    every = folded.every.to_pylist()
    last = {r["order_id"]: r for r in folded.last.to_pylist()}
    assert set(last) == {r["order_id"] for r in every}
    for row in every:
        if row["valid_to"] is None:
            assert {k: last[row["order_id"]][k] for k in row} == row
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events", events)
    columns = ", ".join(("order_id", *_SQL_ORDER_COLUMNS))
    sql = fold_query("SELECT * FROM events", f"SELECT {columns} FROM states WHERE valid_to IS NULL")
    for want in con.sql(sql).to_arrow_table().to_pylist():
        got = last[want["order_id"]]
        for name in _SQL_ORDER_COLUMNS:
            assert got[name] == want[name], ("last", want["order_id"], name)
    rows = events.to_pylist()
    for order_id, row in last.items():
        mine = [e for e in rows if e["order_id"] == order_id]
        assert row["last_recorded_at"] == max(e["recorded_at"] for e in mine)
        assert row["last_position"] == max(e["position"] for e in mine)
    con.close()


def test_state_columns_are_the_domain_public_fields_with_their_types() -> None:
    assert STATE_FIELDS == PUBLIC_FIELDS
    types = {c.name: c.sql_type for c in STATE_COLUMNS}
    assert types["order_id"] == "VARCHAR NOT NULL"
    assert types["total_cents"] == "BIGINT NOT NULL"  # money: integer minor units
    assert types["shipping_city"] == "VARCHAR"  # none until an address is given
    assert types["last_event_type"] == "VARCHAR NOT NULL"  # a projected state follows an event
    assert "order_id" not in state_column_ddl()
    assert state_column_ddl().count(",\n") == len(PUBLIC_FIELDS) - 1


def _ev(order_id: str, event_type: str, minute: int, **payload: Any) -> RawEvent:
    return RawEvent(order_id, event_type, payload, T0 + timedelta(minutes=minute))


CREATED_EUR = {
    "customer_id": "c1",
    "customer_name": "A",
    "customer_email": "a@x",
    "currency": "EUR",
    "channel": "web",
}
# An empty order is never paid: a capture with nothing in the cart leaves it open.
EMPTY_CAPTURED = [
    [
        _ev("o-1", "OrderCreated", 0, **CREATED_EUR),
        _ev("o-1", "PaymentCaptured", 1, payment_id="p1", amount_cents=50),
    ]
]
# Money stays in the order's currency: created again (back-dated) in USD, the later one wins.
RECREATED_OTHER_CURRENCY = [
    [
        _ev("o-1", "OrderCreated", 10, **CREATED_EUR),
        _ev("o-1", "ItemAdded", 11, sku="A", product_name="P", quantity=2, unit_price_cents=100),
    ],
    [_ev("o-1", "OrderCreated", 5, **{**CREATED_EUR, "currency": "USD"})],
]


@pytest.mark.parametrize("history", [EMPTY_CAPTURED, RECREATED_OTHER_CURRENCY])
def test_edge_cases_agree(history: list[list[RawEvent]]) -> None:
    _assert_three_agree(fold_rows(history))


def test_an_empty_order_is_never_paid() -> None:
    rows = fold_rows(EMPTY_CAPTURED)
    last = _numpy_states(fold_table(rows))[("o-1", 2)]
    assert last["status"] == "open" and last["total_cents"] == 0 and last["captured_cents"] == 50


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@example(history=EMPTY_CAPTURED, split=1.0)
@example(history=RECREATED_OTHER_CURRENCY, split=0.5)
@given(history=histories(), split=st.floats(0, 1))
def test_sql_numpy_and_evolve_agree_on_every_state_of_any_prefix(
    history: list[list[RawEvent]], split: float
) -> None:
    rows = fold_rows(history)
    _assert_three_agree(rows)
    # the log as known at a split (what a catch-up sees): later events may be back-dated
    _assert_three_agree(rows[: round(len(rows) * split)])
