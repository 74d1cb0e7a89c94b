"""What ``ledgerlake state`` shows: the state's fields, money with its currency, its validity window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import typer

from projections.narratives import format_money

# The window of the state as of $as_of as known at $known_at: it began with the last
# qualifying event and lasts until the next one known at $known_at (NULL: still current).
VALIDITY_WINDOW = """
SELECT
    max(occurred_at) FILTER (WHERE occurred_at <= $as_of) AS valid_from,
    min(occurred_at) FILTER (WHERE occurred_at > $as_of) AS valid_to
FROM analytics.order_events
WHERE order_id = $order_id AND recorded_at <= $known_at
"""
MONEY_FIELDS = (
    "subtotal_cents",
    "discount_cents",
    "total_cents",
    "authorized_cents",
    "captured_cents",
    "refunded_cents",
)


def validity_window(
    con: duckdb.DuckDBPyConnection, order_id: str, as_of: datetime, known_at: datetime
) -> tuple[datetime | None, datetime | None]:
    """(valid_from, valid_to) of the order's state as of ``as_of`` as known at ``known_at``."""
    params = {"order_id": order_id, "as_of": as_of, "known_at": known_at}
    row = con.execute(VALIDITY_WINDOW, params).fetchone()
    return (row[0], row[1]) if row else (None, None)


def window_json(window: tuple[datetime | None, datetime | None]) -> dict[str, str | None]:
    """The window as JSON fields (ISO 8601; ``valid_to`` null while the state is current)."""
    return {
        "valid_from": window[0].isoformat() if window[0] else None,
        "valid_to": window[1].isoformat() if window[1] else None,
    }


def state_lines(
    state: dict[str, Any], window: tuple[datetime | None, datetime | None]
) -> list[str]:
    """The state as ``field  value`` lines: money as ``EUR 12.50``, then version and window."""
    currency = state.get("currency") or ""
    lines = []
    for key, value in state.items():
        if key in MONEY_FIELDS and isinstance(value, int):
            shown = format_money(value, currency) if currency else str(value)
            lines.append(f"{key.removesuffix('_cents'):<18} {shown}")
        elif key != "version":
            lines.append(f"{key:<18} {'-' if value is None else value}")
    valid_from, valid_to = window
    lines.append(f"{'version':<18} {state['version']}")
    lines.append(f"{'valid_from':<18} {valid_from.isoformat() if valid_from else '-'}")
    lines.append(
        f"{'valid_to':<18} {valid_to.isoformat() if valid_to else '- (still the current state)'}"
    )
    return lines


def print_state(state: dict[str, Any], window: tuple[datetime | None, datetime | None]) -> None:
    """Print :func:`state_lines` on stdout."""
    for line in state_lines(state, window):
        typer.echo(line)
