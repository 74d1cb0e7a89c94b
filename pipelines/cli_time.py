"""Times given on the command line: ISO 8601 with an offset, or a date alone (UTC midnight)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from eventlog.errors import InvalidInputError
from pipelines.cli_output import note

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def cli_time(text: str, option: str) -> datetime:
    """``text`` as a UTC time; a date alone is the start of that day in UTC (said on stderr).

    Anything else must be ISO 8601 with an offset; InvalidInputError (exit 2) names the option.
    """
    stripped = text.strip()
    if _DATE.fullmatch(stripped):
        try:
            day = date.fromisoformat(stripped)
        except ValueError:
            raise InvalidInputError(f"{option}: {text!r} is not a calendar date") from None
        value = datetime(day.year, day.month, day.day, tzinfo=UTC)
        note(f"{option} {stripped} is read as {value.isoformat()} (the start of that day in UTC)")
        return value
    from eventlog.validate import parse_time

    try:
        return parse_time(stripped)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{option}: {exc}") from None


def optional_time(text: str | None, option: str) -> datetime | None:
    """:func:`cli_time` for an option that may be absent."""
    return None if text is None else cli_time(text, option)
