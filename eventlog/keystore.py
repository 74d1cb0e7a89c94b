"""The key store: one AES-256 key per data subject, beside the tail (``tail.sqlite``).

A key is a row ``(key_id, subject, key)``; forgetting a subject sets ``key`` to NULL and
stamps ``destroyed_at`` (the row stays, so a second forget is recognised and readers
know the key is gone, not missing). ``subject_streams`` binds each stream to the key
its personal fields are encrypted with. New keys commit in a short transaction of their
own before the log's writer lock (a key that outlives a failed append encrypts nothing
and harms nothing); stream bindings commit with the append. In production a KMS
holds the keys instead (see docs/erasure.md): this module is the one to replace.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from eventlog.errors import StorageError

KEYSTORE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS subject_keys (
        key_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL UNIQUE,
        key BLOB,
        created_at INTEGER NOT NULL,
        destroyed_at INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS subject_streams (
        stream_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL
    )""",
)
INSERT_KEY = (
    "INSERT OR IGNORE INTO subject_keys (key_id, subject, key, created_at) VALUES (?, ?, ?, ?)"
)
SELECT_KEYS_OF_SUBJECTS = "SELECT subject, key_id, key FROM subject_keys WHERE subject IN ({})"
SELECT_KEYS_BY_ID = "SELECT key_id, key FROM subject_keys WHERE key_id IN ({})"
SELECT_STREAM_KEYS = "SELECT stream_id, key_id FROM subject_streams WHERE stream_id IN ({})"
BIND_STREAM = "INSERT OR REPLACE INTO subject_streams (stream_id, key_id) VALUES (?, ?)"
SELECT_SUBJECT = "SELECT key_id, key IS NULL, destroyed_at FROM subject_keys WHERE subject = ?"
DESTROY_KEY = (
    "UPDATE subject_keys SET key = NULL, destroyed_at = ? WHERE subject = ? AND key IS NOT NULL"
)
COUNT_KEYS = "SELECT count(*) FROM subject_keys"
LAST_DESTROYED = "SELECT coalesce(max(destroyed_at), 0) FROM subject_keys"
_CHUNK = 500  # bound parameters per IN (...) query


class KeyStore(Protocol):
    """Where the subjects' keys live: the tail's database here, a KMS in production."""

    def keys_for_subjects(self, subjects: Sequence[str]) -> dict[str, tuple[str, bytes | None]]:
        """(key id, key or None when destroyed) per subject, creating the missing keys."""
        ...

    def bind(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Bind ``(stream id, key id)`` pairs, inside the append's write transaction."""
        ...

    def subject(self, subject: str) -> tuple[str, bool] | None:
        """(key id, destroyed) of a known subject, or None."""
        ...

    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, bytes | None]:
        """The key of each known key id (None: destroyed)."""
        ...

    def stream_keys(self, stream_ids: Sequence[str]) -> dict[str, str]:
        """The key id each bound stream encrypts with."""
        ...

    def destroy(self, subject: str, at_us: int) -> tuple[str, bool] | None:
        """Destroy a subject's key: (key id, True when it was already gone) or None if unknown."""
        ...

    def has_keys(self) -> bool:
        """Whether any key was ever made (a lake written before encryption has none)."""
        ...

    def last_destroyed(self) -> int:
        """When the latest key was destroyed (µs), 0 if none ever was."""
        ...

    def purge(self) -> None:
        """Rewrite the store's storage so no destroyed key's bytes linger."""
        ...


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


class SqliteKeyStore:
    """The key store in the tail's database, on the tail's own connection.

    New keys commit in a short transaction of their own before the log's writer lock;
    stream bindings are written inside the append's transaction (``bind``).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, read_only: bool = False) -> None:
        self.conn = conn
        self.path = path
        self.read_only = read_only
        self._ready = False

    def _exists(self) -> bool:
        if not self._ready:
            self._ready = bool(
                self.conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'subject_streams'"
                ).fetchone()[0]
            )
        return self._ready

    def _select(self, sql: str, items: Sequence[str]) -> list[tuple[Any, ...]]:
        if not items or not self._exists():
            return []
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(items):
            rows.extend(self.conn.execute(sql.format(",".join("?" * len(chunk))), list(chunk)))
        return rows

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction on the key tables (made when missing): committed when the
        block ends, rolled back when it raises; SQLite's failures become StorageError."""
        if self.read_only:
            raise StorageError(f"{self.path} is open read-only; this command does not write")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._exists():
                    for statement in KEYSTORE_SCHEMA:
                        self.conn.execute(statement)
                    self._ready = True
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot write the key store in {self.path}: {exc}") from None

    def keys_for_subjects(self, subjects: Sequence[str]) -> dict[str, tuple[str, bytes | None]]:
        """See ``KeyStore.keys_for_subjects``."""
        wanted = sorted(set(subjects))
        found = {
            str(s): (str(k), bytes(v) if v is not None else None)
            for s, k, v in self._select(SELECT_KEYS_OF_SUBJECTS, wanted)
        }
        missing = [s for s in wanted if s not in found]
        if not missing:
            return found
        now = int(time.time() * 1_000_000)
        with self._transaction():
            self.conn.executemany(
                INSERT_KEY, [(secrets.token_hex(8), s, os.urandom(32), now) for s in missing]
            )
            for s, k, v in self._select(SELECT_KEYS_OF_SUBJECTS, missing):
                found[str(s)] = (str(k), bytes(v) if v is not None else None)
        return found

    def bind(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Bind streams to key ids, inside the caller's (the append's) write transaction."""
        if pairs:
            if not self._exists():
                for statement in KEYSTORE_SCHEMA:
                    self.conn.execute(statement)
                self._ready = True
            self.conn.executemany(BIND_STREAM, pairs)

    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, bytes | None]:
        """See ``KeyStore.keys_by_id``."""
        rows = self._select(SELECT_KEYS_BY_ID, sorted(set(key_ids)))
        return {str(k): bytes(v) if v is not None else None for k, v in rows}

    def stream_keys(self, stream_ids: Sequence[str]) -> dict[str, str]:
        """See ``KeyStore.stream_keys``."""
        return {str(s): str(k) for s, k in self._select(SELECT_STREAM_KEYS, list(stream_ids))}

    def subject(self, subject: str) -> tuple[str, bool] | None:
        """(key id, destroyed) of a known subject, or None."""
        if not self._exists():
            return None
        row = self.conn.execute(SELECT_SUBJECT, (subject,)).fetchone()
        return None if row is None else (str(row[0]), bool(row[1]))

    def destroy(self, subject: str, at_us: int) -> tuple[str, bool] | None:
        """See ``KeyStore.destroy``: the old key's cell is zeroed (``secure_delete``) and the
        WAL checkpointed and truncated, so the key's bytes do not linger in the file."""
        if not self._exists():
            return None
        self.conn.execute("PRAGMA secure_delete=ON")
        with self._transaction():
            row = self.conn.execute(SELECT_SUBJECT, (subject,)).fetchone()
            if row is not None:
                self.conn.execute(DESTROY_KEY, (at_us, subject))
        if row is None:
            return None
        self.purge_wal()
        return str(row[0]), bool(row[1])

    def has_keys(self) -> bool:
        """See ``KeyStore.has_keys``."""
        return self._exists() and bool(self.conn.execute(COUNT_KEYS).fetchone()[0])

    def last_destroyed(self) -> int:
        """See ``KeyStore.last_destroyed``."""
        return int(self.conn.execute(LAST_DESTROYED).fetchone()[0]) if self._exists() else 0

    def purge_wal(self) -> None:
        """Checkpoint the WAL into the database and truncate it (old pages leave the WAL)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def purge(self) -> None:
        """VACUUM the tail's database (``secure_delete`` on) and truncate its WAL."""
        self.conn.execute("PRAGMA secure_delete=ON")
        self.purge_wal()
        self.conn.execute("VACUUM")
        self.purge_wal()
