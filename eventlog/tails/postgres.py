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

**Round trips.** Statements reach the server through ``PgSession``
(``eventlog.tails.postgres_session``): inside a write transaction the statements that
return nothing are pipelined and sent with the next read or the COMMIT, so one command's
commit holds the lock for three round trips, not one per statement.

Credentials never come from files the lake publishes: the URL in ``lake.toml`` carries no
password; libpq takes it from ``PGPASSWORD``, a passfile (``~/.pgpass``, ``PGPASSFILE``)
or a service file, and the standard ``PG*`` variables fill what the URL leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql

from eventlog.errors import LakeNotFoundError
from eventlog.parts import Part
from eventlog.tails import META_KEYS, CatalogRow, StreamRow, TailRow, event_hash, iter_statements
from eventlog.tails.postgres_session import PgSession
from eventlog.tails.postgres_sql import (
    BUMP_STREAM,
    INSERT_COMMAND,
    INSERT_COMMAND_IF_NEW,
    INSERT_EVENT_INDEX,
    INSERT_PART,
    INSERT_STREAM_INDEX,
    INSERT_TAIL,
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
)

_SET_COUNTERS: dict[tuple[str, ...], str] = {}  # the UPDATE for each set of counters


class PostgresTail:
    """One connection to the tail's schema (``PgSession``); not shared between threads."""

    def __init__(self, url: str, schema: str, *, read_only: bool = False) -> None:
        self.db = PgSession(url, schema, read_only=read_only)
        self.url, self.schema, self.read_only = self.db.url, schema, read_only
        self.has_catalog = True
        try:
            if read_only:
                self._check_exists()
            else:
                self._set_up()
        except BaseException:
            self.db.close()
            raise

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The psycopg connection (tests reach the server through it)."""
        return self.db.conn

    def describe(self) -> str:
        """The database and schema, without a password."""
        return self.db.describe()

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _check_exists(self) -> None:
        quoted = '"' + self.schema.replace('"', '""') + '"'
        if not self.db.one("SELECT to_regclass(%s) IS NOT NULL", (f"{quoted}.counters",))[0]:
            raise LakeNotFoundError(
                f"no lake in the tail database {self.describe()}; create one with "
                "'ledgerlake init --tail ...' and a first append"
            )

    def _set_up(self) -> None:
        with self.write(lock=False):
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
            self.db.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            for statement in iter_statements(SCHEMA):
                self.db.execute(statement)

    def write(self, *, lock: bool = True) -> AbstractContextManager[None]:
        """A write transaction holding the counters row lock: the writer lock of the lake."""
        return self.db.transaction(lock=lock)

    def snapshot(self) -> AbstractContextManager[None]:
        """A read transaction (REPEATABLE READ): one committed state for every query."""
        return self.db.snapshot()

    # ---------------------------------------------------------------- counters
    def meta(self, key: str) -> int:
        """One counter."""
        return self.metas()[key]

    def metas(self) -> dict[str, int]:
        """Every counter."""
        return dict(zip(META_KEYS, (int(v) for v in self.db.one(SELECT_METAS)), strict=True))

    def set_metas(self, values: dict[str, int]) -> None:
        """Set counters (inside a write transaction): one statement, cached per key set."""
        if not values:
            return
        keys = tuple(values)
        query = _SET_COUNTERS.get(keys)
        if query is None:
            for key in keys:
                if key not in META_KEYS:
                    raise KeyError(f"unknown counter {key!r}")
            assignments = ", ".join(f"{k} = %s" for k in keys)  # checked names, no input
            query = _SET_COUNTERS[keys] = f"UPDATE counters SET {assignments} WHERE id = 1"  # noqa: S608
        self.db.write(query, [tuple(values.values())])

    def set_meta(self, key: str, value: int) -> None:
        """Set one counter."""
        self.set_metas({key: value})

    def metas_and_versions(
        self, stream_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Every counter and the stored heads of some streams."""
        if len(stream_ids) == 1:
            row = self.db.one(SELECT_METAS_AND_VERSION, (stream_ids[0],))
            meta = dict(zip(META_KEYS, (int(v) for v in row[:-1]), strict=True))
            return meta, ({stream_ids[0]: int(row[-1])} if row[-1] is not None else {})
        return self.metas(), self.stream_versions(stream_ids)

    # ---------------------------------------------------------------- streams
    def stream_versions(self, stream_ids: Sequence[str]) -> dict[str, int]:
        """Stored heads of the given streams."""
        rows = self.db.all(
            "SELECT stream_id, version FROM streams WHERE stream_id = ANY(%s)",
            (sorted(set(stream_ids)),),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def stream_versions_arrow(self, ids_json: str) -> tuple[list[str], list[int]]:
        """(stream ids, versions) of the stored streams among a JSON array of ids."""
        rows = self.db.all(SELECT_VERSIONS_IN, (ids_json,))
        return [str(r[0]) for r in rows], [int(r[1]) for r in rows]

    def has_streams(self) -> bool:
        """Whether any stream head is stored."""
        return bool(self.db.one("SELECT EXISTS (SELECT 1 FROM streams)")[0])

    def stream_row(self, stream_id: str) -> StreamRow | None:
        """A stream's stored head and state."""
        rows = self.db.all(
            "SELECT version, state, state_version FROM streams WHERE stream_id = %s", (stream_id,)
        )
        return (int(rows[0][0]), rows[0][1], int(rows[0][2])) if rows else None

    def stream_rows(self, stream_ids: Sequence[str]) -> dict[str, StreamRow]:
        """The stored heads and states of some streams, in one query."""
        rows = self.db.all(
            "SELECT stream_id, version, state, state_version FROM streams "
            "WHERE stream_id = ANY(%s)",
            (sorted(set(stream_ids)),),
        )
        return {str(r[0]): (int(r[1]), r[2], int(r[3])) for r in rows}

    def stream_row_and_heads(self, stream_id: str) -> tuple[int, int, StreamRow | None]:
        """(head, heads_head, the stream's row), in one query."""
        h, hh, version, state, state_version = self.db.one(SELECT_STREAM_AND_HEADS, (stream_id,))
        row = (int(version), state, int(state_version)) if version is not None else None
        return int(h), int(hh), row

    def upsert_streams(self, rows: Sequence[tuple[str, str, int, str | None, int]]) -> None:
        """Stream heads with their states."""
        self.db.write(UPSERT_STREAM, rows)

    def bump_streams(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Raise heads to at least the given versions."""
        self.db.write(BUMP_STREAM, rows)

    def stream_heads(self) -> dict[str, int]:
        """Every stored stream head."""
        return {str(r[0]): int(r[1]) for r in self.db.all("SELECT stream_id, version FROM streams")}

    def stream_count(self) -> int:
        """How many stream heads are stored."""
        return int(self.db.one("SELECT count(*) FROM streams")[0])

    # ---------------------------------------------------------------- commands
    def command(self, command_id: str) -> tuple[str, int, int] | None:
        """(stream_id, first, last position) of a processed command id."""
        rows = self.db.all(
            "SELECT stream_id, first_position, last_position FROM commands WHERE command_id = %s",
            (command_id,),
        )
        return (str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def insert_commands(
        self, rows: Sequence[tuple[str, str, int, int]], *, ignore_known: bool = False
    ) -> None:
        """Record processed command ids."""
        self.db.write(INSERT_COMMAND_IF_NEW if ignore_known else INSERT_COMMAND, rows)

    # ---------------------------------------------------------------- tail rows
    def insert_tail(self, rows: Sequence[TailRow]) -> None:
        """Insert committed events."""
        self.db.write(INSERT_TAIL, rows)

    def delete_tail(self, upto: int) -> None:
        """Delete sealed tail rows."""
        self.db.write("DELETE FROM tail WHERE position <= %s", [(upto,)])

    def tail_rows(self, after: int, until: int | None = None) -> list[TailRow]:
        """Tail rows with position in (after, until]."""
        if until is None:
            return self.db.all(SELECT_TAIL_AFTER, (after,))
        return self.db.all(SELECT_TAIL_RANGE, (after, until))

    def tail_rows_between(self, first: int, last: int) -> list[TailRow]:
        """Tail rows with position in [first, last]."""
        return self.db.all(SELECT_TAIL_AT, (first, last))

    def oldest_tail_recorded_at(self) -> int | None:
        """recorded_at (µs) of the oldest tail row."""
        rows = self.db.all("SELECT recorded_at FROM tail ORDER BY position LIMIT 1")
        return int(rows[0][0]) if rows else None

    def tail_stats(self) -> tuple[int, int | None]:
        """(number of tail rows, oldest recorded_at)."""
        count, oldest = self.db.one("SELECT count(*), min(recorded_at) FROM tail")
        return int(count), (int(oldest) if oldest is not None else None)

    def tail_bytes(self) -> int:
        """Bytes of the schema's tables and indexes."""
        row = self.db.one(
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
        self.db.write(UPSERT_STREAM_INDEX if replace else INSERT_STREAM_INDEX, streams)
        self.db.write(UPSERT_EVENT_INDEX if replace else INSERT_EVENT_INDEX, hashes)

    def position_of_event(self, event_id: str) -> int | None:
        """The position the event-id index holds for an id's hash."""
        rows = self.db.all(
            "SELECT position FROM event_index WHERE hash = %s", (event_hash(event_id),)
        )
        return int(rows[0][0]) if rows else None

    def stream_positions(self, stream_id: str, after_version: int = 0) -> list[int]:
        """Positions of a stream's events after a version."""
        rows = self.db.all(
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
            for n, f, la, d, b, h in self.db.all(SELECT_LIVE)
        ]

    def add_part(self, part: Part) -> None:
        """Record a published part."""
        self.db.write(
            INSERT_PART,
            [(part.name, part.first, part.last, part.date, part.count, part.size, part.sha256)],
        )

    def replace_parts(self, old: Sequence[Part], new: Part, at_us: int) -> None:
        """Record that ``new`` replaces ``old``."""
        self.add_part(new)
        self.db.write(
            "UPDATE parts SET replaced_at = %s WHERE name = %s AND replaced_at IS NULL",
            [(at_us, p.name) for p in old],
        )

    def replaced_parts(self) -> list[tuple[str, int]]:
        """(name, replaced_at µs) of every replaced part still catalogued."""
        rows = self.db.all("SELECT name, replaced_at FROM parts WHERE replaced_at IS NOT NULL")
        return [(str(n), int(t)) for n, t in rows]

    def forget_part(self, name: str) -> None:
        """Drop a part's catalog row."""
        self.db.write("DELETE FROM parts WHERE name = %s", [(name,)])

    def catalogued_names(self) -> set[str]:
        """Every name in the catalog."""
        return {str(r[0]) for r in self.db.all("SELECT name FROM parts")}
