"""The SQL of the PostgreSQL tail (``eventlog.tails.postgres``), and the rules for its URL."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from eventlog.errors import InvalidInputError
from eventlog.tails import META_KEYS

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head BIGINT NOT NULL DEFAULT 0,
    sealed_head BIGINT NOT NULL DEFAULT 0,
    index_head BIGINT NOT NULL DEFAULT 0,
    ids_head BIGINT NOT NULL DEFAULT 0,
    heads_head BIGINT NOT NULL DEFAULT 0,
    last_recorded_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tail (
    position BIGINT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    schema_version SMALLINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    version BIGINT NOT NULL,
    state TEXT,
    state_version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stream_index (
    stream_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (stream_id, version)
);
CREATE TABLE IF NOT EXISTS event_index (hash BIGINT PRIMARY KEY, position BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    first_position BIGINT NOT NULL,
    last_position BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    name TEXT PRIMARY KEY,
    first BIGINT NOT NULL,
    last BIGINT NOT NULL,
    date TEXT NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    replaced_at BIGINT
);
CREATE INDEX IF NOT EXISTS parts_by_first ON parts (first);
INSERT INTO counters (id) VALUES (1) ON CONFLICT DO NOTHING
"""

_COUNTERS = ", ".join(META_KEYS)
SETUP_LOCK = 0x6C65646765726C61  # pg_advisory_xact_lock key: one schema set-up at a time
LOCK_COUNTERS = f"SELECT {_COUNTERS} FROM counters WHERE id = 1 FOR UPDATE"  # noqa: S608
SELECT_METAS = f"SELECT {_COUNTERS} FROM counters WHERE id = 1"  # noqa: S608
SELECT_METAS_AND_VERSION = (
    f"SELECT {', '.join('c.' + k for k in META_KEYS)}, s.version "  # noqa: S608 (constants)
    "FROM counters AS c LEFT JOIN streams AS s ON s.stream_id = %s WHERE c.id = 1"
)
SELECT_STREAM_AND_HEADS = (
    "SELECT c.head, c.heads_head, s.version, s.state, s.state_version "
    "FROM counters AS c LEFT JOIN streams AS s ON s.stream_id = %s WHERE c.id = 1"
)
INSERT_TAIL = "INSERT INTO tail VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
UPSERT_STREAM = """
INSERT INTO streams (stream_id, stream_type, version, state, state_version)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (stream_id) DO UPDATE SET
    version = excluded.version,
    state = COALESCE(excluded.state, streams.state),
    state_version = CASE WHEN excluded.state IS NULL THEN streams.state_version
                         ELSE excluded.state_version END
"""
BUMP_STREAM = """
INSERT INTO streams (stream_id, stream_type, version) VALUES (%s, %s, %s)
ON CONFLICT (stream_id) DO UPDATE SET version = GREATEST(streams.version, excluded.version)
"""
SELECT_VERSIONS_IN = (
    "SELECT s.stream_id, s.version FROM jsonb_array_elements_text(%s::jsonb) AS j(value) "
    "JOIN streams AS s ON s.stream_id = j.value"
)
SELECT_TAIL_AFTER = "SELECT * FROM tail WHERE position > %s ORDER BY position"
SELECT_TAIL_RANGE = "SELECT * FROM tail WHERE position > %s AND position <= %s ORDER BY position"
SELECT_TAIL_AT = "SELECT * FROM tail WHERE position >= %s AND position <= %s ORDER BY position"
INSERT_PART = "INSERT INTO parts VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)"
SELECT_LIVE = (
    "SELECT name, first, last, date, bytes, sha256 FROM parts "
    "WHERE replaced_at IS NULL ORDER BY first"
)


def redacted(url: str) -> str:
    """A connection URL as it may be shown: no password, whatever it held."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an unparsable URL)"
    user = str(params.get("user") or "")
    host = params.get("host", "")
    port = params.get("port")
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{user + '@' if user else ''}{where}/{params.get('dbname', '')}"


def check_url(url: str) -> str:
    """Refuse a tail URL that is not PostgreSQL's or that carries a password."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise InvalidInputError(
            f"a tail URL starts with postgresql://, got {url.split('://')[0]!r}://..."
        )
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise InvalidInputError(f"cannot parse the tail URL: {exc}") from None
    if params.get("password"):
        raise InvalidInputError(
            "the tail URL holds a password; it would be written into the lake's config. "
            "Give the URL without it and the password through PGPASSWORD or a passfile "
            "(~/.pgpass, PGPASSFILE)"
        )
    return url


INSERT_COMMAND = "INSERT INTO commands VALUES (%s, %s, %s, %s)"
INSERT_COMMAND_IF_NEW = INSERT_COMMAND + " ON CONFLICT DO NOTHING"
INSERT_STREAM_INDEX = "INSERT INTO stream_index VALUES (%s, %s, %s)"
UPSERT_STREAM_INDEX = (
    INSERT_STREAM_INDEX
    + " ON CONFLICT (stream_id, version) DO UPDATE SET position = excluded.position"
)
INSERT_EVENT_INDEX = "INSERT INTO event_index VALUES (%s, %s)"
UPSERT_EVENT_INDEX = (
    INSERT_EVENT_INDEX + " ON CONFLICT (hash) DO UPDATE SET position = excluded.position"
)
