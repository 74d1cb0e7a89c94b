"""The PostgreSQL tail: one commit protocol for writers on many machines.

The same tables as the SQLite tail (``eventlog.tails.sqlite``), in one schema of a
PostgreSQL database. Every writer process, on any host, connects to it; the parts
directory is shared (a network filesystem now, object storage later).

**The writer lock is the counters row.** A write transaction starts with
``SELECT ... FROM counters WHERE id = 1 FOR UPDATE`` and holds that row lock until it
commits or rolls back. So writers are serialized across processes and hosts, positions
are assigned from ``head`` densely (no sequence, no gaps on rollback), and commits
happen in position order: a transaction that assigned positions 11..12 commits before
the next writer can even read ``head``. At READ COMMITTED each statement after the lock
sees every commit before it.

**Why a catch-up reader never skips a position.** A reader's snapshot (REPEATABLE READ)
contains a commit only if that commit finished before the snapshot began. Commits finish
in position order (the row lock is released by the commit itself), so a snapshot that
holds position N holds every position below N: there is never a hole that a later commit
fills below what a subscriber has seen.

**Durability.** A COMMIT returns once PostgreSQL has flushed its WAL (the server's
``synchronous_commit``, on by default; with replicas, per its settings). A connection
lost during COMMIT leaves the outcome unknown to the writer: it reports a storage
error (never an acknowledgement), and a retry with the same command id is idempotent.

**Sealing** is done by whichever writer holds the lock: it publishes the part file,
then commits the catalog row, the sealed head and the deletion of the sealed tail rows
in one transaction. That commit is the publish; a file a crashed sealer left is not in
the catalog, so readers never see it, and the next writer's repair removes it.

Credentials never come from files the lake publishes: the URL in ``lake.toml`` carries no
password; libpq takes it from ``PGPASSWORD``, a passfile (``~/.pgpass``, ``PGPASSFILE``)
or a service file, and the standard ``PG*`` variables fill what the URL leaves out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from eventlog.errors import LakeNotFoundError, LedgerLakeError, StorageError
from eventlog.parts import Part
from eventlog.tails import META_KEYS, CatalogRow, StreamRow, TailRow, event_hash, iter_statements
from eventlog.tails.postgres_sql import (
    BUMP_STREAM,
    INSERT_COMMAND,
    INSERT_COMMAND_IF_NEW,
    INSERT_EVENT_INDEX,
    INSERT_PART,
    INSERT_STREAM_INDEX,
    INSERT_TAIL,
    LOCK_COUNTERS,
    SCHEMA,
    SELECT_LIVE,
    SELECT_METAS,
    SELECT_METAS_AND_VERSION,
    SELECT_STREAM_AND_HEADS,
    SELECT_TAIL_AFTER,
    SELECT_TAIL_AT,
    SELECT_TAIL_RANGE,
    SELECT_VERSIONS_IN,
    SETUP_LOCK,
    UPSERT_EVENT_INDEX,
    UPSERT_STREAM,
    UPSERT_STREAM_INDEX,
    check_url,
    redacted,
)


class PostgresTail:
    """One connection to the tail's schema; not shared between threads."""

    def __init__(self, url: str, schema: str, *, read_only: bool = False) -> None:
        self.url = check_url(url)
        self.schema = schema
        self.read_only = read_only
        self.has_catalog = True
        self._in_tx = False
        self.conn = self._connect()
        try:
            if read_only:
                self._check_exists()
            else:
                self._set_up()
        except BaseException:
            self.conn.close()
            raise

    # ---------------------------------------------------------------- connection
    def describe(self) -> str:
        """The database and schema, without a password."""
        return f"{redacted(self.url)} (schema {self.schema})"

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise self._error(exc, "cannot connect to") from None
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            conn.close()
            raise self._error(exc, "cannot set up the session on") from None
        return conn

    def _error(self, exc: BaseException, doing: str) -> LedgerLakeError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StorageError(f"{doing} the tail database {self.describe()}: {text}")

    def _live_conn(self) -> psycopg.Connection[Any]:
        """The connection, reconnected if the server went away since the last call."""
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()
        return self.conn

    def _check_exists(self) -> None:
        found = self._one(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{self._quoted_schema()}.counters",)
        )
        if not found[0]:
            raise LakeNotFoundError(
                f"no lake in the tail database {self.describe()}; create one with "
                "'ledgerlake init --tail ...' and a first append"
            )

    def _quoted_schema(self) -> str:
        return '"' + self.schema.replace('"', '""') + '"'

    def _set_up(self) -> None:
        with self.write(lock=False):
            self._exec("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
            self._exec(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            for statement in iter_statements(SCHEMA):
                self._exec(statement)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # ---------------------------------------------------------------- statements
    def _exec(self, query: Any, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        try:
            return self._live_conn().execute(query, params)
        except psycopg.OperationalError as exc:
            raise self._error(exc, "lost the connection to") from None

    def _one(self, query: Any, params: Sequence[Any] | None = None) -> tuple[Any, ...]:
        row = self._exec(query, params).fetchone()
        assert row is not None
        return tuple(row)

    def _all(self, query: Any, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._exec(query, params).fetchall()]

    def _many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if len(rows) == 1:
            self._exec(query, rows[0])
            return
        try:
            with self._live_conn().cursor() as cur:
                cur.executemany(query, rows)
        except psycopg.OperationalError as exc:
            raise self._error(exc, "lost the connection to") from None

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def write(self, *, lock: bool = True) -> Iterator[None]:
        """A write transaction holding the counters row lock: the writer lock of the lake."""
        if self.read_only:
            raise StorageError(f"{self.describe()} is open read-only; this command does not write")
        self._exec("BEGIN ISOLATION LEVEL READ COMMITTED")
        self._in_tx = True
        try:
            if lock:
                self._exec(LOCK_COUNTERS)
            yield None
        except BaseException as exc:
            self._in_tx = False
            with contextlib.suppress(psycopg.Error):
                if not self.conn.broken:
                    self.conn.execute("ROLLBACK")
            if isinstance(exc, psycopg.OperationalError):
                raise self._error(exc, "lost the connection to") from None
            if isinstance(exc, psycopg.Error):
                raise self._error(exc, "the transaction failed on") from None
            raise
        self._in_tx = False
        try:
            self.conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise StorageError(
                f"the commit on the tail database {self.describe()} did not answer "
                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}): it may or "
                "may not have been applied; nothing was acknowledged. Retrying with the same "
                "command id is safe"
            ) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction (REPEATABLE READ): one committed state for every query."""
        if self._in_tx:
            yield None
            return
        self._exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._in_tx = True
        try:
            yield None
        finally:
            self._in_tx = False
            with contextlib.suppress(psycopg.Error):
                if not self.conn.broken:
                    self.conn.execute("COMMIT")

    # ---------------------------------------------------------------- counters
    def meta(self, key: str) -> int:
        """One counter."""
        return self.metas()[key]

    def metas(self) -> dict[str, int]:
        """Every counter."""
        return dict(zip(META_KEYS, (int(v) for v in self._one(SELECT_METAS)), strict=True))

    def set_metas(self, values: dict[str, int]) -> None:
        """Set counters (inside a write transaction)."""
        if not values:
            return
        for key in values:
            if key not in META_KEYS:
                raise KeyError(f"unknown counter {key!r}")
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values
        )
        self._exec(
            sql.SQL("UPDATE counters SET {} WHERE id = 1").format(assignments),
            tuple(values.values()),
        )

    def set_meta(self, key: str, value: int) -> None:
        """Set one counter."""
        self.set_metas({key: value})

    def metas_and_versions(
        self, stream_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Every counter and the stored heads of some streams."""
        if len(stream_ids) == 1:
            row = self._one(SELECT_METAS_AND_VERSION, (stream_ids[0],))
            meta = dict(zip(META_KEYS, (int(v) for v in row[:-1]), strict=True))
            return meta, ({stream_ids[0]: int(row[-1])} if row[-1] is not None else {})
        return self.metas(), self.stream_versions(stream_ids)

    # ---------------------------------------------------------------- streams
    def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        """Stored heads of the given streams."""
        rows = self._all(
            "SELECT stream_id, version FROM streams WHERE stream_id = ANY(%s)",
            (sorted(set(stream_ids)),),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def stream_versions_arrow(self, ids_json: str) -> tuple[list[str], list[int]]:
        """(stream ids, versions) of the stored streams among a JSON array of ids."""
        rows = self._all(SELECT_VERSIONS_IN, (ids_json,))
        return [str(r[0]) for r in rows], [int(r[1]) for r in rows]

    def has_streams(self) -> bool:
        """Whether any stream head is stored."""
        return bool(self._one("SELECT EXISTS (SELECT 1 FROM streams)")[0])

    def stream_row(self, stream_id: str) -> StreamRow | None:
        """A stream's stored head and state."""
        rows = self._all(
            "SELECT version, state, state_version FROM streams WHERE stream_id = %s", (stream_id,)
        )
        return (int(rows[0][0]), rows[0][1], int(rows[0][2])) if rows else None

    def stream_row_and_heads(self, stream_id: str) -> tuple[int, int, StreamRow | None]:
        """(head, heads_head, the stream's row), in one query."""
        h, hh, version, state, state_version = self._one(SELECT_STREAM_AND_HEADS, (stream_id,))
        row = (int(version), state, int(state_version)) if version is not None else None
        return int(h), int(hh), row

    def upsert_streams(self, rows: Sequence[tuple[str, str, int, str | None, int]]) -> None:
        """Stream heads with their states."""
        self._many(UPSERT_STREAM, rows)

    def bump_streams(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Raise heads to at least the given versions."""
        self._many(BUMP_STREAM, rows)

    def stream_heads(self) -> dict[str, int]:
        """Every stored stream head."""
        return {str(r[0]): int(r[1]) for r in self._all("SELECT stream_id, version FROM streams")}

    def stream_count(self) -> int:
        """How many stream heads are stored."""
        return int(self._one("SELECT count(*) FROM streams")[0])

    # ---------------------------------------------------------------- commands
    def command(self, command_id: str) -> tuple[str, int, int] | None:
        """(stream_id, first, last position) of a processed command id."""
        rows = self._all(
            "SELECT stream_id, first_position, last_position FROM commands WHERE command_id = %s",
            (command_id,),
        )
        return (str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def insert_commands(
        self, rows: Sequence[tuple[str, str, int, int]], *, ignore_known: bool = False
    ) -> None:
        """Record processed command ids."""
        self._many(INSERT_COMMAND_IF_NEW if ignore_known else INSERT_COMMAND, rows)

    # ---------------------------------------------------------------- tail rows
    def insert_tail(self, rows: Sequence[TailRow]) -> None:
        """Insert committed events."""
        self._many(INSERT_TAIL, rows)

    def delete_tail(self, upto: int) -> None:
        """Delete sealed tail rows."""
        self._exec("DELETE FROM tail WHERE position <= %s", (upto,))

    def tail_rows(self, after: int, until: int | None = None) -> list[TailRow]:
        """Tail rows with position in (after, until]."""
        if until is None:
            return self._all(SELECT_TAIL_AFTER, (after,))
        return self._all(SELECT_TAIL_RANGE, (after, until))

    def tail_rows_between(self, first: int, last: int) -> list[TailRow]:
        """Tail rows with position in [first, last]."""
        return self._all(SELECT_TAIL_AT, (first, last))

    def oldest_tail_recorded_at(self) -> int | None:
        """recorded_at (µs) of the oldest tail row."""
        rows = self._all("SELECT recorded_at FROM tail ORDER BY position LIMIT 1")
        return int(rows[0][0]) if rows else None

    def tail_stats(self) -> tuple[int, int | None]:
        """(number of tail rows, oldest recorded_at)."""
        count, oldest = self._one("SELECT count(*), min(recorded_at) FROM tail")
        return int(count), (int(oldest) if oldest is not None else None)

    def tail_bytes(self) -> int:
        """Bytes of the schema's tables and indexes."""
        row = self._one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (self.schema,),
        )
        return int(row[0])

    # ---------------------------------------------------------------- index
    def insert_index(
        self,
        streams: Sequence[tuple[str, int, int]],
        hashes: Sequence[tuple[int, int]],
        *,
        replace: bool = False,
    ) -> None:
        """Index stream positions and event-id hashes."""
        self._many(UPSERT_STREAM_INDEX if replace else INSERT_STREAM_INDEX, streams)
        self._many(UPSERT_EVENT_INDEX if replace else INSERT_EVENT_INDEX, hashes)

    def position_of_event(self, event_id: str) -> int | None:
        """The position the event-id index holds for an id's hash."""
        rows = self._all(
            "SELECT position FROM event_index WHERE hash = %s", (event_hash(event_id),)
        )
        return int(rows[0][0]) if rows else None

    def stream_positions(self, stream_id: str, after_version: int = 0) -> list[int]:
        """Positions of a stream's events after a version."""
        rows = self._all(
            "SELECT position FROM stream_index WHERE stream_id = %s AND version > %s "
            "ORDER BY version",
            (stream_id, after_version),
        )
        return [int(r[0]) for r in rows]

    # ---------------------------------------------------------------- catalog
    def live_parts(self) -> list[CatalogRow]:
        """The live parts, in position order."""
        return [
            (str(n), int(f), int(la), str(d), int(b), str(h))
            for n, f, la, d, b, h in self._all(SELECT_LIVE)
        ]

    def add_part(self, part: Part) -> None:
        """Record a published part."""
        self._exec(
            INSERT_PART,
            (part.name, part.first, part.last, part.date, part.count, part.size, part.sha256),
        )

    def replace_parts(self, old: Sequence[Part], new: Part, at_us: int) -> None:
        """Record that ``new`` replaces ``old``."""
        self.add_part(new)
        self._many(
            "UPDATE parts SET replaced_at = %s WHERE name = %s AND replaced_at IS NULL",
            [(at_us, p.name) for p in old],
        )

    def replaced_parts(self) -> list[tuple[str, int]]:
        """(name, replaced_at µs) of every replaced part still catalogued."""
        rows = self._all("SELECT name, replaced_at FROM parts WHERE replaced_at IS NOT NULL")
        return [(str(n), int(t)) for n, t in rows]

    def forget_part(self, name: str) -> None:
        """Drop a part's catalog row."""
        self._exec("DELETE FROM parts WHERE name = %s", (name,))

    def catalogued_names(self) -> set[str]:
        """Every name in the catalog."""
        return {str(r[0]) for r in self._all("SELECT name FROM parts")}
