"""The read side: projections of the event log (DuckDB warehouse, temporal states, vectors).

The warehouse API (see docs/projections.md)::

    from projections import catch_up, rebuild, lag, connect, state_as_of, orders_as_of
"""

from __future__ import annotations

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
