"""How far each projection is behind the log, and the reports of a run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventlog.errors import InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.log import LogSource, reading
from projections.builds import Warehouse
from projections.plan import select
from projections.projection import Projection
from projections.report import ProjectionReport
from projections.source import source_rows
from projections.warehouse import Checkpoint, checkpoints, connect


@dataclass(frozen=True, slots=True)
class Lag:
    """How far one projection is behind the log, and whether its code changed."""

    name: str
    code_version: str
    stored_code_version: str | None
    stale: bool
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    table_name: str | None
    updated_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "code_version": self.code_version,
            "stored_code_version": self.stored_code_version,
            "stale": self.stale,
            "position": self.position,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "table_name": self.table_name,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def count_rows(con: Any, projection: Projection) -> int:
    rows = con.execute(f"SELECT count(*) FROM {projection.view}").fetchall()  # noqa: S608
    return int(rows[0][0])


def _rows(con: Any, projection: Projection, cp: Checkpoint) -> int:
    """A projection's rows; the source's without scanning its pinned files when its build
    counted them (``source_rows``)."""
    counted = source_rows(con, cp) if projection.is_source else None
    return counted if counted is not None else count_rows(con, projection)


def head_of(log: EventLog) -> tuple[int, datetime | None]:
    head = log.head()
    if head == 0:
        return 0, None
    last = log.read_all(after=head - 1, until=head, columns=["position", "recorded_at"])
    return head, last.column("recorded_at")[0].as_py()


def lag_seconds(head_at: datetime | None, at: datetime | None, lag_events: int) -> float:
    if lag_events <= 0 or head_at is None:
        return 0.0
    if at is None:
        return 0.0
    return max(0.0, (head_at - at).total_seconds())


@dataclass(frozen=True, slots=True)
class Done:
    projection: Projection
    before: int
    duration_s: float
    rebuilt: bool
    applied: int


def reports(con: Any, log: EventLog, done: list[Done]) -> list[ProjectionReport]:
    """One report per projection run, lag measured against the log head after the run."""
    head, head_at = head_of(log)
    stored = checkpoints(con)
    return [report(con, stored[d.projection.name], d, head, head_at) for d in done]


def report(
    con: Any, cp: Checkpoint, done: Done, head: int, head_at: datetime | None
) -> ProjectionReport:
    projection = done.projection
    lag = max(0, head - cp.position)
    return ProjectionReport(
        name=projection.name,
        code_version=projection.code_version,
        from_position=done.before,
        to_position=cp.position,
        events_applied=done.applied,
        rows=_rows(con, projection, cp),
        duration_s=done.duration_s,
        lag_events=lag,
        lag_seconds=lag_seconds(head_at, cp.recorded_at, lag),
        rebuilt=done.rebuilt,
        extra={"table": cp.table_name},
    )


def lag(source: LogSource, warehouse: Warehouse = None) -> list[Lag]:
    """How far each projection is behind the log (events and seconds), and staleness."""
    with reading(source) as log:
        con: Any = warehouse
        if warehouse is None:
            try:
                con = connect(log, read_only=True)
            except InvalidInputError:
                con = None  # no warehouse yet: every projection is at 0
        try:
            stored: dict[str, Checkpoint] = checkpoints(con) if con is not None else {}
            head, head_at = head_of(log)
        finally:
            if warehouse is None and con is not None:
                con.close()
    return [_lag_of(p, stored.get(p.name), head, head_at) for p in select(None)]


def _lag_of(p: Projection, cp: Checkpoint | None, head: int, head_at: datetime | None) -> Lag:
    position = cp.position if cp else 0
    events = max(0, head - position)
    return Lag(
        name=p.name,
        code_version=p.code_version,
        stored_code_version=cp.code_version if cp else None,
        stale=bool(cp and cp.code_version != p.code_version),
        position=position,
        head=head,
        lag_events=events,
        lag_seconds=lag_seconds(head_at, cp.recorded_at if cp else None, events),
        table_name=cp.table_name if cp else None,
        updated_at=cp.updated_at if cp else None,
    )
