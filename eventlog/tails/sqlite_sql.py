"""The SQL of the SQLite tail (``eventlog.tails.sqlite``): its schema and statements."""

from __future__ import annotations

from eventlog.tails import META_KEYS

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

# the catalog of live parts (see docs/format.md): a part row commits with the sealed head
INSERT_PART = "INSERT INTO parts VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
SELECT_LIVE = (
    "SELECT name, first, last, date, bytes, sha256 FROM parts "
    "WHERE replaced_at IS NULL ORDER BY first"
)
SELECT_REPLACED = "SELECT name, replaced_at FROM parts WHERE replaced_at IS NOT NULL"
REPLACE_PART = "UPDATE parts SET replaced_at = ? WHERE name = ? AND replaced_at IS NULL"

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
SELECT_STREAMS_IN = (
    "SELECT s.stream_id, s.version, s.state, s.state_version FROM json_each(?) AS j "
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
