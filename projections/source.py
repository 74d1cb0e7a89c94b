"""Builds of the source projection, ``order_events``: pinned parts plus stored typed rows.

A build of ``order_events`` is three things, made and switched in one transaction:

* ``<warehouse>.parts/order_events__<build>/``: the sealed parts, checked and pinned as
  typed rows (``projections.snapshot``), positions 1..cut;
* the view ``builds.order_events_parts__<build>``: those files' rows;
* the table ``builds.order_events__<build>``: typed rows of the events after the cut,
  appended by every catch-up.

``analytics.order_events`` is their union (``projections.order_events.events_view``). A
warehouse without a file stores every event as a typed row instead (cut 0, nothing
pinned).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from eventlog.log import EventLog
from projections.builds import rollback, sql_for, table_name
from projections.ingest import apply_source
from projections.order_events import events_view, parts_relation, sql_literal
from projections.projection import Projection
from projections.snapshot import PinnedParts, drop_pinned, pin_parts, pinned_rows
from projections.warehouse import UPSERT_CHECKPOINT, Checkpoint, parts_root


def parts_view(table: str) -> str:
    """The view of a build's pinned files: ``builds.<name>_parts__<build>``."""
    schema, name = table.split(".", 1)
    base, build = name.rsplit("__", 1)
    return f"{schema}.{base}_parts__{build}"


def _dir_name(table: str) -> str:
    return table.split(".", 1)[1]


def _parts_view_sql(con: Any, table: str) -> str | None:
    """The SQL of a source build's view of its pinned files; None when it pinned none."""
    schema, name = parts_view(table).split(".", 1)
    rows = con.execute(
        "SELECT sql FROM duckdb_views() WHERE schema_name = $s AND view_name = $v",
        {"s": schema, "v": name},
    ).fetchall()
    return str(rows[0][0]) if rows else None


def build_source(
    con: Any,
    log: EventLog,
    projection: Projection,
    old: Checkpoint | None,
    *,
    until: int | None,
    batch_size: int,
) -> tuple[int, int]:
    """Make the next build of the source and switch readers to it (one transaction).

    ``until``: also store the typed rows after the cut up to there (a rebuild); None
    leaves them to the catch-up that follows (an install). Returns (old, new position).
    """
    build = old.build + 1 if old else 1
    table = table_name(projection, build)
    root = parts_root(con)
    pinned: PinnedParts | None = None
    files = parts_view(table)
    try:
        if root is not None and log.sealed_head() > 0:
            pinned = pin_parts(log, root, _dir_name(table))
        con.execute("BEGIN TRANSACTION")
        con.execute(f"DROP VIEW IF EXISTS {files}")
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(sql_for(projection, projection.ddl, table))
        cut, recorded = 0, None
        if pinned is not None and pinned.cut > 0:
            relation = parts_relation(str(pinned.directory), pinned.cut)
            con.execute(f"CREATE VIEW {files} AS {relation}")
            cut, recorded = pinned.cut, _recorded_at(con, log, files, pinned.cut)
        position = cut
        if until is not None and until > cut:
            position, recorded = apply_source(
                con,
                projection,
                table,
                log,
                cut,
                until,
                batch_size,
                checkpoint=False,
                on_commit=None,
            )
        view_sql = events_view(table, files if cut else None)
        con.execute(f"CREATE OR REPLACE VIEW {projection.view} AS {view_sql}")
        con.execute(
            UPSERT_CHECKPOINT,
            {
                "name": projection.name,
                "code_version": projection.code_version,
                "position": position,
                "recorded_at": recorded,
                "table_name": table,
                "build": build,
            },
        )
        if old is not None:
            con.execute(f"DROP VIEW IF EXISTS {parts_view(old.table_name)}")
            con.execute(f"DROP TABLE IF EXISTS {old.table_name}")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)  # quiet when the transaction was never begun
        drop_pinned(root, *([_dir_name(old.table_name)] if old else []))
        raise
    # the previous build's files stay until the next build: a reader that began on the
    # old view before the switch (a cursor of this process) finishes its scan
    drop_pinned(root, _dir_name(table), *([_dir_name(old.table_name)] if old else []))
    return (old.position if old else 0), position


def _own_pins(sql: str, root: Path, table: str) -> Path | None:
    """The directory of ``table``'s pinned files under this warehouse's ``root`` when its
    parts view (``sql``) reads them there; None when it reads files elsewhere."""
    directory = root / _dir_name(table)
    return directory if sql_literal(str(directory) + "/*.parquet") in sql else None


def pinned_elsewhere(con: Any, current: Checkpoint) -> bool:
    """Whether the source build's view reads pinned parts from another directory than
    this warehouse's (the lake was moved or copied): the build must be made again."""
    sql = _parts_view_sql(con, current.table_name)
    root = parts_root(con)
    if sql is None or root is None:
        return False
    return _own_pins(sql, root, current.table_name) is None


def source_rows(con: Any, current: Checkpoint) -> int | None:
    """The rows of a source build without scanning its pinned files: its stored rows plus
    the count its build kept when it pinned them. None when that count is not at hand (a
    build pinned before it was kept, or one reading files in another directory)."""
    sql = _parts_view_sql(con, current.table_name)
    pinned: int | None = 0  # nothing pinned: the stored rows are all
    if sql is not None:
        root = parts_root(con)
        directory = _own_pins(sql, root, current.table_name) if root is not None else None
        pinned = pinned_rows(directory) if directory is not None else None
    if pinned is None:
        return None
    stored = con.execute(f"SELECT count(*) FROM {current.table_name}").fetchall()  # noqa: S608
    return int(stored[0][0]) + pinned


def _recorded_at(con: Any, log: EventLog, view: str, position: int) -> datetime | None:
    """When the event at ``position`` was recorded: from the pinned files, or from the
    log when that event is not an order's (the files hold order events alone)."""
    rows = con.execute(
        f"SELECT recorded_at FROM {view} WHERE position = $p",  # noqa: S608 - a built name
        {"p": position},
    ).fetchall()
    if rows:
        return rows[0][0]  # type: ignore[no-any-return]
    events = log.events_at([position])
    return events[0].recorded_at if events else None
