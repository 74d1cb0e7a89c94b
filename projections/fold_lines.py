"""Cart lines and payments of the numpy Order fold: ``analytics.order_lines`` and
``analytics.payments`` taken from the same sorted rows as the order state.

Both group some events of each order by a key (a line's sku, a payment's id) and read
each group in (occurred_at, version) order, as ``evolve`` applies them:

- a cart line's quantity is the running sum of its adds and removals, clamped at zero
  (a removal of more than the line holds empties it); its product name and unit price
  are those of its latest ``ItemAdded``; a line at zero is not in the cart;
- a payment sums its authorized and captured amounts, is failed once any failure is
  recorded, and keeps the method of its latest authorization and the reason of its
  latest failure; its currency is the order's.

The property tests (``tests/projections/test_fold_lines.py``) hold both tables to
``evolve`` and to a set-based SQL statement of each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from projections.fold_arrays import (
    ADDED,
    AUTHORIZED,
    CAPTURED,
    FAILED,
    REMOVED,
    TIMESTAMP,
    Segments,
    Take,
    ranked_codes,
    run_starts,
    times,
)

CART_COLUMNS = ("product_name", "payment_id", "method", "reason")
"""The event columns only the cart lines and payments read (besides the state's)."""

LINES_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("sku", pa.string()),
        ("product_name", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price_cents", pa.int64()),
        ("line_total_cents", pa.int64()),
        ("first_added_at", TIMESTAMP),
        ("last_changed_at", TIMESTAMP),
    ]
)
PAYMENTS_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("payment_id", pa.string()),
        ("currency", pa.string()),
        ("method", pa.string()),
        ("authorized_cents", pa.int64()),
        ("captured_cents", pa.int64()),
        ("failed", pa.bool_()),
        ("failure_reason", pa.string()),
        ("authorized_at", TIMESTAMP),
        ("captured_at", TIMESTAMP),
        ("failed_at", TIMESTAMP),
    ]
)


@dataclass(frozen=True, slots=True)
class Cart:
    """The item events of sorted rows, grouped by cart line (order, sku), in time order.

    ``rows``: their sorted-row indices, line after line; ``lines``: the runs of ``rows``
    that are one line; ``quantity``: the line's quantity after each row; ``added``:
    whether the row is an ``ItemAdded``; ``last_add``: the latest ``ItemAdded`` of the
    line up to the row (an index into ``rows``), or -1.
    """

    rows: np.ndarray
    lines: Segments
    quantity: np.ndarray
    added: np.ndarray
    last_add: np.ndarray


def cart(kind: np.ndarray, quantity: np.ndarray, orders: Segments, take: Take) -> Cart | None:
    """The cart lines of sorted rows (``kind``, ``quantity`` sorted), or None without items."""
    items = np.flatnonzero((kind == ADDED) | (kind == REMOVED))
    if not len(items):
        return None
    sku, _ = ranked_codes(take("sku", items))
    by_line = np.lexsort((items, sku, orders.run[items]))
    rows = items[by_line]
    lines = Segments(run_starts(orders.run[rows], sku[by_line]))
    added = kind[rows] == ADDED
    running = lines.cumsum(np.where(added, quantity[rows], -quantity[rows]))
    clamped = running - np.minimum(lines.cummin(running), 0)
    return Cart(rows, lines, clamped, added, lines.last_index(added))


def _at(rows: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Sorted-row indices of ``rows[index]``, -1 where index is -1."""
    return np.where(index < 0, -1, rows[np.maximum(index, 0)]) if len(rows) else index


def lines_table(
    found: Cart | None, price: np.ndarray, occurred: np.ndarray, take: Take
) -> pa.Table:
    """One row per cart line still in the cart (``LINES_SCHEMA``)."""
    if found is None:
        return LINES_SCHEMA.empty_table()
    rows, lines = found.rows, found.lines
    quantity = found.quantity[lines.last]
    add = found.last_add[lines.last]
    keep = (quantity > 0) & (add >= 0)  # a line with no ItemAdded always ends at zero
    last, add, quantity = rows[lines.last[keep]], rows[add[keep]], quantity[keep]
    first_add = _at(rows, lines.first_in_run(found.added)[keep])
    return pa.table(
        {
            "order_id": take("order_id", last),
            "sku": take("sku", last),
            "product_name": take("product_name", add),
            "quantity": quantity,
            "unit_price_cents": price[add],
            "line_total_cents": quantity * price[add],
            "first_added_at": times(occurred, first_add),
            "last_changed_at": times(occurred, last),
        },
        schema=LINES_SCHEMA,
    )


def payments_table(
    kind: np.ndarray,
    amount: np.ndarray,
    occurred: np.ndarray,
    orders: Segments,
    currency: pa.Array,
    take: Take,
) -> pa.Table:
    """One row per payment id of each order (``PAYMENTS_SCHEMA``); ``currency`` is each
    order's, in the order of ``orders``' runs."""
    pay = np.flatnonzero((kind == AUTHORIZED) | (kind == CAPTURED) | (kind == FAILED))
    if not len(pay):
        return PAYMENTS_SCHEMA.empty_table()
    ids, _ = ranked_codes(take("payment_id", pay))
    by_payment = np.lexsort((pay, ids, orders.run[pay]))
    rows = pay[by_payment]
    payments = Segments(run_starts(orders.run[rows], ids[by_payment]))
    k, first = kind[rows], payments.first

    def latest(of: int) -> np.ndarray:
        return _at(rows, payments.last_index(k == of)[payments.last])

    def earliest(of: int) -> np.ndarray:
        return _at(rows, payments.first_in_run(k == of))

    def total(of: int) -> np.ndarray:
        return np.asarray(np.add.reduceat(np.where(k == of, amount[rows], 0), first))

    return pa.table(
        {
            "order_id": take("order_id", rows[first]),
            "payment_id": take("payment_id", rows[first]),
            "currency": pc.take(currency, pa.array(orders.run[rows[first]])),
            "method": take("method", latest(AUTHORIZED)),
            "authorized_cents": total(AUTHORIZED),
            "captured_cents": total(CAPTURED),
            "failed": np.logical_or.reduceat(k == FAILED, first),
            "failure_reason": take("reason", latest(FAILED)),
            "authorized_at": times(occurred, earliest(AUTHORIZED)),
            "captured_at": times(occurred, latest(CAPTURED)),
            "failed_at": times(occurred, earliest(FAILED)),
        },
        schema=PAYMENTS_SCHEMA,
    )
