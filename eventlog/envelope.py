"""The event envelope: its Arrow schema and the values that travel through the log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

# The checks of a stream id, an expected version and a time need no Arrow: they live in
# ``eventlog.validate`` (so that quick commands need not import pyarrow) and are
# re-exported here, where the envelope's users have always found them.
from eventlog.validate import (  # noqa: F401  (re-exported)
    ANY,
    MAX_STREAM_ID_LENGTH,
    NO_STREAM,
    ExpectedVersion,
    parse_time,
    utc,
    validate_expected_version,
    validate_stream_id,
)

ENVELOPE_SCHEMA = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),
        pa.field("stream_type", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("stream_id", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_type", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
    ]
)
COLUMNS = tuple(ENVELOPE_SCHEMA.names)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch of a UTC-aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        utc(value)  # raises the error that names the problem
    try:
        return (value - _EPOCH) // _MICROSECOND
    except OverflowError:
        utc(value)  # names the range
        raise


def from_micros(micros: int) -> datetime:
    """The UTC datetime of microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its type, JSON payload, business time and metadata.

    ``event_id`` may be left ``None`` and the log assigns a fresh UUID; give one to
    make retries idempotent.
    """

    event_type: str
    payload: Mapping[str, Any]
    occurred_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    schema_version: int | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the log holds it."""

    position: int
    stream_type: str
    stream_id: str
    version: int
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]
    metadata: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with the envelope's field names (times in ISO 8601)."""
        return {
            "position": self.position,
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "version": self.version,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "payload": self.payload,
            "metadata": self.metadata,
        }


def records_from_batch(batch: pa.RecordBatch | pa.Table) -> list[RecordedEvent]:
    """Turn envelope rows into RecordedEvent values."""
    cols = {name: batch.column(name).to_pylist() for name in COLUMNS if not name.endswith("_at")}
    for name in ("occurred_at", "recorded_at"):
        # via µs: pyarrow's own conversion of zoned timestamps imports pandas (0.3 s)
        cols[name] = [from_micros(m) for m in batch.column(name).cast(pa.int64()).to_pylist()]
    return [
        RecordedEvent(
            position=cols["position"][i],
            stream_type=cols["stream_type"][i],
            stream_id=cols["stream_id"][i],
            version=cols["version"][i],
            event_id=cols["event_id"][i],
            event_type=cols["event_type"][i],
            schema_version=cols["schema_version"][i],
            occurred_at=cols["occurred_at"][i],
            recorded_at=cols["recorded_at"][i],
            payload=json.loads(cols["payload"][i]),
            metadata=json.loads(cols["metadata"][i]),
        )
        for i in range(batch.num_rows)
    ]
