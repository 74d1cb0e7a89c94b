"""The read side: projections of the event log (DuckDB warehouse, temporal states, vectors).

The warehouse API (see docs/projections.md)::

    from projections import catch_up, rebuild, lag, connect, state_as_of, orders_as_of
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projections.plan import PROJECTIONS
    from projections.progress import Lag, lag
    from projections.projection import Projection
    from projections.report import ProjectionReport
    from projections.runner import StaleProjectionError, catch_up, rebuild
    from projections.temporal import orders_as_of, state_as_of
    from projections.warehouse import (
        Checkpoint,
        WarehouseBusyError,
        WarehouseNotFoundError,
        checkpoints,
        connect,
        create_events_view,
        warehouse_path,
    )

# Each name is imported from its module on first use (PEP 562): ``ledgerlake sql`` needs
# the warehouse's connection, not the projections' Arrow and NumPy code.
_HOMES = {
    "ProjectionReport": "report",
    "PROJECTIONS": "plan",
    "Lag": "progress",
    "StaleProjectionError": "runner",
    "catch_up": "runner",
    "lag": "progress",
    "rebuild": "runner",
    "Projection": "projection",
    "orders_as_of": "temporal",
    "state_as_of": "temporal",
    "Checkpoint": "warehouse",
    "WarehouseBusyError": "warehouse",
    "WarehouseNotFoundError": "warehouse",
    "checkpoints": "warehouse",
    "connect": "warehouse",
    "create_events_view": "warehouse",
    "warehouse_path": "warehouse",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'projections' has no attribute {name!r}")
    value = getattr(import_module(f"projections.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PROJECTIONS",
    "Checkpoint",
    "Lag",
    "Projection",
    "ProjectionReport",
    "StaleProjectionError",
    "WarehouseBusyError",
    "WarehouseNotFoundError",
    "catch_up",
    "checkpoints",
    "connect",
    "create_events_view",
    "lag",
    "orders_as_of",
    "rebuild",
    "state_as_of",
    "warehouse_path",
]
