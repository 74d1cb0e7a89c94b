"""The physical builds behind the views: a session, names, install, the switch of readers.

Each projection's rows live in a physical table ``builds.<name>__<build>`` behind the
view ``<schema>.<name>`` that readers query (the builds have their own schema, so listing
``analytics`` or ``temporal`` shows only what readers should query).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from eventlog.log import EventLog
from eventlog.orders.log import LogSource, reading
from projections.projection import Projection
from projections.warehouse import (
    BUILDS_SCHEMA,
    CREATE_SCHEMAS,
    UPSERT_CHECKPOINT,
    Checkpoint,
    checkpoints,
    connect,
    identifier,
)

OnCommit = Callable[[str, int], None]
Warehouse = duckdb.DuckDBPyConnection | None


@contextmanager
def session(source: LogSource, warehouse: Warehouse) -> Iterator[tuple[EventLog, Any]]:
    """The log and a writable warehouse connection; closes only what it opened."""
    with reading(source) as log:
        own_con = warehouse is None
        con = connect(log, timeout_s=60.0) if warehouse is None else warehouse
        if not own_con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(CREATE_SCHEMAS)
        # Row order inside a table carries no meaning here (every reader orders or filters
        # by position), and letting DuckDB insert in parallel makes replay much faster.
        con.execute("SET preserve_insertion_order = false")
        try:
            yield log, con
        finally:
            if own_con:
                con.close()
            else:
                con.execute("RESET preserve_insertion_order")


def sql_for(projection: Projection, sql: str, table: str) -> str:
    """A projection statement aimed at one physical table."""
    return sql.replace("@TABLE@", table)


def params(sql: str, lo: int, hi: int) -> dict[str, int]:
    """The $lo/$hi a statement binds (DuckDB refuses parameters a statement lacks)."""
    bound = {}
    if "$lo" in sql:
        bound["lo"] = lo
    if "$hi" in sql:
        bound["hi"] = hi
    return bound


def table_name(projection: Projection, build: int) -> str:
    # Projection names are unique (they are the checkpoint keys), so one schema holds all builds.
    return f"{BUILDS_SCHEMA}.{identifier(projection.name)}__{int(build)}"


def point_view(con: Any, projection: Projection, table: str) -> None:
    # Identifiers come from identifier()-checked projection names, never from user input.
    con.execute(f"CREATE OR REPLACE VIEW {projection.view} AS SELECT * FROM {table}")  # noqa: S608


def install(con: Any, projection: Projection) -> Checkpoint:
    """Create build 1 of a projection, empty, at position 0 (one transaction)."""
    table = table_name(projection, 1)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(sql_for(projection, projection.ddl, table))
        point_view(con, projection, table)
        con.execute(
            UPSERT_CHECKPOINT,
            {
                "name": projection.name,
                "code_version": projection.code_version,
                "position": 0,
                "recorded_at": None,
                "table_name": table,
                "build": 1,
            },
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return checkpoints(con)[projection.name]


def rollback(con: Any) -> None:
    """Roll back, keeping the error that got us here: DuckDB may have aborted already."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")
