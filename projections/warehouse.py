"""The DuckDB warehouse of a lake: ``<lake>/warehouse.duckdb``, its schemas and checkpoints.

Concurrency (see docs/projections.md): DuckDB lets one process open the file for
writing, or any number of processes open it read-only, never both at once. Writers
(the projection runner) hold the file only for the length of one run; ``connect``
retries a locked file for ``timeout_s`` before raising ``WarehouseBusyError``.
Inside the writer's own process, readers take ``con.cursor()`` and get DuckDB's
snapshot isolation: they see the last committed state, never a half-applied batch.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from eventlog.errors import (
    IntegrityError,
    InvalidInputError,
    LakeNotFoundError,
    LedgerLakeError,
    StorageError,
)

if TYPE_CHECKING:  # Arrow and the log only where they are used: ``sql`` needs neither
    import pyarrow as pa

    from eventlog.log import EventLog

WAREHOUSE_FILE = "warehouse.duckdb"
SCHEMAS = ("analytics", "temporal", "meta")
BUILDS_SCHEMA = "builds"
"""The schema of the projections' physical tables (``builds.orders__2``); readers use views."""

CREATE_SCHEMAS = """
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS temporal;
CREATE SCHEMA IF NOT EXISTS meta;
CREATE SCHEMA IF NOT EXISTS builds;
CREATE TABLE IF NOT EXISTS meta.macros (version VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS meta.checkpoints (
    name VARCHAR PRIMARY KEY,
    code_version VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    recorded_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    table_name VARCHAR NOT NULL,
    build INTEGER NOT NULL
);
"""

SELECT_CHECKPOINTS = """
SELECT name, code_version, position, recorded_at, updated_at, table_name, build
FROM meta.checkpoints ORDER BY name
"""

UPSERT_CHECKPOINT = """
INSERT OR REPLACE INTO meta.checkpoints
    (name, code_version, position, recorded_at, updated_at, table_name, build)
VALUES ($name, $code_version, $position, $recorded_at, now(), $table_name, $build)
"""

ADVANCE_CHECKPOINT = """
UPDATE meta.checkpoints SET position = $position, recorded_at = $recorded_at, updated_at = now()
WHERE name = $name
"""

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_LOCKED = ("Could not set lock", "Conflicting lock")


class WarehouseBusyError(LedgerLakeError):
    """Another process holds the warehouse file in a conflicting mode; try again later."""

    exit_code = 3


class WarehouseNotFoundError(InvalidInputError):
    """There is no warehouse yet; run ``ledgerlake project`` first."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far one projection has applied the log, with which code, into which table."""

    name: str
    code_version: str
    position: int
    recorded_at: datetime | None
    updated_at: datetime
    table_name: str
    build: int


def warehouse_path(lake: Path | EventLog) -> Path:
    """``<lake>/warehouse.duckdb``."""
    root = Path(lake) if isinstance(lake, (str, Path)) else lake.root
    return root / WAREHOUSE_FILE


def identifier(name: str) -> str:
    """A table/schema name checked to be a plain lower-case SQL identifier (never user input)."""
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidInputError(
            f"{name!r} is not a valid projection identifier; expected [a-z_0-9]"
        )
    return name


def pinned_dir(warehouse: Path) -> Path:
    """``<warehouse file>.parts``: where ``order_events`` builds pin the log's parts."""
    return Path(f"{warehouse}.parts")


def parts_root(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The pinned parts' directory of the warehouse ``con`` is connected to (absolute:
    views outlive the cwd), or None for a warehouse without a file (in memory)."""
    rows = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    if not rows or not rows[0][0]:
        return None
    return pinned_dir(Path(str(rows[0][0]))).resolve()


def connect(
    lake: Path | EventLog, *, read_only: bool = False, timeout_s: float = 10.0
) -> duckdb.DuckDBPyConnection:
    """Open the lake's warehouse (UTC session); waits up to ``timeout_s`` while it is locked.

    A read-only open of a warehouse that does not exist raises WarehouseNotFoundError.
    """
    path = warehouse_path(lake)
    if read_only and not path.exists():
        root = path.parent
        from eventlog.lake import has_tail  # only here: ``sql`` on a lake imports no Arrow

        if not has_tail(root) and not (root / "events").exists():
            raise LakeNotFoundError(
                f"no lake at {root}; create one with 'ledgerlake generate' or 'ledgerlake append'"
            )
        raise WarehouseNotFoundError(f"no warehouse at {path}; build it with 'ledgerlake project'")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not any(marker in str(exc) for marker in _LOCKED):
                raise _open_error(path, exc) from None
            if time.monotonic() >= deadline:
                mode = "read" if read_only else "write"
                raise WarehouseBusyError(
                    f"cannot open {path} to {mode}: another process holds it "
                    f"(waited {timeout_s:g}s); a projection run may be in progress, retry later"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        con.execute(CREATE_SCHEMAS)
    return con


def _open_error(path: Path, exc: Exception) -> LedgerLakeError:
    """A warehouse that cannot be opened, as our error: damaged (1) or refused storage (5)."""
    text = str(exc)
    if "not a valid DuckDB database" in text or "Corrupt" in text or "checksum" in text:
        return IntegrityError(
            f"{path} is not a valid DuckDB database (damaged or emptied); it is derived from "
            "the log: move it away and run 'ledgerlake project' to rebuild it"
        )
    return StorageError(f"cannot open {path}: {text}")


def checkpoints(con: duckdb.DuckDBPyConnection) -> dict[str, Checkpoint]:
    """Every projection's checkpoint, by name (empty before the first run)."""
    try:  # writers always have the table (CREATE_SCHEMAS); a reader's may predate it
        rows = con.execute(SELECT_CHECKPOINTS).fetchall()
    except duckdb.CatalogException:
        return {}
    return {row[0]: Checkpoint(*row) for row in rows}


EVENTS_VIEW = """
CREATE OR REPLACE TEMP VIEW events AS
SELECT position, stream_type, stream_id, version, event_id, event_type, schema_version,
       occurred_at, recorded_at, payload, metadata
FROM events_parts WHERE position <= (SELECT max(sealed) FROM events_sealed)
UNION ALL
SELECT position, stream_type, stream_id, version, event_id, event_type, schema_version,
       occurred_at, recorded_at, payload, metadata
FROM events_tail
"""


def create_events_view(con: duckdb.DuckDBPyConnection, log: EventLog) -> None:
    """Create (or refresh) the temporary view ``events``: the whole log, parts and tail.

    A snapshot taken now: the tail rows are copied in as Arrow, local parts are read when
    a query runs (a compaction after this call needs a refresh), parts in object storage
    now (``projections.parts_source``). Call again to see newer events.
    """
    import pyarrow as pa

    from projections.parts_source import register_parts

    with log.snapshot():
        sealed = log.sealed_head()
        parts = log.parts()
        tail = log.read_all(after=sealed)
    con.register("events_tail", _plain_strings(tail))
    con.register("events_sealed", pa.table({"sealed": pa.array([sealed], pa.int64())}))
    register_parts(con, log, "events_parts", parts)  # local files, or Arrow from the bucket
    con.execute(EVENTS_VIEW)


def _plain_strings(table: pa.Table) -> pa.Table:
    """Dictionary columns as plain strings, so the tail unions with the Parquet parts."""
    import pyarrow as pa

    cols = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)
