"""Invariant 5 on random histories: catch-up in any batch split = full rebuild = Python fold."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.orders.decider import PUBLIC_FIELDS
from projections.plan import PROJECTIONS
from projections.runner import catch_up, rebuild
from projections.temporal import orders_as_of, state_as_of
from projections.warehouse import connect
from tests.support.histories import (
    ORDER_IDS,
    RECORDED_T0,
    T0,
    RawEvent,
    append_commit,
    histories,
    open_log,
    reference_final,
    reference_states,
    rows_by_order,
)

ORDER_FIELDS = ", ".join(PUBLIC_FIELDS)


def _all_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        p.name: sorted(con.execute(f"SELECT * FROM {p.view}").fetchall(), key=lambda r: repr(r))
        for p in PROJECTIONS
    }


times = st.integers(-2, 52 * 2).map(lambda n: T0 + timedelta(minutes=30 * n))


# Each example builds real DuckDB files (about 0.8 s): 60 of them take under a minute.
# Shrinking runs only after a failure; it takes minutes then, and returns the smallest
# history that fails, which is worth the wait.
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=histories(), data=st.data())
def test_any_batch_split_equals_rebuild_equals_reference_fold(
    history: list[list[RawEvent]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = open_log(root / "lake")
        con = connect(log)
        try:
            for commit in history:
                append_commit(log, commit)
                if data.draw(st.booleans(), label="catch up now"):
                    size = data.draw(st.integers(1, 7), label="batch size")
                    catch_up(log, con, batch_size=size)
            catch_up(log, con, batch_size=data.draw(st.integers(1, 50), label="last batch"))
            split = _all_tables(con)

            got = rows_by_order(con, f"SELECT {ORDER_FIELDS} FROM analytics.orders")
            assert got == reference_states(log)

            final = reference_final(log)
            lines = con.execute(
                "SELECT order_id, sku, product_name, quantity, unit_price_cents "
                "FROM analytics.order_lines"
            ).fetchall()
            assert sorted(lines) == sorted(
                (oid, ln.sku, ln.product_name, ln.quantity, ln.unit_price_cents)
                for oid, st_ in final.items()
                for ln in st_.lines
            )
            payments = con.execute(
                "SELECT order_id, payment_id, authorized_cents, captured_cents, failed "
                "FROM analytics.payments"
            ).fetchall()
            assert sorted(payments) == sorted(
                (oid, p.payment_id, p.authorized_cents, p.captured_cents, p.failed)
                for oid, st_ in final.items()
                for p in st_.payments
            )

            full = duckdb.connect(str(root / "full.duckdb"))
            catch_up(log, full)
            assert _all_tables(full) == split
            full.close()

            rebuild(log, con)
            assert _all_tables(con) == split

            for _ in range(4):
                at: datetime = data.draw(times, label="as of")
                known: datetime | None = data.draw(
                    st.none()
                    | st.integers(-1, len(history) + 1).map(
                        lambda h: RECORDED_T0 + timedelta(hours=h)
                    ),
                    label="known at",
                )
                expected = reference_states(log, at, known)
                for oid in ORDER_IDS:
                    assert state_as_of(con, oid, at, known) == expected.get(oid), (oid, at, known)
                table = orders_as_of(con, at, known).to_pylist()
                assert {r["order_id"]: {f: r[f] for f in PUBLIC_FIELDS} for r in table} == expected
        finally:
            con.close()
            log.close()
