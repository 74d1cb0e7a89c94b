"""Bitemporal order states: ``temporal.order_states``, the ``orders_as_of`` macros, ``state_as_of``.

Time (docs/projections.md): the state as of T is the fold, in (occurred_at, version) order, of the
order's events with ``occurred_at <= T``; as known at K it also needs ``recorded_at <= K``.
No qualifying event: the order did not exist then (None).

``temporal.order_states`` holds the valid-time history as known now: one row per event
with the state after it, ``valid_from`` = its occurred_at, ``valid_to`` = the next
event's occurred_at (NULL for the current state). Events sharing an occurred_at leave
empty ``[t, t)`` intervals, so exactly one row matches any T. Bitemporal questions fold
the flattened events of ``analytics.order_events`` with the same SQL.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from eventlog.errors import InvalidInputError
from eventlog.validate import parse_time, utc, validate_stream_id
from projections.order_state import STATE_FIELDS, STATE_SELECT, STATE_SELECT_AFTER_ID
from projections.projection import DELETE_TOUCHED_ORDERS, Projection, fold_query, insert_into
from projections.tables import ORDER_STATE_COLUMNS
from projections.warehouse import connect

if TYPE_CHECKING:
    from eventlog.log import EventLog

ORDER_STATES_DDL = (
    """
CREATE TABLE @TABLE@ (
    order_id VARCHAR NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to TIMESTAMPTZ,
"""
    + ORDER_STATE_COLUMNS
    + """    recorded_at TIMESTAMPTZ NOT NULL,
    position BIGINT NOT NULL
)
"""
)

ORDER_STATES_SELECT = """
SELECT order_id, valid_from, valid_to, @STATE_AFTER_ID@, recorded_at, position
FROM states
""".replace("@STATE_AFTER_ID@", STATE_SELECT_AFTER_ID)

ORDER_STATES = Projection(
    name="order_states",
    schema="temporal",
    code_version="1",
    description="Valid-time history of every order as known now: one row per state.",
    ddl=ORDER_STATES_DDL,
    full_sql=insert_into(ORDER_STATES_SELECT),
    incremental_sql=(DELETE_TOUCHED_ORDERS, insert_into(ORDER_STATES_SELECT)),
    depends_on=("order_events",),
    fold_tables=("states",),
)

# Every order's state at a valid time (as known now), and at a valid time as known at K.
_AS_OF_KNOWN_BODY = fold_query(
    "SELECT * FROM analytics.order_events WHERE occurred_at <= as_of AND recorded_at <= known_at",
    (
        "SELECT @STATE@, valid_from FROM states WHERE valid_to IS NULL".replace(
            "@STATE@", STATE_SELECT
        )
    ),
)
AS_OF_MACROS = (
    """
CREATE OR REPLACE MACRO temporal.orders_as_of(as_of) AS TABLE
    SELECT @STATE@, valid_from
    FROM temporal.order_states
    WHERE valid_from <= as_of AND (valid_to IS NULL OR valid_to > as_of),
(as_of, known_at) AS TABLE
@KNOWN_BODY@
""".replace("@STATE@", STATE_SELECT)
).replace("@KNOWN_BODY@", _AS_OF_KNOWN_BODY)

STATE_AS_OF_KNOWN = fold_query(
    "SELECT * FROM analytics.order_events WHERE order_id = $order_id "
    "AND occurred_at <= $as_of AND recorded_at <= $known_at",
    ("SELECT @STATE@ FROM states WHERE valid_to IS NULL".replace("@STATE@", STATE_SELECT)),
)

STATE_AS_OF = """
SELECT @STATE@
FROM temporal.order_states
WHERE order_id = $order_id AND valid_from <= $as_of AND (valid_to IS NULL OR valid_to > $as_of)
""".replace("@STATE@", STATE_SELECT)

ORDERS_AS_OF = "SELECT * FROM temporal.orders_as_of($as_of) ORDER BY order_id"
ORDERS_AS_OF_KNOWN = "SELECT * FROM temporal.orders_as_of($as_of, $known_at) ORDER BY order_id"


MACROS_VERSION = hashlib.sha256(AS_OF_MACROS.encode()).hexdigest()[:16]


def install_macros(con: duckdb.DuckDBPyConnection, *, force: bool = False) -> None:
    """Create or replace the ``temporal.orders_as_of`` table macros.

    ``meta.macros`` remembers which text is installed: a catch-up skips the reinstall
    unless the code's macros differ (or ``force``).
    """
    have = con.execute("SELECT version FROM meta.macros").fetchall()
    if not force and have == [(MACROS_VERSION,)]:
        return
    con.execute(AS_OF_MACROS)
    con.execute("DELETE FROM meta.macros")
    con.execute("INSERT INTO meta.macros VALUES ($v)", {"v": MACROS_VERSION})


def as_time(value: datetime | str, what: str) -> datetime:
    """A UTC-aware datetime from a datetime or ISO 8601 text; InvalidInputError otherwise."""
    if isinstance(value, str):
        try:
            return parse_time(value)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{what}: {exc}") from None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime or ISO 8601 text, got {value!r}")
    return utc(value)


def state_as_of(
    source: Path | EventLog | duckdb.DuckDBPyConnection,
    order_id: str,
    at: datetime | str,
    known_at: datetime | str | None = None,
) -> dict[str, Any] | None:
    """The order's public state fields as of ``at`` (as known at ``known_at``), or None.

    None means no event qualifies: the order did not exist then (as far as was known).
    """
    validate_stream_id(order_id)
    as_of = as_time(at, "as-of time")
    known = as_time(known_at, "known-at time") if known_at is not None else None
    own = not isinstance(source, duckdb.DuckDBPyConnection)
    con = (
        source if isinstance(source, duckdb.DuckDBPyConnection) else connect(source, read_only=True)
    )
    try:
        if known is None:
            rows = con.execute(STATE_AS_OF, {"order_id": order_id, "as_of": as_of}).fetchall()
        else:
            params = {"order_id": order_id, "as_of": as_of, "known_at": known}
            rows = con.execute(STATE_AS_OF_KNOWN, params).fetchall()
    finally:
        if own:
            con.close()
    # fetchall, not fetchone: a half-read result would block the caller's next query.
    if not rows:
        return None
    return dict(zip(STATE_FIELDS, rows[0], strict=True))


def orders_as_of(
    con: duckdb.DuckDBPyConnection, at: datetime | str, known_at: datetime | str | None = None
) -> Any:
    """Every order's state as of ``at`` (as known at ``known_at``), as an Arrow table."""
    as_of = as_time(at, "as-of time")
    if known_at is None:
        return con.sql(ORDERS_AS_OF, params={"as_of": as_of}).to_arrow_table()
    known = as_time(known_at, "known-at time")
    return con.sql(ORDERS_AS_OF_KNOWN, params={"as_of": as_of, "known_at": known}).to_arrow_table()
