"""The Order domain's log: an ``EventLog`` with the Order registry and stream type ``order``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventlog.log import EventLog
from eventlog.orders.events import REGISTRY, STREAM_TYPE


def open_order_log(root: str | Path, *, read_only: bool = False, **options: Any) -> EventLog:
    """Open a lake's log with the Order event types (``EventLog.open``'s options).

    ``read_only=True`` opens an existing lake for reading alone (``open_read_only``).
    """
    options.setdefault("registry", REGISTRY)
    options.setdefault("stream_type", STREAM_TYPE)
    if read_only:
        return EventLog.open_read_only(root, **options)
    return EventLog.open(root, **options)
