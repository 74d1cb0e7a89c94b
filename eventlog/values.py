"""The values the log takes and gives: append requests and results, reports, tail tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from eventlog.envelope import ANY, COLUMNS, ENVELOPE_SCHEMA, ExpectedVersion, NewEvent


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """Events for one stream, with the version the writer expects it to be at.

    ``state`` (a JSON object) is the write-model state after these events; the log
    stores it beside the stream head so the next command needs no replay.
    """

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: ExpectedVersion = ANY
    stream_type: str | None = None  # None: the log's default stream type
    command_id: str | None = None
    state: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where one request's events landed; ``duplicate`` when it was an idempotent repeat."""

    stream_id: str
    first_position: int
    last_position: int
    first_version: int
    last_version: int
    recorded_at: datetime | None
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream_id": self.stream_id,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` found: ``ok`` when the log keeps every invariant."""

    ok: bool
    head: int
    sealed_head: int
    events: int
    parts: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "head": self.head,
            "sealed_head": self.sealed_head,
            "events": self.events,
            "parts": self.parts,
            "problems": self.problems,
            "warnings": self.warnings,
        }


@dataclass(frozen=True, slots=True)
class LakeInfo:
    """Size and shape of a lake."""

    head: int
    sealed_head: int
    tail_events: int
    parts: int
    partitions: list[str]
    part_bytes: int
    tail_bytes: int
    streams: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "head": self.head,
            "sealed_head": self.sealed_head,
            "tail_events": self.tail_events,
            "parts": self.parts,
            "partitions": self.partitions,
            "part_bytes": self.part_bytes,
            "tail_bytes": self.tail_bytes,
            "streams": self.streams,
        }


def tail_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Tail rows (envelope order, times in µs) as an envelope table."""
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = []
    for name, values in zip(COLUMNS, cols, strict=True):
        typ = ENVELOPE_SCHEMA.field(name).type
        if name in ("occurred_at", "recorded_at"):
            arrays.append(pa.array(values, pa.int64()).cast(typ))
        elif pa.types.is_dictionary(typ):
            arrays.append(pa.array(values, pa.string()).dictionary_encode().cast(typ))
        else:
            arrays.append(pa.array(values, typ))
    return pa.Table.from_arrays(arrays, schema=ENVELOPE_SCHEMA)


def empty_envelope() -> pa.Table:
    """An envelope table with no rows (``Schema.empty_table`` would import pandas: 0.3 s)."""
    return pa.Table.from_batches([], schema=ENVELOPE_SCHEMA)
