"""Invariant 7: a reader during a rebuild sees the old complete table, then the new one."""

from __future__ import annotations

import threading
from pathlib import Path

from projections.runner import catch_up, rebuild
from projections.warehouse import checkpoints, connect
from tests.support.histories import T0, RawEvent, append_commit, open_log

EXPECTED = "SELECT count(*), sum(total_cents), sum(version) FROM analytics.orders"
STATES = "SELECT count(*) FROM temporal.order_states"


def _history(orders: int) -> list[RawEvent]:
    events = []
    for i in range(orders):
        oid = f"o-{i}"
        events.append(
            RawEvent(
                oid,
                "OrderCreated",
                {
                    "customer_id": f"c{i % 7}",
                    "customer_name": "N",
                    "customer_email": "e@x",
                    "currency": "EUR",
                    "channel": "web",
                },
                T0,
            )
        )
        events.append(
            RawEvent(
                oid,
                "ItemAdded",
                {
                    "sku": "A",
                    "product_name": "P",
                    "quantity": 1 + i % 3,
                    "unit_price_cents": 100 + i,
                },
                T0,
            )
        )
    return events


def test_reader_never_sees_an_empty_or_partial_table_during_rebuild(lake: Path) -> None:
    log = open_log(lake)
    append_commit(log, _history(1500))
    con = connect(log)
    catch_up(log, con)
    expected = con.execute(EXPECTED).fetchone()
    expected_states = con.execute(STATES).fetchone()
    assert expected is not None and expected[0] == 1500

    seen: list[tuple[object, ...]] = []
    tables: set[str] = set()
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        reader = con.cursor()  # same database, own connection: snapshot isolation
        try:
            while not stop.is_set():
                seen.append(reader.execute(EXPECTED).fetchone() + reader.execute(STATES).fetchone())
                row = reader.execute(
                    "SELECT table_name FROM meta.checkpoints WHERE name = 'orders'"
                ).fetchone()
                tables.add(row[0])
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(3):
            rebuild(log, con)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert len(seen) > 3
    assert all(s == (*expected, *expected_states) for s in seen), set(seen)
    assert len(tables) >= 2, "the reader should have watched at least one switch"
    assert checkpoints(con)["orders"].table_name == "builds.orders__4"
    leftovers = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'orders__%'"
    ).fetchall()
    assert leftovers == [("orders__4",)]
    con.close()
    log.close()
