"""The tail: where a commit happens, behind one ``Tail`` protocol.

A tail holds the newest committed events (until they are sealed into parts), the
counters (head, sealed head, ...), the stream heads and write-model states, the
processed command ids, an index of stream positions and event ids, and the catalog of
live parts. Every write happens inside ``write()``: one transaction that also is the
writer lock (it serializes every writer of the lake, so the positions a commit assigns
are dense and commit order is position order). Every consistent read happens inside
``snapshot()``. Outside either, each call is its own statement.

Two implementations: ``eventlog.tails.sqlite`` (``<lake>/tail.sqlite``, one machine)
and ``eventlog.tails.postgres`` (a PostgreSQL database, writers on many machines).
The log itself (``eventlog.log``) speaks only this protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from eventlog.parts import Part

# The counters every tail keeps, in this order.
META_KEYS = ("head", "sealed_head", "index_head", "ids_head", "heads_head", "last_recorded_at")

# A tail row: the envelope's columns in order, times as microseconds since the epoch.
TailRow = tuple[Any, ...]
# A catalog row of a part: (name under events/, first, last, date, bytes, sha256).
CatalogRow = tuple[str, int, int, str, int, str]
# (version, state JSON or None, version that state reflects) of a stream.
StreamRow = tuple[int, str | None, int]


class Tail(Protocol):
    """The commit protocol's database: see the module docstring."""

    read_only: bool
    has_catalog: bool

    def describe(self) -> str:
        """Where the tail lives, for messages (never with a password)."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...

    def write(self) -> AbstractContextManager[None]:
        """A write transaction that holds the writer lock until it commits or rolls back."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A read transaction: every query inside sees one committed state (re-entrant)."""
        ...

    # ---------------------------------------------------------------- counters
    def meta(self, key: str) -> int:
        """One counter (see META_KEYS)."""
        ...

    def metas(self) -> dict[str, int]:
        """Every counter."""
        ...

    def set_metas(self, values: dict[str, int]) -> None:
        """Set counters (inside a write transaction)."""
        ...

    def set_meta(self, key: str, value: int) -> None:
        """Set one counter (inside a write transaction)."""
        ...

    def metas_and_versions(
        self, stream_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Every counter and the stored heads of some streams (one round trip if it can)."""
        ...

    # ---------------------------------------------------------------- streams
    def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        """Stored heads of the given streams (absent streams left out)."""
        ...

    def stream_versions_arrow(self, ids_json: str) -> tuple[list[str], list[int]]:
        """(stream ids, versions) of the stored streams among a JSON array of ids."""
        ...

    def has_streams(self) -> bool:
        """Whether any stream head is stored."""
        ...

    def stream_row(self, stream_id: str) -> StreamRow | None:
        """A stream's stored head and state, or None."""
        ...

    def stream_rows(self, stream_ids: Sequence[str]) -> dict[str, StreamRow]:
        """The stored heads and states of some streams, in one query (absent ones left out)."""
        ...

    def stream_row_and_heads(self, stream_id: str) -> tuple[int, int, StreamRow | None]:
        """(head, heads_head, the stream's row), in one query."""
        ...

    def upsert_streams(self, rows: Sequence[tuple[str, str, int, str | None, int]]) -> None:
        """(stream_id, stream_type, version, state JSON or None, state_version) heads.

        A None state keeps the stored state (and the version it reflects).
        """
        ...

    def bump_streams(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Raise (stream_id, stream_type, version) heads to at least that version."""
        ...

    def stream_heads(self) -> dict[str, int]:
        """Every stored stream head (for ``verify``)."""
        ...

    def stream_count(self) -> int:
        """How many stream heads are stored."""
        ...

    # ---------------------------------------------------------------- commands
    def command(self, command_id: str) -> tuple[str, int, int] | None:
        """(stream_id, first, last position) of a processed command id, or None."""
        ...

    def insert_commands(
        self, rows: Sequence[tuple[str, str, int, int]], *, ignore_known: bool = False
    ) -> None:
        """Record processed command ids (command_id, stream_id, first, last)."""
        ...

    # ---------------------------------------------------------------- tail rows
    def insert_tail(self, rows: Sequence[TailRow]) -> None:
        """Insert committed events (inside a write transaction)."""
        ...

    def delete_tail(self, upto: int) -> None:
        """Delete the tail rows at or below a position (they are sealed)."""
        ...

    def tail_rows(self, after: int, until: int | None = None) -> list[TailRow]:
        """Tail rows with position in (after, until], in position order."""
        ...

    def tail_rows_between(self, first: int, last: int) -> list[TailRow]:
        """Tail rows with position in [first, last], in position order."""
        ...

    def oldest_tail_recorded_at(self) -> int | None:
        """recorded_at (µs) of the oldest tail row, or None when the tail is empty."""
        ...

    def tail_stats(self) -> tuple[int, int | None]:
        """(number of tail rows, oldest recorded_at in µs or None)."""
        ...

    def tail_bytes(self) -> int:
        """Bytes the tail takes where it is stored."""
        ...

    # ---------------------------------------------------------------- index
    def insert_index(
        self,
        streams: Sequence[tuple[str, int, int]],
        hashes: Sequence[tuple[int, int]],
        *,
        replace: bool = False,
    ) -> None:
        """Index (stream_id, version, position) and (event_hash, position) rows."""
        ...

    def position_of_event(self, event_id: str) -> int | None:
        """The position the event-id index holds for an id's hash, or None."""
        ...

    def stream_positions(self, stream_id: str, after_version: int = 0) -> list[int]:
        """Positions of a stream's events after a version, in version order."""
        ...

    # ---------------------------------------------------------------- catalog
    def live_parts(self) -> list[CatalogRow]:
        """The live parts, in position order."""
        ...

    def add_part(self, part: Part) -> None:
        """Record a published part (inside the transaction that moves the sealed head)."""
        ...

    def replace_parts(self, old: Sequence[Part], new: Part, at_us: int) -> None:
        """Record that ``new`` replaces ``old`` (their files stay for a grace period)."""
        ...

    def replaced_parts(self) -> list[tuple[str, int]]:
        """(name, replaced_at µs) of every replaced part still catalogued."""
        ...

    def forget_part(self, name: str) -> None:
        """Drop a part's catalog row (a replaced part whose file is gone)."""
        ...

    def catalogued_names(self) -> set[str]:
        """Every name in the catalog, live or replaced."""
        ...


def iter_statements(script: str) -> Iterator[str]:
    """The non-empty statements of a ``;``-separated schema script."""
    for statement in script.split(";"):
        if statement.strip():
            yield statement


def event_hash(event_id: str) -> int:
    """The event-id index key: a signed 64-bit hash of the id (blake2b, so any text works)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
