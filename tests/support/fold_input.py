"""Random histories as the numpy fold's input: the rows, and the Arrow table of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyarrow as pa

from eventlog.orders import ORDER_DECIDER, OrderState
from eventlog.orders.events import REGISTRY
from projections.fold import FOLD_COLUMNS
from projections.fold_arrays import TIMESTAMP
from projections.fold_lines import CART_COLUMNS
from tests.support.histories import RECORDED_T0, RawEvent

# the event's own columns, in the fold's order: what its payload gives
_ENVELOPE = {
    "order_id": pa.string(),
    "version": pa.int64(),
    "position": pa.int64(),
    "event_type": pa.string(),
    "occurred_at": TIMESTAMP,
    "recorded_at": TIMESTAMP,
}
_INTS = ("quantity", "unit_price_cents", "amount_cents")
_PAYLOAD = tuple(c for c in (*FOLD_COLUMNS, *CART_COLUMNS) if c not in _ENVELOPE)


def fold_rows(history: list[list[RawEvent]]) -> list[dict[str, Any]]:
    """The history as the fold's input rows: positions in append order, versions per
    order, one commit an hour; ``payload`` keeps each event's own payload (for evolve)."""
    rows: list[dict[str, Any]] = []
    versions: dict[str, int] = {}
    for commit_no, commit in enumerate(history):
        for ev in commit:
            versions[ev.order_id] = versions.get(ev.order_id, 0) + 1
            row: dict[str, Any] = {
                "order_id": ev.order_id,
                "version": versions[ev.order_id],
                "position": len(rows) + 1,
                "event_type": ev.event_type,
                "occurred_at": ev.occurred_at,
                "recorded_at": RECORDED_T0 + timedelta(hours=commit_no),
                "payload": ev.payload,
            }
            row |= {name: ev.payload.get(name) for name in _PAYLOAD}
            rows.append(row)
    return rows


def fold_table(rows: list[dict[str, Any]], *, lines: bool = False) -> pa.Table:
    """The rows as the fold reads them: ``FOLD_COLUMNS`` (and ``CART_COLUMNS`` with
    ``lines``), typed as ``analytics.order_events`` types them."""
    schema = pa.schema(
        [
            *_ENVELOPE.items(),
            *((name, pa.int64() if name in _INTS else pa.string()) for name in _PAYLOAD),
        ]
    )
    columns = (*FOLD_COLUMNS, *CART_COLUMNS) if lines else FOLD_COLUMNS
    return pa.Table.from_pylist(rows, schema=schema).select(list(columns))


def decoded(table: pa.Table) -> pa.Table:
    """The table with its dictionary columns as plain ones: the same values, comparable
    with ``equals`` whatever dictionaries each piece of a fold built."""
    return pa.table(
        {
            name: column.cast(column.type.value_type)
            if pa.types.is_dictionary(column.type)
            else column
            for name, column in zip(table.column_names, table.columns, strict=True)
        }
    )


def evolved(rows: list[dict[str, Any]]) -> Iterator[OrderState]:
    """The reference: each order's state after each of its events, folded with the
    domain's ``evolve`` in (occurred_at, version) order, order after order."""
    states: dict[str, OrderState] = {}
    for row in sorted(rows, key=lambda r: (r["order_id"], r["occurred_at"], r["version"])):
        state = states.get(row["order_id"], OrderState.initial(row["order_id"]))
        event = REGISTRY.decode(row["event_type"], 1, row["payload"])
        states[row["order_id"]] = state = ORDER_DECIDER.evolve(state, event)
        yield state
