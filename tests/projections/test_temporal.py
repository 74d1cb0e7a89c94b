"""temporal.order_states, the orders_as_of macros and state_as_of, back-dated events included."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from eventlog.errors import InvalidInputError
from projections.runner import catch_up
from projections.temporal import orders_as_of, state_as_of
from projections.warehouse import connect
from tests.projections.test_tables import CREATED_C1, ev, t
from tests.support.histories import open_log

NASTY = "o'1\"; DROP TABLE temporal.order_states; --"


def _lake(lake: Path) -> None:
    log = open_log(lake)
    # recorded at RECORDED_T0: created, one apple; RECORDED_T0+1h: paid.
    log.append(
        NASTY,
        [
            ev("OrderCreated", t(1, 10), **CREATED_C1),
            ev(
                "ItemAdded",
                t(1, 11),
                sku="A",
                product_name="Apple",
                quantity=1,
                unit_price_cents=500,
            ),
        ],
    )
    log.append(NASTY, [ev("CustomerNoteAdded", t(1, 12), author="a", note="n")])
    # recorded at RECORDED_T0+2h, but it happened at 10:30: a back-dated second apple
    log.append(
        NASTY,
        [
            ev(
                "ItemAdded",
                t(1, 10, 30),
                sku="A",
                product_name="Apple",
                quantity=1,
                unit_price_cents=500,
            ),
        ],
    )
    catch_up(log)
    log.close()


def test_order_states_valid_time_history(lake: Path) -> None:
    _lake(lake)
    con = connect(lake, read_only=True)
    got = con.execute(
        "SELECT valid_from, valid_to, item_count, version, last_event_type "
        "FROM temporal.order_states WHERE order_id = $id ORDER BY valid_from",
        {"id": NASTY},
    ).fetchall()
    assert got == [
        (t(1, 10), t(1, 10, 30), 0, 1, "OrderCreated"),
        (t(1, 10, 30), t(1, 11), 1, 2, "ItemAdded"),
        (t(1, 11), t(1, 12), 2, 3, "ItemAdded"),
        (t(1, 12), None, 2, 4, "CustomerNoteAdded"),
    ]
    con.close()


def test_state_as_of_and_known_at_with_a_back_dated_event(lake: Path) -> None:
    _lake(lake)
    con = connect(lake, read_only=True)
    assert state_as_of(con, NASTY, t(1, 9)) is None
    assert state_as_of(con, NASTY, t(1, 10, 45))["item_count"] == 1  # type: ignore[index]
    recorded = [
        r[0]
        for r in con.execute(
            "SELECT recorded_at FROM analytics.order_events ORDER BY position"
        ).fetchall()
    ]
    first, note, late = recorded[0], recorded[2], recorded[3]
    assert first < note < late
    # What we knew when the note was recorded about 10:45: the back-dated apple was not
    # recorded yet, so the order was created and had no items.
    before = state_as_of(con, NASTY, t(1, 10, 45), note)
    assert before is not None and (before["item_count"], before["version"]) == (0, 1)
    after = state_as_of(con, NASTY, "2026-03-01T10:45:00Z", late)
    assert after is not None and (after["item_count"], after["version"]) == (1, 2)
    assert state_as_of(con, NASTY, t(1, 12), first - timedelta(microseconds=1)) is None
    now = state_as_of(lake, NASTY, t(2, 0))
    assert now is not None and now["order_id"] == NASTY and now["subtotal_cents"] == 1000
    assert state_as_of(con, "no-such-order", t(2, 0)) is None
    con.close()


def test_orders_as_of_macros(lake: Path) -> None:
    _lake(lake)
    con = connect(lake, read_only=True)
    [row] = orders_as_of(con, t(1, 11, 30)).to_pylist()
    assert (row["order_id"], row["item_count"], row["valid_from"]) == (NASTY, 2, t(1, 11))
    first = con.execute("SELECT min(recorded_at) FROM analytics.order_events").fetchall()[0][0]
    [known] = orders_as_of(con, t(1, 11, 30), first).to_pylist()
    assert known["item_count"] == 1
    assert orders_as_of(con, t(1, 9)).num_rows == 0
    sql = con.execute(
        "SELECT item_count FROM temporal.orders_as_of($at, $known)",
        {"at": t(1, 11, 30), "known": first},
    ).fetchall()
    assert sql == [(1,)]
    con.close()


def test_bad_times_and_ids_are_bad_input(lake: Path) -> None:
    _lake(lake)
    con = connect(lake, read_only=True)
    with pytest.raises(InvalidInputError, match="as-of time: cannot parse time 'noon'"):
        state_as_of(con, NASTY, "noon")
    with pytest.raises(InvalidInputError, match="no timezone"):
        state_as_of(con, NASTY, "2026-03-01T10:00:00")
    with pytest.raises(InvalidInputError, match="known-at time"):
        state_as_of(con, NASTY, t(1, 10), "later")
    with pytest.raises(InvalidInputError, match="must not contain"):
        state_as_of(con, "a/b", t(1, 10))
    assert con.execute("SELECT count(*) FROM temporal.order_states").fetchone() == (4,)
    con.close()
