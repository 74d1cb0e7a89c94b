"""The Order fold, vectorized: the state after each event of each order, with numpy.

The same definition as sql/fold.sql, computed over rows sorted by
(order_id, occurred_at, version): running sums, forward fills and first occurrences
per order are O(n) array operations, several times faster than DuckDB window
functions over many small partitions. sql/fold.sql stays the definition used by the
bitemporal macro and state_as_of(known_at); the property tests hold both to evolve.
The same sorted rows also give each order's cart lines and payments
(``projections.fold_lines``), when asked for.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from projections.fold_arrays import (
    ADDED,
    ADDRESS,
    AUTHORIZED,
    CANCELLED,
    CAPTURED,
    CREATED,
    DELIVERED,
    DISCOUNT,
    FAILED,
    NOTE,
    REFUND,
    REMOVED,
    SHIPPED,
    TYPES,
    Dictionaries,
    Segments,
    ints,
    micros,
    ranked_codes,
    run_starts,
    small_pages,
    stamps,
    times,
)
from projections.fold_lines import CART_COLUMNS, cart, lines_table, payments_table

FOLD_COLUMNS = (
    "order_id",
    "version",
    "position",
    "event_type",
    "occurred_at",
    "recorded_at",
    "customer_id",
    "customer_name",
    "customer_email",
    "currency",
    "channel",
    "sku",
    "quantity",
    "unit_price_cents",
    "amount_cents",
    "city",
    "country",
    "carrier",
    "tracking_number",
)
"""The event columns the order state's fold reads."""


def fold_input(source: str, *, lines: bool = False) -> str:
    """The select of the fold's input columns from a source query (``CART_COLUMNS``
    too with ``lines``)."""
    columns = (*FOLD_COLUMNS, *CART_COLUMNS) if lines else FOLD_COLUMNS
    return f"SELECT {', '.join(columns)}\nFROM (\n{source}\n)"


PARALLEL_ROWS = 200_000
"""More events than this are folded in pieces, in threads (see ``fold_states``)."""
STATUSES = ("none", "open", "paid", "shipped", "delivered", "cancelled")
_STATUS_OF = {CREATED: 1, SHIPPED: 3, DELIVERED: 4, CANCELLED: 5}  # event kind -> STATUSES


@dataclass(frozen=True, slots=True)
class Folded:
    """The fold of a set of orders: every state, and each order's last state.

    ``every``: one row per event, the state after it (``STATE_FIELDS``, ``valid_from``,
    ``valid_to``, ``recorded_at``, ``position``), or None when only the last states were
    asked for. ``last``: one row per order, its final state with the same columns plus
    what only the current state carries (``ORDER_COLUMNS``: the customer's name and
    email, the channel, tracking number, milestone times, last recorded time and
    position). The order-level columns are taken only at the last rows: no table keeps
    them per state, and taken at every event they made up a third of the fold's output.
    The state's string columns are Arrow dictionary arrays (DuckDB reads them as
    VARCHAR; ``to_pylist`` gives the strings).
    """

    every: pa.Table | None
    last: pa.Table
    lines: pa.Table | None = None
    """The cart lines (``fold_lines.LINES_SCHEMA``), when asked for."""
    payments: pa.Table | None = None
    """The payments (``fold_lines.PAYMENTS_SCHEMA``), when asked for."""


ORDER_COLUMNS = (
    "customer_name",
    "customer_email",
    "channel",
    "tracking_number",
    "created_at",
    "paid_at",
    "shipped_at",
    "delivered_at",
    "cancelled_at",
    "last_recorded_at",
    "last_position",
)
"""The columns only ``Folded.last`` has: facts of an order's current state alone."""


def fold_orders(
    events: pa.Table, *, every: bool = True, lines: bool = False, pieces: int | None = None
) -> Folded:
    """Fold the orders of ``events`` in (occurred_at, version) order: see ``Folded``.

    ``events`` come in any order (``fold_input``'s columns; with ``lines``, which also
    gives the cart lines and payments, ``CART_COLUMNS`` too). The fold sorts row numbers, not
    rows: numeric columns are permuted as numpy arrays, and a string column is only
    taken at the rows the output needs.

    The states come out grouped by order, in order-id order. More than ``PARALLEL_ROWS``
    events are folded in ``pieces`` (default: twice the cores, at most 8) ranges of order
    ids at once, in threads: numpy and Arrow let go of the interpreter lock in their
    loops, and an order's events all fall in one range, so the pieces are independent.
    """
    with small_pages():
        return _fold_orders(events, every, lines, pieces)


class _Columns:
    """The fold's input rows, and its numeric columns as numpy arrays, taken once for
    every piece: a piece reads the rows it folds through their indices, copying none."""

    def __init__(self, events: pa.Table) -> None:
        self.events = events
        kinds = pc.index_in(events.column("event_type"), value_set=pa.array(TYPES))
        self.kind = kinds.fill_null(-1).to_numpy()
        self.version = ints(events, "version")
        self.occurred = micros(events, "occurred_at")
        self.recorded = micros(events, "recorded_at")
        self.position = np.asarray(events.column("position").to_numpy(), dtype=np.int64)
        self.quantity = ints(events, "quantity")
        self.price = ints(events, "unit_price_cents")
        self.amount = ints(events, "amount_cents")


def _fold_orders(events: pa.Table, every: bool, lines: bool, pieces: int | None) -> Folded:
    """fold_orders, with numpy's pages as ``small_pages`` sets them."""
    columns = _Columns(events.combine_chunks())
    n = columns.events.num_rows
    # codes ranked by order id, so the states come out grouped in order-id order: the
    # tables written from them then keep each row group to a narrow range of order ids,
    # and a lookup by order id skips the others (zone maps)
    codes, distinct = ranked_codes(columns.events.column("order_id"))
    k = pieces if pieces is not None else min(8, 2 * (os.cpu_count() or 1))
    if k < 2 or (pieces is None and n <= PARALLEL_ROWS) or distinct < k:
        return _fold(columns, None, codes, every, lines)
    bounds = np.linspace(0, distinct, k + 1).astype(np.int64)
    rows = [np.flatnonzero((codes >= lo) & (codes < hi)) for lo, hi in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(max_workers=k) as pool:
        folded = list(pool.map(lambda r: _fold(columns, r, codes[r], every, lines), rows))

    def joined(tables: list[pa.Table | None]) -> pa.Table | None:
        present = [t for t in tables if t is not None]
        return pa.concat_tables(present) if present else None

    last = joined([f.last for f in folded])
    assert last is not None
    return Folded(
        joined([f.every for f in folded]),
        last,
        joined([f.lines for f in folded]),
        joined([f.payments for f in folded]),
    )


def fold_states(
    events: pa.Table, *, last_only: bool = False, pieces: int | None = None
) -> pa.Table:
    """The state after each event of each order (``Folded.every``), or with ``last_only``
    each order's final state (``Folded.last``)."""
    folded = fold_orders(events, every=not last_only, pieces=pieces)
    return folded.last if last_only or folded.every is None else folded.every


def _fold(
    columns: _Columns, rows: np.ndarray | None, raw_codes: np.ndarray, every: bool, lines: bool
) -> Folded:
    """fold_orders of the input ``rows`` (None: all), whose order ids ``raw_codes`` rank."""
    events = columns.events
    n = len(raw_codes)

    def of(values: np.ndarray) -> np.ndarray:
        return values if rows is None else values[rows]

    local = np.lexsort((of(columns.version), of(columns.occurred), raw_codes))
    perm = local if rows is None else rows[local]  # sorted row -> input row

    def sort(values: np.ndarray) -> np.ndarray:
        return values[perm]

    def take(name: str, index: np.ndarray) -> pa.Array:
        """A column's values at sorted-row indices (-1: null)."""
        missing = index < 0
        at = perm[np.where(missing, 0, index)] if n else index
        return pc.take(events.column(name), pa.array(at, mask=missing))

    kind = sort(columns.kind)
    orders = Segments(run_starts(raw_codes[local]))
    quantity, price, amount = sort(columns.quantity), sort(columns.price), sort(columns.amount)
    occurred, recorded = sort(columns.occurred), sort(columns.recorded)
    position = sort(columns.position)

    # Cart lines: per (order, sku), a running sum clamped at zero; removals take off the
    # unit price of the sku's latest ItemAdded while the line is in the cart.
    delta = np.where(kind == ADDED, quantity, np.where(kind == REMOVED, -quantity, 0))
    subtotal_delta = np.where(kind == ADDED, quantity * price, 0)
    found = cart(kind, quantity, orders, take)
    if found is not None:
        rows, line = found.rows, found.lines
        q_before = np.where(line.first_of_row == line.rows, 0, np.roll(found.quantity, 1))
        last_add = found.last_add
        add_price = price[rows][np.where(last_add < 0, 0, last_add)]
        removal = np.where(
            (~found.added) & (q_before > 0) & (last_add >= 0), -quantity[rows] * add_price, 0
        )
        subtotal_delta[rows] = np.where(found.added, subtotal_delta[rows], removal)

    item_count = orders.cumsum(delta)
    subtotal = orders.cumsum(subtotal_delta)
    discount = orders.cumsum(np.where(kind == DISCOUNT, amount, 0))
    authorized = orders.cumsum(np.where(kind == AUTHORIZED, amount, 0))
    captured = orders.cumsum(np.where(kind == CAPTURED, amount, 0))
    refunded = orders.cumsum(np.where(kind == REFUND, amount, 0))
    failures = orders.cumsum((kind == FAILED).astype(np.int64))
    notes = orders.cumsum((kind == NOTE).astype(np.int64))
    total = subtotal - discount
    version = orders.rows - orders.first_of_row + 1

    sets_status = np.isin(kind, list(_STATUS_OF))
    last_set = orders.last_index(sets_status)
    trigger = (kind == CAPTURED) & (total > 0) & (captured >= total)
    last_trigger = orders.last_index(trigger)
    base = np.zeros(n, dtype=np.int8)
    for code, label in _STATUS_OF.items():
        base[kind == code] = label
    base_status = np.where(last_set >= 0, base[np.where(last_set < 0, 0, last_set)], 0)
    paid = (base_status == 1) & (last_trigger > last_set)
    status = np.where(paid, 2, base_status).astype(np.int8)

    is_created, is_address, is_shipped = kind == CREATED, kind == ADDRESS, kind == SHIPPED
    created, addressed, shipped = (np.flatnonzero(m) for m in (is_created, is_address, is_shipped))
    last_created = orders.last_index(is_created)
    last_address = orders.last_index(is_address)
    last_shipped = orders.last_index(is_shipped)
    known_types = not n or kind.min() >= 0
    is_last = np.ones(n, dtype=bool)
    if n:
        is_last[:-1] = orders.run[1:] != orders.run[:-1]
    next_index = np.where(is_last, -1, orders.rows + 1)

    last = np.flatnonzero(is_last)
    # The string columns are dictionaries over the values of the rows that set them
    # (no string copied per state): per sorted row, the index of its setter among them.
    dictionary = Dictionaries(take, n)
    order_code = orders.run.astype(np.int32)
    created_code = dictionary.codes(created, last_created)
    address_code = dictionary.codes(addressed, last_address)
    shipped_code = dictionary.codes(shipped, last_shipped)
    kind_code = kind.astype(np.int32, copy=False)

    def states(out: np.ndarray | None) -> dict[str, Any]:
        """The columns of the states at the sorted rows ``out`` (None: every row, as it
        is: at 10M events, copying a dozen columns per call cost a tenth of the fold)."""

        def at(values: np.ndarray) -> np.ndarray:
            return values if out is None else values[out]

        return {
            "order_id": dictionary.column("order_id", orders.first, at(order_code)),
            "customer_id": dictionary.column("customer_id", created, at(created_code), ""),
            "currency": dictionary.column("currency", created, at(created_code), ""),
            "status": pa.DictionaryArray.from_arrays(at(status), STATUSES),
            "item_count": at(item_count),
            "subtotal_cents": at(subtotal),
            "discount_cents": at(discount),
            "total_cents": at(total),
            "authorized_cents": at(authorized),
            "captured_cents": at(captured),
            "refunded_cents": at(refunded),
            "payment_failures": at(failures),
            "shipping_city": dictionary.column("city", addressed, at(address_code)),
            "shipping_country": dictionary.column("country", addressed, at(address_code)),
            "carrier": dictionary.column("carrier", shipped, at(shipped_code)),
            "note_count": at(notes),
            "version": at(version),
            "last_event_type": (
                pa.DictionaryArray.from_arrays(at(kind_code), pa.array(TYPES))
                if known_types
                else take("event_type", orders.rows if out is None else out)
            ),
            "valid_from": stamps(at(occurred)),
            "valid_to": times(occurred, at(next_index)),
            "recorded_at": stamps(at(recorded)),
            "position": at(position),
        }

    def first(mask: np.ndarray) -> pa.Array:
        """Per order (in ``last``'s order), the occurred time of its first row in mask."""
        return times(occurred, orders.first_in_run(mask))

    def largest(values: np.ndarray) -> np.ndarray:
        """Per order, the largest of its rows' values (they are not sorted by it)."""
        return np.asarray(np.maximum.reduceat(values, orders.first)) if n else values

    final = states(last)
    final.update(
        {
            "customer_name": take("customer_name", last_created[last]).fill_null(""),
            "customer_email": take("customer_email", last_created[last]).fill_null(""),
            "channel": take("channel", last_created[last]).fill_null(""),
            "tracking_number": take("tracking_number", last_shipped[last]),
            "created_at": first(is_created),
            "paid_at": first(paid),
            "shipped_at": first(is_shipped),
            "delivered_at": first(kind == DELIVERED),
            "cancelled_at": first(kind == CANCELLED),
            "last_recorded_at": times(largest(recorded), np.arange(len(last))),
            "last_position": largest(position),
        }
    )
    return Folded(
        pa.table(states(None)) if every else None,
        pa.table(final),
        lines_table(found, price, occurred, take) if lines else None,
        payments_table(kind, amount, occurred, orders, final["currency"], take) if lines else None,
    )
