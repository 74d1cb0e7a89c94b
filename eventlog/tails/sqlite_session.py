"""The connection of the SQLite tail (``eventlog.tails.sqlite``): opening it, its
transactions, and what a SQLite failure means as one of our errors.

``BEGIN IMMEDIATE`` is the writer lock, across threads and processes of one machine;
WAL with ``synchronous=FULL`` (set by the tail) makes a COMMIT durable when it returns.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from eventlog.errors import IntegrityError, LedgerLakeError, StorageError


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


def connect(path: Path, read_only: bool, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection to the tail file (``read_only``: ``mode=ro``, immutable where unwritable)."""
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


@contextmanager
def write_transaction(conn: sqlite3.Connection, path: Path, read_only: bool) -> Iterator[None]:
    """A write transaction: ``BEGIN IMMEDIATE`` serializes writers across processes.

    SQLite failures (a full disk, a read-only file, a damaged file) leave as our
    errors: nothing of the transaction was committed.
    """
    if read_only:
        raise StorageError(f"{path} is open read-only; this command does not write")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.DatabaseError as exc:
        raise tail_error(path, exc) from None
    try:
        yield None
    except BaseException as exc:
        if conn.in_transaction:
            # SQLite may already have rolled back (a full disk does that)
            with contextlib.suppress(sqlite3.DatabaseError):
                conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.DatabaseError):
            raise tail_error(path, exc) from None
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            raise StorageError(f"cannot write the lake: {exc}; nothing was committed") from None
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise tail_error(path, exc) from None


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: every query inside sees the same committed state."""
    if conn.in_transaction:  # already inside a read or write transaction
        yield None
        return
    conn.execute("BEGIN")
    try:
        yield None
    finally:
        conn.execute("COMMIT")
