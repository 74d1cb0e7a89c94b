"""The SQLite write-ahead tail and stream index.

``<lake>/tail.sqlite`` holds the newest committed events (the tail), the stream heads
and write-model states, the processed command ids, and an index of stream positions
and event ids. Everything but the tail rows can be rebuilt from the parts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from eventlog import catalog
from eventlog.errors import IntegrityError, LedgerLakeError, StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head INTEGER NOT NULL DEFAULT 0,
    sealed_head INTEGER NOT NULL DEFAULT 0,
    index_head INTEGER NOT NULL DEFAULT 0,
    ids_head INTEGER NOT NULL DEFAULT 0,
    heads_head INTEGER NOT NULL DEFAULT 0,
    last_recorded_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tail (
    position INTEGER PRIMARY KEY,
    stream_type TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT,
    state_version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_index (
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_index (hash INTEGER PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    first_position INTEGER NOT NULL,
    last_position INTEGER NOT NULL
) WITHOUT ROWID;
"""

META_KEYS = ("head", "sealed_head", "index_head", "ids_head", "heads_head", "last_recorded_at")
INSERT_TAIL = "INSERT INTO tail VALUES (?,?,?,?,?,?,?,?,?,?,?)"
INSERT_COMMAND = "INSERT INTO commands VALUES (?, ?, ?, ?)"
UPSERT_STREAM = """
INSERT INTO streams (stream_id, stream_type, version, state, state_version)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (stream_id) DO UPDATE SET
    version = excluded.version,
    state = COALESCE(excluded.state, streams.state),
    state_version = CASE WHEN excluded.state IS NULL THEN streams.state_version
                         ELSE excluded.state_version END
"""
SELECT_VERSIONS_IN = (
    "SELECT s.stream_id, s.version FROM json_each(?) AS j "
    "JOIN streams AS s ON s.stream_id = j.value"
)
SELECT_METAS = f"SELECT {', '.join(META_KEYS)} FROM counters"  # noqa: S608 (constants)
SELECT_STREAM_AND_HEADS = """
SELECT c.head, c.heads_head, s.version, s.state, s.state_version
FROM counters AS c LEFT JOIN streams AS s ON s.stream_id = ?
"""
SELECT_METAS_AND_VERSION = (
    f"SELECT {', '.join('c.' + k for k in META_KEYS)}, s.version "  # noqa: S608 (constants)
    "FROM counters AS c LEFT JOIN streams AS s ON s.stream_id = ?"
)
# A lake from before the counters table kept them as key/value rows in ``meta``; event
# ids were indexed as far as ``index_head`` then.
MIGRATE_META = """
INSERT OR IGNORE INTO counters
    (id, head, sealed_head, index_head, ids_head, heads_head, last_recorded_at)
SELECT 1,
    coalesce(max(value) FILTER (WHERE key = 'head'), 0),
    coalesce(max(value) FILTER (WHERE key = 'sealed_head'), 0),
    coalesce(max(value) FILTER (WHERE key = 'index_head'), 0),
    coalesce(max(value) FILTER (WHERE key = 'ids_head'),
             max(value) FILTER (WHERE key = 'index_head'), 0),
    coalesce(max(value) FILTER (WHERE key = 'heads_head'), 0),
    coalesce(max(value) FILTER (WHERE key = 'last_recorded_at'), 0)
FROM meta
"""
SELECT_OLDEST_TAIL = "SELECT recorded_at FROM tail ORDER BY position LIMIT 1"
SELECT_TAIL_AT = "SELECT * FROM tail WHERE position >= ? AND position <= ? ORDER BY position"
BUMP_STREAM = """
INSERT INTO streams (stream_id, stream_type, version) VALUES (?, ?, ?)
ON CONFLICT (stream_id) DO UPDATE SET version = MAX(streams.version, excluded.version)
"""


def event_hash(event_id: str) -> int:
    """The event-id index key: a signed 64-bit hash of the id (blake2b, so any text works)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_SET_COUNTERS: dict[tuple[str, ...], str] = {}  # the UPDATE for each set of counters


def _counter(key: str) -> str:
    """A counter's column name, checked (never user input, but SQL is built from it)."""
    if key not in META_KEYS:
        raise KeyError(f"unknown counter {key!r}; expected one of {', '.join(META_KEYS)}")
    return key


def tail_error(path: Path, exc: BaseException) -> LedgerLakeError:
    """What a SQLite failure on the tail means, as one of our errors with its exit code."""
    text = str(exc)
    if isinstance(exc, OSError) or "disk is full" in text or "readonly" in text:
        return StorageError(f"cannot write {path}: {text}; nothing was committed")
    if "unable to open" in text:
        return StorageError(f"cannot open {path}: {text}")
    if "locked" in text or "busy" in text:
        return StorageError(f"{path} stayed locked by another writer: {text}")
    return IntegrityError(
        f"{path} is damaged ({text}); it holds the newest events: restore it from a backup, "
        "or, if it was lost after a seal, move it away and run 'ledgerlake repair' to "
        "rebuild it from the parts"
    )


def _connect(path: Path, read_only: bool, busy_timeout_s: float) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(
            path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False
        )
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    if not os.access(path.parent, os.W_OK):
        # A read-only filesystem: SQLite cannot make the WAL's shared-memory file, so the
        # file is opened as immutable (nobody can be writing it there either).
        uri += "&immutable=1"
    return sqlite3.connect(
        uri, uri=True, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False
    )


class Tail:
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
            self.conn = _connect(path, read_only, busy_timeout_s)
            try:
                self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
                self.has_catalog = catalog.has_catalog(self.conn)
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
            for statement in (SCHEMA + catalog.SCHEMA).split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            old = self.conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()[0]
            if old:
                self.conn.execute(MIGRATE_META)
                self.conn.execute("DROP TABLE meta")
            self.conn.execute("INSERT OR IGNORE INTO counters (id) VALUES (1)")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` serializes writers across processes.

        SQLite failures (a full disk, a read-only file, a damaged file) leave as our
        errors: nothing of the transaction was committed.
        """
        if self.read_only:
            raise StorageError(f"{self.path} is open read-only; this command does not write")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise tail_error(self.path, exc) from None
        try:
            yield self.conn
        except BaseException as exc:
            if self.conn.in_transaction:
                # SQLite may already have rolled back (a full disk does that)
                with contextlib.suppress(sqlite3.DatabaseError):
                    self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise tail_error(self.path, exc) from None
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
                raise StorageError(f"cannot write the lake: {exc}; nothing was committed") from None
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise tail_error(self.path, exc) from None

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        if self.conn.in_transaction:  # already inside a read or write transaction
            yield self.conn
            return
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

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

    def stream_row_and_heads(
        self, stream_id: str
    ) -> tuple[int, int, tuple[int, str | None, int] | None]:
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

    def stream_row(self, stream_id: str) -> tuple[int, str | None, int] | None:
        """(version, state JSON, state_version) of a stream, or None."""
        row = self.conn.execute(
            "SELECT version, state, state_version FROM streams WHERE stream_id = ?", (stream_id,)
        ).fetchone()
        return (int(row[0]), row[1], int(row[2])) if row else None

    def command(self, command_id: str) -> tuple[str, int, int] | None:
        """(stream_id, first, last position) of a processed command id, or None."""
        row = self.conn.execute(
            "SELECT stream_id, first_position, last_position FROM commands WHERE command_id = ?",
            (command_id,),
        ).fetchone()
        return (row[0], int(row[1]), int(row[2])) if row else None

    def tail_rows(self, after: int, until: int | None = None) -> list[tuple[Any, ...]]:
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
