"""The key store in a PostgreSQL tail's schema: the same two tables as the SQLite one.

Destroying a key updates its row; PostgreSQL keeps the old row version as a dead tuple
until ``VACUUM`` (run by ``purge``, which the erasure cascade calls) and in its WAL and
base backups for as long as they are kept: in production a KMS holds the keys instead
(docs/erasure.md).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from typing import Any

from eventlog.tails.postgres import PostgresTail
from eventlog.tails.postgres_sql import SETUP_LOCK

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS subject_keys (
        key_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL UNIQUE,
        key BYTEA,
        created_at BIGINT NOT NULL,
        destroyed_at BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS subject_streams (
        stream_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL
    )""",
)
INSERT_KEY = (
    "INSERT INTO subject_keys (key_id, subject, key, created_at) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (subject) DO NOTHING"
)
KEYS_OF_SUBJECTS = "SELECT subject, key_id, key FROM subject_keys WHERE subject = ANY(%s)"
KEYS_BY_ID = "SELECT key_id, key FROM subject_keys WHERE key_id = ANY(%s)"
STREAM_KEYS = "SELECT stream_id, key_id FROM subject_streams WHERE stream_id = ANY(%s)"
BIND = (
    "INSERT INTO subject_streams (stream_id, key_id) VALUES (%s, %s) "
    "ON CONFLICT (stream_id) DO UPDATE SET key_id = EXCLUDED.key_id"
)
SUBJECT = "SELECT key_id, key IS NULL FROM subject_keys WHERE subject = %s"
DESTROY = (
    "UPDATE subject_keys SET key = NULL, destroyed_at = %s WHERE subject = %s AND key IS NOT NULL"
)


def _key(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


class PostgresKeyStore:
    """The key store on the PostgreSQL tail's session (its transactions and pipeline)."""

    def __init__(self, tail: PostgresTail) -> None:
        self.tail = tail
        self.db = tail.db
        self._ready = False

    def _exists(self) -> bool:
        if not self._ready:
            quoted = '"' + self.tail.schema.replace('"', '""') + '"'
            found = self.db.one(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{quoted}.subject_streams",)
            )
            self._ready = bool(found[0])
        return self._ready

    def _create(self) -> None:
        """Create the tables (under the set-up lock: concurrent creators wait)."""
        if self._exists():
            return
        with self.tail.write(lock=False):
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
            for statement in SCHEMA:
                self.db.execute(statement)
        self._ready = True

    def keys_for_subjects(self, subjects: Sequence[str]) -> dict[str, tuple[str, bytes | None]]:
        """See ``KeyStore.keys_for_subjects``."""
        wanted = sorted(set(subjects))
        found: dict[str, tuple[str, bytes | None]] = {}
        if self._exists():
            for s, k, v in self.db.all(KEYS_OF_SUBJECTS, (wanted,)):
                found[s] = (k, _key(v))
        missing = [s for s in wanted if s not in found]
        if not missing:
            return found
        self._create()
        now = int(time.time() * 1_000_000)
        with self.tail.write(lock=False):
            self.db.write(
                INSERT_KEY, [(secrets.token_hex(8), s, os.urandom(32), now) for s in missing]
            )
            for s, k, v in self.db.all(KEYS_OF_SUBJECTS, (missing,)):
                found[s] = (k, _key(v))
        return found

    def bind(self, pairs: Sequence[tuple[str, str]]) -> None:
        """See ``KeyStore.bind`` (queued with the append's other writes)."""
        if pairs:
            self._create_inside()
            self.db.write(BIND, list(pairs))

    def _create_inside(self) -> None:
        if not self._exists():  # a stream binding always follows a key: the tables exist
            raise AssertionError("subject_streams is missing although a key was made")

    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, bytes | None]:
        """See ``KeyStore.keys_by_id``."""
        if not key_ids or not self._exists():
            return {}
        return {k: _key(v) for k, v in self.db.all(KEYS_BY_ID, (sorted(set(key_ids)),))}

    def stream_keys(self, stream_ids: Sequence[str]) -> dict[str, str]:
        """See ``KeyStore.stream_keys``."""
        if not stream_ids or not self._exists():
            return {}
        return dict(self.db.all(STREAM_KEYS, (list(stream_ids),)))

    def subject(self, subject: str) -> tuple[str, bool] | None:
        """See ``KeyStore.subject``."""
        if not self._exists():
            return None
        rows = self.db.all(SUBJECT, (subject,))
        return (rows[0][0], bool(rows[0][1])) if rows else None

    def destroy(self, subject: str, at_us: int) -> tuple[str, bool] | None:
        """See ``KeyStore.destroy``; ``purge`` vacuums the dead row version away."""
        known = self.subject(subject)
        if known is None:
            return None
        with self.tail.write(lock=False):
            self.db.write(DESTROY, [(at_us, subject)])
        self.purge()
        return known

    def has_keys(self) -> bool:
        """See ``KeyStore.has_keys``."""
        return self._exists() and bool(self.db.one("SELECT count(*) FROM subject_keys")[0])

    def last_destroyed(self) -> int:
        """See ``KeyStore.last_destroyed``."""
        if not self._exists():
            return 0
        return int(self.db.one("SELECT coalesce(max(destroyed_at), 0) FROM subject_keys")[0])

    def purge(self) -> None:
        """``VACUUM subject_keys``: the destroyed keys' dead row versions go."""
        self.db.execute("VACUUM subject_keys")
