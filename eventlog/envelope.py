"""The event envelope: its Arrow schema and the values that travel through the log."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyarrow as pa

from eventlog.errors import InvalidInputError, InvalidStreamIdError

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

MAX_STREAM_ID_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

NO_STREAM: Literal["no_stream"] = "no_stream"
ANY: Literal["any"] = "any"
ExpectedVersion = int | Literal["no_stream", "any"]


def validate_stream_id(stream_id: object) -> str:
    """Return the stream id if it is safe to store and to use in paths; raise otherwise."""
    if not isinstance(stream_id, str):
        raise InvalidStreamIdError(f"stream id must be a string, got {type(stream_id).__name__}")
    if not stream_id:
        raise InvalidStreamIdError("stream id must not be empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidStreamIdError(
            f"stream id is {len(stream_id)} characters long; at most {MAX_STREAM_ID_LENGTH} expected"
        )
    if "/" in stream_id or "\\" in stream_id:
        raise InvalidStreamIdError(f"stream id {stream_id!r} must not contain '/' or '\\'")
    if stream_id in {".", ".."}:
        raise InvalidStreamIdError(f"stream id {stream_id!r} is not allowed")
    if _CONTROL.search(stream_id):
        raise InvalidStreamIdError(f"stream id {stream_id!r} must not contain control characters")
    return stream_id


def validate_expected_version(expected: object) -> ExpectedVersion:
    """Check an expected version: an int >= 0, 'no_stream' or 'any'."""
    if expected in (NO_STREAM, ANY):
        return expected  # type: ignore[return-value]
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidInputError(
            f"expected_version must be an integer >= 0, 'no_stream' or 'any'; got {expected!r}"
        )
    return expected


def utc(value: datetime) -> datetime:
    """Require a timezone-aware datetime and convert it to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"time {value.isoformat()} has no timezone; UTC-aware times expected"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(
            f"time {value.isoformat()} is outside what the log can store: "
            "0001-01-01 to 9999-12-31 in UTC expected"
        ) from None


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time; a time without offset is rejected rather than guessed."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InvalidInputError(
            f"cannot parse time {text!r}; expected ISO 8601 like 2026-11-26T12:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise InvalidInputError(
            f"time {text!r} has no timezone; expected an offset such as Z or +00:00"
        )
    return utc(value)


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
