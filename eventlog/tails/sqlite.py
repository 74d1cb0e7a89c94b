"""The SQLite tail: ``<lake>/tail.sqlite``, for one machine.

It holds the newest committed events (the tail), the counters, the stream heads and
write-model states, the processed command ids, an index of stream positions and event
ids, and the catalog of live parts. Everything but the tail rows can be rebuilt from
the parts. WAL with ``synchronous=FULL``: a COMMIT is durable when it returns;
``BEGIN IMMEDIATE`` is the writer lock, across threads and processes of one machine
(the connection and its transactions: ``eventlog.tails.sqlite_session``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from eventlog.parts import Part
from eventlog.tails import META_KEYS, CatalogRow, StreamRow, TailRow, event_hash, iter_statements
from eventlog.tails.sqlite_session import connect, read_transaction, tail_error, write_transaction
from eventlog.tails.sqlite_sql import (
    BUMP_STREAM,
    INSERT_COMMAND,
    INSERT_PART,
    INSERT_TAIL,
    MIGRATE_META,
    REPLACE_PART,
    SCHEMA,
    SELECT_LIVE,
    SELECT_METAS,
    SELECT_METAS_AND_VERSION,
    SELECT_OLDEST_TAIL,
    SELECT_REPLACED,
    SELECT_STREAM_AND_HEADS,
    SELECT_STREAMS_IN,
    SELECT_TAIL_AT,
    SELECT_VERSIONS_IN,
    UPSERT_STREAM,
)

_SET_COUNTERS: dict[tuple[str, ...], str] = {}  # the UPDATE for each set of counters


def _counter(key: str) -> str:
    """A counter's column name, checked (never user input, but SQL is built from it)."""
    if key not in META_KEYS:
        raise KeyError(f"unknown counter {key!r}; expected one of {', '.join(META_KEYS)}")
    return key


class SqliteTail:
    """One connection to ``tail.sqlite``; not shared between threads or processes.

    ``read_only`` opens it for reading alone (``mode=ro``): no schema is created, no
    migration runs, and every write fails.
    """

    def __init__(
        self, path: Path, *, busy_timeout_s: float = 60.0, read_only: bool = False
    ) -> None:
        self.path = path
        self.read_only = read_only
        try:
            self.conn = connect(path, read_only, busy_timeout_s)
            try:
                self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
                self.has_catalog = bool(
                    self.conn.execute(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'parts'"
                    ).fetchone()[0]
                )
                if read_only:
                    self.conn.execute(SELECT_METAS).fetchone()
                else:
                    self._set_up()
            except BaseException:
                self.conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise tail_error(path, exc) from None

    def _set_up(self) -> None:
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        with self.write():
            for statement in iter_statements(SCHEMA):
                self.conn.execute(statement)
            old = self.conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()[0]
            if old:
                self.conn.execute(MIGRATE_META)
                self.conn.execute("DROP TABLE meta")
            self.conn.execute("INSERT OR IGNORE INTO counters (id) VALUES (1)")
        self.has_catalog = True

    def describe(self) -> str:
        """The tail's file."""
        return str(self.path)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def write(self) -> AbstractContextManager[None]:
        """A write transaction: ``BEGIN IMMEDIATE`` serializes writers across processes.

        SQLite failures (a full disk, a read-only file, a damaged file) leave as our
        errors: nothing of the transaction was committed.
        """
        return write_transaction(self.conn, self.path, self.read_only)

    def snapshot(self) -> AbstractContextManager[None]:
        """A read transaction: every query inside sees the same committed state."""
        return read_transaction(self.conn)

    def meta(self, key: str) -> int:
        """One counter (see META_KEYS)."""
        column = _counter(key)
        row = self.conn.execute(f"SELECT {column} FROM counters").fetchone()  # noqa: S608
        return int(row[0])

    def metas(self) -> dict[str, int]:
        """Every counter, in one query."""
        return dict(zip(META_KEYS, self.conn.execute(SELECT_METAS).fetchone(), strict=True))

    def metas_and_versions(
        self, stream_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Every counter and the stored heads of some streams, in one query."""
        if len(stream_ids) == 1:  # one command: one statement
            row = self.conn.execute(SELECT_METAS_AND_VERSION, (stream_ids[0],)).fetchone()
            meta = dict(zip(META_KEYS, row, strict=False))
            return meta, ({stream_ids[0]: int(row[-1])} if row[-1] is not None else {})
        return self.metas(), self.stream_versions(stream_ids)

    def stream_row_and_heads(self, stream_id: str) -> tuple[int, int, StreamRow | None]:
        """(head, heads_head, the stream's row as ``stream_row`` gives it), in one query."""
        h, hh, version, state, state_version = self.conn.execute(
            SELECT_STREAM_AND_HEADS, (stream_id,)
        ).fetchone()
        row = (int(version), state, int(state_version)) if version is not None else None
        return int(h), int(hh), row

    def set_metas(self, values: dict[str, int]) -> None:
        """Set several counters (inside a write transaction): one row, one statement."""
        if not values:
            return
        keys = tuple(values)
        sql = _SET_COUNTERS.get(keys)
        if sql is None:
            assignments = ", ".join(f"{_counter(k)} = ?" for k in keys)
            sql = _SET_COUNTERS[keys] = f"UPDATE counters SET {assignments}"  # noqa: S608
        self.conn.execute(sql, tuple(values.values()))

    def oldest_tail_recorded_at(self) -> int | None:
        """recorded_at (microseconds) of the oldest tail row, or None when the tail is empty."""
        row = self.conn.execute(SELECT_OLDEST_TAIL).fetchone()
        return int(row[0]) if row else None

    def set_meta(self, key: str, value: int) -> None:
        """Set one counter (inside a write transaction)."""
        self.set_metas({key: value})

    def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        """Current versions of the given streams (absent streams are left out)."""
        # Sorted ids walk the primary-key B-tree in order (much faster than random probes).
        ids, versions = self.stream_versions_arrow(json.dumps(sorted(set(stream_ids))))
        return dict(zip(ids, versions, strict=True))

    def stream_versions_arrow(self, ids_json: str) -> tuple[list[str], list[int]]:
        """(stream ids, versions) of the stored streams among a JSON array of ids."""
        found = self.conn.execute(SELECT_VERSIONS_IN, (ids_json,)).fetchall()
        return [r[0] for r in found], [int(r[1]) for r in found]

    def has_streams(self) -> bool:
        """Whether any stream head is stored (bulk-only lakes have none until catch-up)."""
        return bool(self.conn.execute("SELECT EXISTS (SELECT 1 FROM streams)").fetchone()[0])

    def stream_row(self, stream_id: str) -> StreamRow | None:
        """(version, state JSON, state_version) of a stream, or None."""
        row = self.conn.execute(
            "SELECT version, state, state_version FROM streams WHERE stream_id = ?", (stream_id,)
        ).fetchone()
        return (int(row[0]), row[1], int(row[2])) if row else None

    def stream_rows(self, stream_ids: Sequence[str]) -> dict[str, StreamRow]:
        """(version, state JSON, state_version) of some streams, in one query."""
        found = self.conn.execute(SELECT_STREAMS_IN, (json.dumps(sorted(set(stream_ids))),))
        return {str(r[0]): (int(r[1]), r[2], int(r[3])) for r in found}

    def command(self, command_id: str) -> tuple[str, int, int] | None:
        """(stream_id, first, last position) of a processed command id, or None."""
        row = self.conn.execute(
            "SELECT stream_id, first_position, last_position FROM commands WHERE command_id = ?",
            (command_id,),
        ).fetchone()
        return (row[0], int(row[1]), int(row[2])) if row else None

    def tail_rows(self, after: int, until: int | None = None) -> list[TailRow]:
        """Tail rows with position in (after, until], in position order."""
        if until is None:
            return self.conn.execute(
                "SELECT * FROM tail WHERE position > ? ORDER BY position", (after,)
            ).fetchall()
        return self.conn.execute(
            "SELECT * FROM tail WHERE position > ? AND position <= ? ORDER BY position",
            (after, until),
        ).fetchall()

    def tail_stats(self) -> tuple[int, int | None]:
        """(number of tail rows, oldest recorded_at in microseconds or None)."""
        row = self.conn.execute("SELECT count(*), min(recorded_at) FROM tail").fetchone()
        return int(row[0]), row[1]

    def insert_index(
        self,
        streams: Sequence[tuple[str, int, int]],
        hashes: Sequence[tuple[int, int]],
        *,
        replace: bool = False,
    ) -> None:
        """Index (stream_id, version, position) and (event_hash, position) rows."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        for sql, rows in (
            (f"{verb} INTO stream_index VALUES (?, ?, ?)", streams),
            (f"{verb} INTO event_index VALUES (?, ?)", hashes),
        ):
            if len(rows) == 1:  # one command's event: a plain execute costs less
                self.conn.execute(sql, rows[0])
            elif rows:
                self.conn.executemany(sql, rows)

    def position_of_event(self, event_id: str) -> int | None:
        """The position the event-id index holds for an id's hash, or None."""
        row = self.conn.execute(
            "SELECT position FROM event_index WHERE hash = ?", (event_hash(event_id),)
        ).fetchone()
        return int(row[0]) if row else None

    def stream_positions(self, stream_id: str, after_version: int = 0) -> list[int]:
        """Positions of a stream's events after a version, in version order."""
        return [
            int(r[0])
            for r in self.conn.execute(
                "SELECT position FROM stream_index WHERE stream_id = ? AND version > ? "
                "ORDER BY version",
                (stream_id, after_version),
            )
        ]

    # ---------------------------------------------------------------- writes
    def upsert_streams(self, rows: Sequence[tuple[str, str, int, str | None, int]]) -> None:
        """Stream heads with their states (a None state keeps the stored one)."""
        if len(rows) == 1:
            self.conn.execute(UPSERT_STREAM, rows[0])
        else:
            self.conn.executemany(UPSERT_STREAM, rows)

    def bump_streams(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Raise heads to at least the given versions (rows in key order: B-tree appends)."""
        self.conn.executemany(BUMP_STREAM, rows)

    def stream_heads(self) -> dict[str, int]:
        """Every stored stream head."""
        rows = self.conn.execute("SELECT stream_id, version FROM streams").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def stream_count(self) -> int:
        """How many stream heads are stored."""
        return int(self.conn.execute("SELECT count(*) FROM streams").fetchone()[0])

    def insert_commands(
        self, rows: Sequence[tuple[str, str, int, int]], *, ignore_known: bool = False
    ) -> None:
        """Record processed command ids."""
        sql = (
            "INSERT OR IGNORE INTO commands VALUES (?, ?, ?, ?)" if ignore_known else INSERT_COMMAND
        )
        if len(rows) == 1:
            self.conn.execute(sql, rows[0])
        elif rows:
            self.conn.executemany(sql, rows)

    def insert_tail(self, rows: Sequence[TailRow]) -> None:
        """Insert committed events."""
        if len(rows) == 1:
            self.conn.execute(INSERT_TAIL, rows[0])
        else:
            self.conn.executemany(INSERT_TAIL, rows)

    def delete_tail(self, upto: int) -> None:
        """Delete the tail rows a seal moved into parts."""
        self.conn.execute("DELETE FROM tail WHERE position <= ?", (upto,))

    def tail_rows_between(self, first: int, last: int) -> list[TailRow]:
        """Tail rows with position in [first, last]."""
        return self.conn.execute(SELECT_TAIL_AT, (first, last)).fetchall()

    def tail_bytes(self) -> int:
        """Bytes of ``tail.sqlite`` and its WAL files."""
        return sum(
            f.stat().st_size for f in self.path.parent.glob(self.path.name + "*") if f.is_file()
        )

    # ---------------------------------------------------------------- catalog
    def live_parts(self) -> list[CatalogRow]:
        """The live parts, in position order (none in a lake made before the catalog)."""
        if not self.has_catalog:
            return []
        return [
            (str(n), int(f), int(la), str(d), int(b), str(h))
            for n, f, la, d, b, h in self.conn.execute(SELECT_LIVE)
        ]

    def add_part(self, part: Part) -> None:
        """Record a published part."""
        self.conn.execute(
            INSERT_PART,
            (part.name, part.first, part.last, part.date, part.count, part.size, part.sha256),
        )

    def replace_parts(self, old: Sequence[Part], new: Part, at_us: int) -> None:
        """Record that ``new`` replaces ``old``."""
        self.add_part(new)
        for part in old:
            self.conn.execute(REPLACE_PART, (at_us, part.name))

    def replaced_parts(self) -> list[tuple[str, int]]:
        """(name, replaced_at µs) of every replaced part still catalogued."""
        if not self.has_catalog:
            return []
        return [(str(n), int(t)) for n, t in self.conn.execute(SELECT_REPLACED)]

    def forget_part(self, name: str) -> None:
        """Drop a part's catalog row."""
        self.conn.execute("DELETE FROM parts WHERE name = ?", (name,))

    def catalogued_names(self) -> set[str]:
        """Every name in the catalog."""
        if not self.has_catalog:
            return set()
        return {str(r[0]) for r in self.conn.execute("SELECT name FROM parts")}
