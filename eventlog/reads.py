"""Reading the log: parts and tail as one ordered log (``EventLog.read`` and friends).

The sealed head and the tail rows come from one tail snapshot, then the parts up to that
sealed head are read: nothing twice, nothing missed, even while a seal runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.commit import record_from_row
from eventlog.envelope import RecordedEvent, records_from_batch, validate_stream_id
from eventlog.errors import InvalidInputError
from eventlog.values import empty_envelope, tail_table

if TYPE_CHECKING:
    from eventlog.log import EventLog


def read(
    log: EventLog,
    *,
    after: int = 0,
    until: int | None = None,
    event_types: Sequence[str] | None = None,
    columns: list[str] | None = None,
) -> Iterator[pa.Table]:
    """The events with position in (after, until], in order, as Arrow tables.

    Parts and tail are read as one log: the sealed head and the tail rows come from
    one tail snapshot, so no event is seen twice or missed while a seal runs.
    """
    if after < 0:
        raise InvalidInputError(f"after must be >= 0, got {after}")
    if event_types:
        for t in event_types:
            log.registry.spec(t)
    with log.tail.snapshot():
        meta = log.tail.metas()
        sealed, head = meta["sealed_head"], meta["head"]
        stop = head if until is None else min(until, head)
        tail_part = (
            tail_table(log.tail.tail_rows(max(after, sealed), stop)) if stop > sealed else None
        )
        decrypting = log.shredder.enabled
    wanted = sorted(set(event_types)) if event_types else None
    read_cols = columns
    if columns and wanted is not None and "event_type" not in columns:
        read_cols = [*columns, "event_type"]
    shredder = log.shredder
    if read_cols and "payload" in read_cols and decrypting:  # decryption needs both
        wanted_cols = ("stream_id", "event_id", "event_type")
        read_cols = [*read_cols, *(c for c in wanted_cols if c not in read_cols)]
    for table in log.store.read_parts(log._live_parts, after, min(stop, sealed), read_cols):
        yield _filter_types(shredder.decrypt_table(table) if decrypting else table, wanted, columns)
    if tail_part is not None:
        t = tail_part.select(read_cols) if read_cols else tail_part
        yield _filter_types(shredder.decrypt_table(t) if decrypting else t, wanted, columns)


def read_stream(log: EventLog, stream_id: str, *, after_version: int = 0) -> pa.Table:
    """One stream's events after a version, in version order, via the stream index."""
    validate_stream_id(stream_id)
    if not log.read_only:
        log.heads.ensure_index()
    with log.tail.snapshot():
        positions = log.tail.stream_positions(stream_id, after_version)
        meta = log.tail.metas()
        if meta["index_head"] < meta["head"]:  # a reader may not index: scan the rest
            rows = pa.concat_tables(
                list(
                    log._read_locked(
                        meta["index_head"], meta["head"], ["position", "stream_id", "version"]
                    )
                )
            )
            mine = pc.and_(
                pc.equal(rows.column("stream_id").cast(pa.string()), stream_id),
                pc.greater(rows.column("version"), after_version),
            )
            positions += rows.column("position").filter(mine).to_pylist()
    return table_at(log, positions, stream_id)


def table_at(log: EventLog, positions: list[int], stream_id: str | None = None) -> pa.Table:
    """The rows at some positions, in position order; ``stream_id`` when they are all
    that stream's: the parts with a stream file are then read from it (one block)."""
    if not positions:
        return empty_envelope()
    with log.tail.snapshot():
        sealed = log.tail.meta("sealed_head")
        tail_pos = [p for p in positions if p > sealed]
        keep = set(tail_pos)
        rows = (
            [r for r in log.tail.tail_rows_between(tail_pos[0], tail_pos[-1]) if r[0] in keep]
            if tail_pos
            else []
        )
    tables = []
    part_pos = [p for p in positions if p <= sealed]
    if part_pos and stream_id is not None:
        clustered, part_pos = _from_stream_files(log, stream_id, part_pos)
        tables.extend(clustered)
    if part_pos:
        tables.extend(log.store.take(log._live_parts, part_pos))
    if rows or not tables:
        tables.append(tail_table(rows))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    table = log.shredder.decrypt_table(table)
    if stream_id is not None and len(tables) == 1:
        return table  # one stream from one place: in position order already
    return table.take(pc.sort_indices(table, [("position", "ascending")]))


def _from_stream_files(
    log: EventLog, stream_id: str, positions: list[int]
) -> tuple[list[pa.Table], list[int]]:
    """A stream's rows from the stream files of the parts holding them; the positions
    left (parts without one, or replaced while we read) go to the Parquet parts."""
    tables: list[pa.Table] = []
    rest: list[int] = []
    i = 0
    for row in log.tail.live_parts():  # catalog rows: a Part only for the ones that hold some
        if i == len(positions):
            break
        if row[2] < positions[i]:
            continue
        part = log.store.part(row)
        j = i
        while j < len(positions) and positions[j] <= part.last:
            j += 1
        mine = positions[i:j]
        got = log.stream_files.take(part, stream_id, mine) if mine[0] >= part.first else None
        if got is None:
            rest += mine
        else:
            tables.append(got)
        i = j
    return tables, rest + positions[i:]


def events_at(log: EventLog, positions: Sequence[int]) -> list[RecordedEvent]:
    """The recorded events at the given positions, in position order."""
    wanted = sorted(set(positions))
    if not wanted:
        return []
    if all(p in log._recent for p in wanted):
        return [record_from_row(*log._recent[p]) for p in wanted]
    with log.tail.snapshot():
        if wanted[0] > log.tail.meta("sealed_head"):
            # only tail rows: build the records straight from the tail (the handle path)
            keep = set(wanted)
            rows = log.tail.tail_rows_between(wanted[0], wanted[-1])
            records = [record_from_row(r) for r in rows if r[0] in keep]
            if log.shredder.enabled:
                for rec in records:
                    log.shredder.decrypt_payload(
                        rec.event_type, rec.stream_id, rec.event_id, rec.payload
                    )
            return records
    return records_from_batch(table_at(log, wanted))


def subscribe(
    log: EventLog,
    *,
    after: int = 0,
    poll_interval: float = 0.2,
    stop: Callable[[], bool] | None = None,
    idle_timeout: float | None = None,
) -> Iterator[pa.Table]:
    """Catch-up subscription: past events after ``after``, then new ones as they commit.

    Never skips a position: every tail commits in position order (the writer lock is
    held from assigning positions to the commit), so a read that sees a position sees
    every lower one. Ends when ``stop()`` returns true or nothing new arrived for
    ``idle_timeout`` s.
    """
    cursor = after
    idle_since = time.monotonic()
    while stop is None or not stop():
        got = False
        for table in read(log, after=cursor):
            if table.num_rows:
                got = True
                cursor = table.column("position")[-1].as_py()
                yield table
        if got:
            idle_since = time.monotonic()
            continue
        if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
            return
        time.sleep(poll_interval)


def _filter_types(table: pa.Table, wanted: list[str] | None, columns: list[str] | None) -> pa.Table:
    if wanted is not None:
        types = table.column("event_type").cast(pa.string())
        table = table.filter(pc.is_in(types, pa.array(wanted, pa.string())))
    return table.select(columns) if columns else table
