"""Every warehouse projection, in dependency order, and the choice of some of them."""

from __future__ import annotations

from collections.abc import Sequence

from eventlog.errors import InvalidInputError
from projections.order_events import ORDER_EVENTS
from projections.projection import Projection
from projections.rollups import CUSTOMERS, DAILY_SALES
from projections.tables import ORDER_LINES, ORDERS, PAYMENTS
from projections.temporal import ORDER_STATES

PROJECTIONS: tuple[Projection, ...] = (
    ORDER_EVENTS,
    ORDERS,
    ORDER_LINES,
    PAYMENTS,
    ORDER_STATES,
    DAILY_SALES,
    CUSTOMERS,
)
"""Every projection, in dependency order."""

BY_NAME = {p.name: p for p in PROJECTIONS}


def select(names: Sequence[str] | None) -> list[Projection]:
    """The named projections plus what they depend on, in dependency order."""
    if not names:
        return list(PROJECTIONS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise InvalidInputError(
            f"unknown projection {', '.join(map(repr, unknown))}; "
            f"expected one of {', '.join(BY_NAME)}"
        )
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(BY_NAME[name].depends_on)
    return [p for p in PROJECTIONS if p.name in wanted]
