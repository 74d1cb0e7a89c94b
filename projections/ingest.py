"""The source projection's ingest: the log in chunks (sealed parts or tail), staged as ``batch``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import duckdb
import pyarrow as pa

from eventlog.errors import IntegrityError
from eventlog.log import EventLog
from projections.builds import OnCommit, rollback, sql_for
from projections.parts_source import read_sealed
from projections.projection import Projection
from projections.warehouse import ADVANCE_CHECKPOINT

LAST_RECORDED = (
    "SELECT max(recorded_at) FILTER (WHERE position = $hi), count(DISTINCT position) FROM batch"
)
SMALL_CHUNK = 50_000
"""Up to this many sealed events are read through the log as Arrow (decrypted where
sealed) without first scanning their files for sealed values: a catch-up's chunk, and the
parts a build pins (``projections.snapshot``). More are scanned, and read by DuckDB when
they hold none."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Positions (lo, hi] of the log: sealed ones read by DuckDB from the parts, or an
    Arrow table (the tail, read through EventLog.read)."""

    lo: int
    hi: int
    files: tuple[str, ...] = ()
    table: pa.Table | None = None
    load: Callable[[], pa.Table] | None = None  # parts in object storage, read when staged


def chunks(log: EventLog, after: int, until: int, batch_size: int) -> Iterator[Chunk]:
    """The log (after, until] in chunks of at most ``batch_size`` positions.

    Sealed positions come from the live parts (listed with the sealed head in one
    snapshot of the tail) and are scanned by DuckDB in parallel; the rest is the tail.
    """
    with log.snapshot():
        sealed = log.sealed_head()
        parts = log.parts()  # the catalog's live set, never a directory listing
    lo = after
    stop = min(until, sealed)
    while lo < stop:
        hi = min(lo + batch_size, stop)
        if not log.store.local:  # object storage: Arrow, read when staged
            yield Chunk(lo, hi, load=partial(read_sealed, log, parts, lo, hi))
            lo = hi
            continue
        # each file's bytes are checked against the catalog before DuckDB reads it
        files = tuple(str(log.check_part(p)) for p in parts if p.last > lo and p.first <= hi)
        # personal fields in the parts: read them decrypted (a small chunk is read so
        # without first scanning its files for sealed values: that scan costs more)
        if hi - lo <= SMALL_CHUNK or log.shredder.encrypted(files):
            yield Chunk(lo, hi, load=partial(read_sealed, log, parts, lo, hi))
        else:
            yield Chunk(lo, hi, files=files)
        lo = hi
    if until > max(after, sealed):
        for table in log.read(after=max(after, sealed), until=until):
            for start in range(0, table.num_rows, batch_size):
                piece = table.slice(start, batch_size)
                first = int(piece.column("position")[0].as_py())
                last = int(piece.column("position")[piece.num_rows - 1].as_py())
                yield Chunk(first - 1, last, table=piece)


def stage(con: Any, chunk: Chunk) -> datetime | None:
    """Make the chunk's events the relation ``batch``; returns the recorded_at of its end."""
    table = chunk.load() if chunk.load is not None else chunk.table
    if table is not None:
        con.register("batch", table)
        return table.column("recorded_at")[table.num_rows - 1].as_py()  # type: ignore[no-any-return]
    rel = con.read_parquet(list(chunk.files), hive_partitioning=False).filter(
        f"position > {int(chunk.lo)} AND position <= {int(chunk.hi)}"
    )
    con.register("batch", rel)
    rows = con.execute(LAST_RECORDED, {"hi": chunk.hi}).fetchall()
    if not rows or rows[0][0] is None or rows[0][1] != chunk.hi - chunk.lo:
        raise IntegrityError(
            f"the parts do not hold every position in {chunk.lo + 1}..{chunk.hi}; the log is "
            "damaged: run 'ledgerlake verify'"
        )
    return rows[0][0]  # type: ignore[no-any-return]


def unstage(con: Any) -> None:
    con.unregister("batch")


def apply_source(
    con: Any,
    projection: Projection,
    table: str,
    log: EventLog,
    after: int,
    until: int,
    batch_size: int,
    checkpoint: bool,
    on_commit: OnCommit | None,
    hold_last: bool = False,
) -> tuple[int, datetime | None]:
    """Insert the log's events (after, until] into ``table``; a transaction per batch
    when ``checkpoint`` (catch-up), else the caller's transaction (rebuild).

    With ``hold_last`` the last batch's transaction is left open (rows and checkpoint in
    it) for the caller to commit with more work, or roll back.
    """
    position, recorded = after, None
    sql = sql_for(projection, projection.batch_sql, table)
    pieces = list(chunks(log, after, until, batch_size))
    for k, chunk in enumerate(pieces):
        held = hold_last and k == len(pieces) - 1
        if checkpoint:
            con.execute("BEGIN TRANSACTION")
        try:
            recorded = stage(con, chunk)
            con.execute(sql)
            unstage(con)
            position = chunk.hi
            if checkpoint:
                con.execute(
                    ADVANCE_CHECKPOINT,
                    {"name": projection.name, "position": position, "recorded_at": recorded},
                )
                if not held:
                    con.execute("COMMIT")
        except duckdb.IOException as exc:
            if checkpoint:
                rollback(con)
            # A compaction removed a part between listing and reading: start over from
            # the last committed position with a fresh listing (never skips or repeats).
            if "No files found" in str(exc) or "No such file" in str(exc):
                raise PartsMovedError(position) from exc
            raise
        except BaseException:
            if checkpoint:
                rollback(con)
            raise
        if checkpoint and on_commit is not None and not held:
            on_commit(projection.name, position)
    return position, recorded


class PartsMovedError(Exception):
    """A part named in a listing was gone when read (compaction); re-list and retry."""

    def __init__(self, position: int) -> None:
        self.position = position


def retrying(build: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """Run a rebuild again when a compaction removed a part it was reading."""
    for _ in range(4):
        try:
            return build()
        except PartsMovedError:
            continue
    return build()
