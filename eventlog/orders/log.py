"""The Order domain's log: an ``EventLog`` with the Order registry and stream type ``order``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventlog.envelope import NewEvent
from eventlog.forget import ForgetResult, erasure_payload, forget
from eventlog.log import EventLog
from eventlog.orders.events import ERASURE_STREAM_TYPE, REGISTRY, STREAM_TYPE, erasure_stream

LogSource = EventLog | str | Path
"""What a reader of the log accepts: an open log, or the lake it lives in."""


def open_order_log(root: str | Path, *, read_only: bool = False, **options: Any) -> EventLog:
    """Open a lake's log with the Order event types (``EventLog.open``'s options).

    ``read_only=True`` opens an existing lake for reading alone (``open_read_only``).
    """
    options.setdefault("registry", REGISTRY)
    options.setdefault("stream_type", STREAM_TYPE)
    if read_only:
        return EventLog.open_read_only(root, **options)
    return EventLog.open(root, **options)


def forget_customer(log: EventLog, customer_id: str) -> ForgetResult:
    """Forget a customer: destroy their key, record ``CustomerErased`` (see eventlog.forget)."""
    return forget(
        log,
        customer_id,
        stream_id=erasure_stream(customer_id),
        stream_type=ERASURE_STREAM_TYPE,
        event=lambda subject, key_id: NewEvent("CustomerErased", erasure_payload(subject, key_id)),
    )


@contextmanager
def reading(source: LogSource) -> Iterator[EventLog]:
    """The log to read: ``source`` itself (left open), or its lake's log opened read-only.

    The one way every reader opens the log: a log it opened is closed on leaving, a log
    it was given stays open for its owner.
    """
    if isinstance(source, EventLog):
        yield source
        return
    log = open_order_log(Path(source), read_only=True)
    try:
        yield log
    finally:
        log.close()
