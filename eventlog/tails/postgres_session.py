"""One connection to the PostgreSQL tail: statements, transactions, and pipelined writes.

``PgSession`` owns the psycopg connection of a ``PostgresTail`` (``eventlog.tails.postgres``)
and every way a statement reaches the server:

* **Reads** run at once and return rows.
* **Writes inside a write transaction are pipelined.** A statement that returns nothing
  (an insert, an upsert, a counter update) is queued and sent with the next read or with
  the COMMIT, in one round trip (psycopg's pipeline mode). The server runs them in the
  order they were given, so a read still sees every write before it. A commit of one
  command then takes three round trips under the writer lock (BEGIN with the lock; the
  counters and the stream head; the rows with the COMMIT) instead of one per statement:
  the lock is held for less time, and more writers get through it. A failing queued
  statement fails the transaction at that round trip: nothing is committed.
* **Errors** leave as our ``StorageError``s, without a password; a connection lost
  during the round trip that carries COMMIT leaves the outcome unknown, and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from eventlog.errors import LedgerLakeError, StorageError
from eventlog.tails.postgres_sql import LOCK_COUNTERS, check_url, redacted

Params = Sequence[Any] | None


class PgSession:
    """The connection of one tail handle; not shared between threads."""

    def __init__(self, url: str, schema: str, *, read_only: bool = False) -> None:
        self.url = check_url(url)
        self.schema = schema
        self.read_only = read_only
        self.in_tx = False
        self._writing = False
        self._queued: list[tuple[Any, Sequence[Params]]] = []
        self.conn = self._connect()

    def describe(self) -> str:
        """The database and schema, without a password."""
        return f"{redacted(self.url)} (schema {self.schema})"

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise self.error(exc, "cannot connect to") from None
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            conn.close()
            raise self.error(exc, "cannot set up the session on") from None
        return conn

    def error(self, exc: BaseException, doing: str) -> LedgerLakeError:
        """A psycopg failure as a StorageError naming the tail (never with a password)."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StorageError(f"{doing} the tail database {self.describe()}: {text}")

    def _live_conn(self) -> psycopg.Connection[Any]:
        """The connection, reconnected if the server went away since the last call."""
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()
        return self.conn

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # ---------------------------------------------------------------- statements
    def _send(
        self, conn: psycopg.Connection[Any], statements: list[tuple[Any, Sequence[Params]]]
    ) -> None:
        with conn.cursor() as cur:
            for query, rows in statements:
                if len(rows) == 1:
                    cur.execute(query, rows[0])
                else:
                    cur.executemany(query, [r or () for r in rows])

    def execute(self, query: Any, params: Params = None) -> psycopg.Cursor[Any]:
        """Run one statement now (with the queued writes before it, in one round trip)."""
        try:
            conn = self._live_conn()
            if not self._queued:
                return conn.execute(query, params)
            queued, self._queued = self._queued, []
            with conn.pipeline():
                self._send(conn, queued)
                cur = conn.execute(query, params)
            return cur
        except psycopg.OperationalError as exc:
            raise self.error(exc, "lost the connection to") from None

    def one(self, query: Any, params: Params = None) -> tuple[Any, ...]:
        """The one row a statement returns."""
        row = self.execute(query, params).fetchone()
        assert row is not None
        return tuple(row)

    def all(self, query: Any, params: Params = None) -> list[tuple[Any, ...]]:
        """Every row a statement returns."""
        return [tuple(r) for r in self.execute(query, params).fetchall()]

    def write(self, query: Any, rows: Sequence[Params]) -> None:
        """A statement that returns nothing, once per parameter row: queued in a write
        transaction (sent with the next read or the COMMIT), else run now."""
        if not rows:
            return
        if self._writing:
            self._queued.append((query, rows))
            return
        try:
            conn = self._live_conn()
            if len(rows) == 1:
                conn.execute(query, rows[0])
            else:
                with conn.cursor() as cur:
                    cur.executemany(query, [r or () for r in rows])
        except psycopg.OperationalError as exc:
            raise self.error(exc, "lost the connection to") from None

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self, *, lock: bool = True) -> Iterator[None]:
        """A write transaction holding the counters row lock: the writer lock of the lake.

        BEGIN and the lock go in one round trip, and the lock is held when the body starts
        (a writer checks the in-flight markers under it).
        """
        if self.read_only:
            raise StorageError(f"{self.describe()} is open read-only; this command does not write")
        self._queued = [("BEGIN ISOLATION LEVEL READ COMMITTED", [None])]
        self.in_tx = self._writing = True
        try:
            if lock:
                self.execute(LOCK_COUNTERS)
            yield None
        except BaseException as exc:
            self._abort()
            if isinstance(exc, psycopg.OperationalError):
                raise self.error(exc, "lost the connection to") from None
            if isinstance(exc, psycopg.Error):
                raise self.error(exc, "the transaction failed on") from None
            raise
        self._commit()

    def _abort(self) -> None:
        self._queued = []
        self.in_tx = self._writing = False
        with contextlib.suppress(psycopg.Error):
            if not self.conn.broken:
                self.conn.execute("ROLLBACK")  # only a warning if BEGIN never reached it

    def _commit(self) -> None:
        queued, self._queued = self._queued, []
        self.in_tx = self._writing = False
        try:
            with self.conn.pipeline():
                self._send(self.conn, [*queued, ("COMMIT", [None])])
        except psycopg.Error as exc:
            if not isinstance(exc, psycopg.OperationalError) and not self.conn.broken:
                # a statement failed: the server aborted the transaction, nothing committed
                with contextlib.suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
                raise self.error(exc, "the transaction failed on") from None
            raise StorageError(
                f"the commit on the tail database {self.describe()} did not answer "
                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}): it may or "
                "may not have been applied; nothing was acknowledged. Retrying with the same "
                "command id is safe"
            ) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction (REPEATABLE READ): one committed state for every query."""
        if self.in_tx:
            yield None
            return
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self.in_tx = True
        try:
            yield None
        finally:
            self.in_tx = False
            with contextlib.suppress(psycopg.Error):
                if not self.conn.broken:
                    self.conn.execute("COMMIT")
