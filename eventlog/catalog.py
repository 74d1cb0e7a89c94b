"""The catalog of live parts: the truth about which files hold the log.

A table in the tail's database lists every part: its name (path under ``events/``),
position range, row count, byte size and SHA-256. A part row commits in the same
transaction that moves the sealed head (and deletes the tail rows it now holds), so a
file is part of the log exactly when its row is committed. Compaction marks the rows
of the parts it merged ``replaced_at`` in the transaction that adds the merged part;
their files are removed after a grace period, so readers mid-scan keep working.

Readers take the live set from here, never from a directory listing: a file that is
not in the catalog is never read, whatever its name says.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventlog.parts import Part

SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    name TEXT PRIMARY KEY,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    date TEXT NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    replaced_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parts_by_first ON parts (first);
"""

INSERT_PART = "INSERT INTO parts VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
SELECT_LIVE = (
    "SELECT name, first, last, date, bytes, sha256 FROM parts "
    "WHERE replaced_at IS NULL ORDER BY first"
)
SELECT_REPLACED = "SELECT name, replaced_at FROM parts WHERE replaced_at IS NOT NULL"
SELECT_NAMES = "SELECT name FROM parts"
REPLACE_PARTS = "UPDATE parts SET replaced_at = ? WHERE name = ? AND replaced_at IS NULL"
DELETE_PART = "DELETE FROM parts WHERE name = ?"


def has_catalog(conn: sqlite3.Connection) -> bool:
    """Whether the tail's database has a catalog table (lakes made before it have none)."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'parts'"
    ).fetchone()
    return bool(row[0])


def _part(events_dir: Path, row: tuple[str, int, int, str, int, str]) -> Part:
    name, first, last, date, size, sha = row
    return Part(int(first), int(last), date, events_dir / name, int(size), sha)


def live_parts(conn: sqlite3.Connection, events_dir: Path) -> list[Part]:
    """The live parts, in position order, as the catalog lists them."""
    return [_part(events_dir, row) for row in conn.execute(SELECT_LIVE)]


def add_part(conn: sqlite3.Connection, part: Part) -> None:
    """Record a published part (inside the transaction that moves the sealed head)."""
    conn.execute(
        INSERT_PART,
        (part.name, part.first, part.last, part.date, part.count, part.size, part.sha256),
    )


def replace_parts(conn: sqlite3.Connection, old: list[Part], new: Part, at_us: int) -> None:
    """Record that ``new`` replaces ``old`` (one transaction); old files stay for a while."""
    add_part(conn, new)
    for part in old:
        conn.execute(REPLACE_PARTS, (at_us, part.name))


def replaced_parts(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(name, replaced_at in microseconds) of every replaced part still catalogued."""
    return [(str(n), int(t)) for n, t in conn.execute(SELECT_REPLACED)]


def forget_part(conn: sqlite3.Connection, name: str) -> None:
    """Drop a replaced part's row once its file is gone."""
    conn.execute(DELETE_PART, (name,))


def catalogued_names(conn: sqlite3.Connection) -> set[str]:
    """Every name in the catalog, live or replaced."""
    return {str(r[0]) for r in conn.execute(SELECT_NAMES)}
