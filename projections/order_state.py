"""The order state's columns, derived from the domain's ``OrderState``: one definition.

The Order fold exists three times: ``evolve`` in the domain, ``sql/fold.sql`` (the
bitemporal macros and ``state_as_of(known_at)``) and the numpy ``fold_states`` (the
tables). Their public fields, names, order and SQL types, come from here, and here from
``eventlog.orders.decider.PUBLIC_FIELDS`` and the type annotations of ``OrderState``;
the property tests (``tests/projections/test_fold_contract.py``) hold the three folds
to each other field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from eventlog.orders.decider import PUBLIC_FIELDS, OrderState

# Python annotation of an OrderState field -> its DuckDB column type
_SQL_TYPES = {"str": "VARCHAR NOT NULL", "int": "BIGINT NOT NULL", "str | None": "VARCHAR"}
# Optional in the domain (the initial state has none), never empty in a projection: every
# projected state is the state after one event at least.
_SET_BY_EVERY_EVENT = frozenset({"last_event_type"})


@dataclass(frozen=True, slots=True)
class StateColumn:
    """One public field of the order state as a column: its name and DuckDB type."""

    name: str
    sql_type: str


def _columns() -> tuple[StateColumn, ...]:
    annotations = {f.name: str(f.type) for f in fields(OrderState)}
    out = []
    for name in PUBLIC_FIELDS:
        sql_type = _SQL_TYPES[annotations[name]]
        if name in _SET_BY_EVERY_EVENT:
            sql_type = sql_type.removesuffix(" NOT NULL") + " NOT NULL"
        out.append(StateColumn(name, sql_type))
    return tuple(out)


STATE_COLUMNS: tuple[StateColumn, ...] = _columns()
"""The public fields of the order state, in table order, with their DuckDB types."""

STATE_FIELDS: tuple[str, ...] = tuple(c.name for c in STATE_COLUMNS)
STATE_SELECT = ", ".join(STATE_FIELDS)
"""The state's columns as a select list: ``order_id, customer_id, ..., last_event_type``."""
STATE_SELECT_AFTER_ID = ", ".join(STATE_FIELDS[1:])
"""The same without the leading ``order_id`` (tables that put other columns next to it)."""


def state_column_ddl(*, skip: tuple[str, ...] = ("order_id",)) -> str:
    """The state's columns as DDL lines (``name TYPE,`` each), for a CREATE TABLE."""
    return "".join(f"    {c.name} {c.sql_type},\n" for c in STATE_COLUMNS if c.name not in skip)
