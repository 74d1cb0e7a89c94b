"""What one projection run did: the shared result type of every projection's catch-up/rebuild."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ProjectionReport:
    """The outcome of catching up or rebuilding one projection.

    ``from_position``/``to_position`` are the checkpoint before and after; ``lag_events``
    and ``lag_seconds`` are measured against the log head after the run (seconds between
    the head's recorded_at and the checkpoint's recorded_at).
    """

    name: str
    code_version: str
    from_position: int
    to_position: int
    events_applied: int
    rows: int
    duration_s: float
    lag_events: int
    lag_seconds: float
    rebuilt: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "code_version": self.code_version,
            "from_position": self.from_position,
            "to_position": self.to_position,
            "events_applied": self.events_applied,
            "rows": self.rows,
            "duration_s": round(self.duration_s, 4),
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "rebuilt": self.rebuilt,
            **self.extra,
        }
