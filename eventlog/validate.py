"""Checks of a stream id, an expected version and a time: plain Python, no Arrow.

``eventlog.envelope`` re-exports every name; this module exists so that a command that
only checks its arguments (``ledgerlake state``) does not import pyarrow to do so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from eventlog.errors import InvalidInputError, InvalidStreamIdError

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
