"""The projection runner: catch up and rebuild blue-green.

``catch_up`` applies the events after the
checkpoint, data and checkpoint in one DuckDB transaction per batch. ``rebuild``
builds ``__<build+1>`` from position 0 and, in the same transaction, points the view at
it, moves the checkpoint and drops the old table: readers see the old table until the
commit, then the new one, never a partial one. A projection whose code version
differs from its checkpoint's is stale; ``catch_up`` rebuilds it (``rebuild_stale``).
The pieces: ``projections.builds`` (tables behind views), ``projections.ingest`` (the
log into ``order_events``), ``projections.derive`` (the tables derived from it),
``projections.progress`` (lag and reports).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from eventlog.errors import IntegrityError, InvalidInputError, LedgerLakeError
from eventlog.log import EventLog
from eventlog.orders.log import LogSource
from projections.builds import (
    OnCommit,
    Warehouse,
    install,
    point_view,
    rollback,
    session,
    sql_for,
    table_name,
)
from projections.derive import FoldCache, Run, apply_derived, catch_up_derived, fill
from projections.ingest import PartsMovedError, apply_source, retrying
from projections.lanes import lanes_for, side_by_side
from projections.order_events import ORDER_EVENTS
from projections.plan import select
from projections.progress import Done, reports
from projections.projection import Projection
from projections.report import ProjectionReport
from projections.source import build_source, pinned_elsewhere
from projections.temporal import ORDER_STATES, install_macros
from projections.warehouse import ADVANCE_CHECKPOINT, UPSERT_CHECKPOINT, Checkpoint, checkpoints

DEFAULT_BATCH_SIZE = 1_000_000


class StaleProjectionError(LedgerLakeError):
    """A projection's stored code version differs from its code; rebuild it first."""

    exit_code = 1


def _install_macros_when_ready(con: Any) -> None:
    """The as-of macros bind to their tables, so they follow the first install."""
    present = checkpoints(con)
    if ORDER_EVENTS.name in present and ORDER_STATES.name in present:
        install_macros(con, force=True)


def _install(con: Any, log: EventLog, projection: Projection) -> Checkpoint:
    """Build 1 of a projection: empty at 0, or, for the source, the log's pinned parts."""
    if projection.is_source:
        retrying(partial(build_source, con, log, projection, None, until=None, batch_size=1))
        return checkpoints(con)[projection.name]
    return install(con, projection)


def _rebuild_one(
    con: Any,
    log: EventLog,
    projection: Projection,
    cp: Checkpoint,
    batch_size: int,
    cache: FoldCache,
) -> tuple[int, int]:
    """Build the next version beside the live one and switch readers in one transaction.

    Returns (old position, new position).
    """
    if projection.is_source:
        return build_source(con, log, projection, cp, until=log.head(), batch_size=batch_size)
    build = cp.build + 1
    table = table_name(projection, build)
    source = checkpoints(con)[projection.depends_on[0]]
    hi, recorded = source.position, source.recorded_at
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(sql_for(projection, projection.ddl, table))
        fill(con, projection, table, hi, cache)
        point_view(con, projection, table)
        con.execute(
            UPSERT_CHECKPOINT,
            {
                "name": projection.name,
                "code_version": projection.code_version,
                "position": hi,
                "recorded_at": recorded,
                "table_name": table,
                "build": build,
            },
        )
        con.execute(f"DROP TABLE IF EXISTS {cp.table_name}")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return cp.position, hi


def _catch_up_one(
    con: Any,
    log: EventLog,
    projection: Projection,
    cp: Checkpoint,
    until: int,
    batch_size: int,
    on_commit: OnCommit | None,
    cache: FoldCache,
    hold_last: bool = False,
) -> int:
    """Apply (checkpoint, until] to one projection; returns the events (positions) applied.

    ``hold_last``: a source leaves its last batch's transaction open (``apply_source``).
    """
    if projection.is_source:
        start = cp.position
        for _ in range(5):
            try:
                apply_source(
                    con,
                    projection,
                    cp.table_name,
                    log,
                    start,
                    until,
                    batch_size,
                    True,
                    on_commit,
                    hold_last,
                )
                break
            except PartsMovedError as moved:
                start = moved.position
        else:
            raise IntegrityError(
                "parts kept disappearing while catching up; is compaction looping?"
            )
        end = checkpoints(con)[projection.name].position
        return max(0, end - cp.position)
    source = checkpoints(con)[projection.depends_on[0]]
    hi = source.position
    if hi <= cp.position:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        apply_derived(con, projection, cp.table_name, cp.position, hi, cache)
        con.execute(
            ADVANCE_CHECKPOINT,
            {"name": projection.name, "position": hi, "recorded_at": source.recorded_at},
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    if on_commit is not None:
        on_commit(projection.name, hi)
    return hi - cp.position


def catch_up(
    source: LogSource,
    warehouse: Warehouse = None,
    names: Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rebuild_stale: bool = True,
    on_commit: OnCommit | None = None,
) -> list[ProjectionReport]:
    """Apply the events after each checkpoint to the named projections (default: all).

    Dependencies are caught up first. A stale projection (changed code version) is
    rebuilt when ``rebuild_stale``, else StaleProjectionError is raised.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    chosen = select(names)
    cache = FoldCache.for_run(chosen)
    with session(source, warehouse) as (log, con):
        until = log.head()
        runs: list[Run] = []
        stored = checkpoints(con)  # read again only after something moved them
        # The source's last batch may wait for the derived transaction only when no derived
        # projection needs a transaction of its own first (an install or a rebuild).
        derived = [p for p in chosen if not p.is_source]
        can_hold = bool(derived) and all(
            p.name in stored and stored[p.name].code_version == p.code_version for p in derived
        )
        held: list[tuple[str, int]] = []  # source commits left to the derived transaction
        for projection in chosen:
            started = time.perf_counter()
            found = stored.get(projection.name)
            run = Run(projection, found.position if found else 0)
            if found is None:
                found = _install(con, log, projection)
                stored = checkpoints(con)
                run.applied = found.position  # the source's pinned parts
            cp = found
            # a source whose pinned parts are in another directory (the lake moved) is
            # built again whatever ``rebuild_stale`` says: nothing about its code changed
            moved = projection.is_source and pinned_elsewhere(con, cp)
            if cp.code_version != projection.code_version or moved:
                if not rebuild_stale and not moved:
                    raise StaleProjectionError(
                        f"projection {projection.name} was built by code version "
                        f"{cp.code_version}, the code is at {projection.code_version}; "
                        "rebuild it ('ledgerlake project --rebuild --only "
                        f"{projection.name}')"
                    )
                _, run.applied = retrying(
                    partial(_rebuild_one, con, log, projection, cp, batch_size, cache)
                )
                run.rebuilt = True
                stored = checkpoints(con)
            if projection.is_source:
                cp = stored[projection.name]
                # The source's last batch commits together with the derived projections
                # (one fsync and one transaction less for a small catch-up).
                hold = can_hold and cp.position < until
                run.applied += _catch_up_one(
                    con, log, projection, cp, until, batch_size, on_commit, cache, hold
                )
                stored = checkpoints(con)
                if hold:
                    held.append((projection.name, stored[projection.name].position))
            run.seconds += time.perf_counter() - started
            runs.append(run)
        try:
            catch_up_derived(
                con,
                [r for r in runs if not r.projection.is_source],
                cache,
                on_commit,
                in_transaction=bool(held),
            )
        except BaseException:
            held.clear()
            raise
        finally:
            if held and on_commit is not None:
                for name, position in held:
                    on_commit(name, position)
        done = [Done(r.projection, r.before, r.seconds, r.rebuilt, r.applied) for r in runs]
        return reports(con, log, done)


def rebuild(
    source: LogSource,
    warehouse: Warehouse = None,
    names: Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_commit: OnCommit | None = None,
    lanes: int | None = None,
) -> list[ProjectionReport]:
    """Rebuild the named projections (default: all) blue-green, then catch them up.

    Only the named ones are rebuilt (``names=None``: all); their dependencies are
    caught up first so the new version starts from a current source. The source comes
    first; then the derived projections build side by side in ``lanes`` (default: one
    per core, ``projections.lanes``), each once those it depends on have committed.
    """
    chosen = select(names)
    targets = {p.name for p in chosen} if not names else set(names)
    cache = FoldCache.for_run(chosen)
    said = _serialized(on_commit)
    with session(source, warehouse) as (log, con):
        until = log.head()
        step = partial(_rebuild_step, log, targets, until, batch_size, cache, said)
        done = [step(con, p) for p in chosen if p.is_source]
        # the largest first (every state of every order): the rest fit beside it
        derived = sorted(
            (p for p in chosen if not p.is_source), key=lambda p: "states" not in p.fold_tables
        )
        done += side_by_side(con, derived, step, lanes_for() if lanes is None else lanes)
        done.sort(key=lambda d: chosen.index(d.projection))
        _install_macros_when_ready(con)
        return reports(con, log, done)


def _rebuild_step(
    log: EventLog,
    targets: set[str],
    until: int,
    batch_size: int,
    cache: FoldCache,
    on_commit: OnCommit | None,
    con: Any,
    projection: Projection,
) -> Done:
    """One projection of ``rebuild`` on ``con``: installed if missing, rebuilt if it is a
    target, then caught up to ``until``."""
    started = time.perf_counter()
    found = checkpoints(con).get(projection.name)
    before = found.position if found else 0
    cp = found or _install(con, log, projection)
    applied = cp.position - before  # the source's pinned parts, when just installed
    rebuilt = projection.name in targets
    # a source installed now was built from the log just now: not built twice
    if rebuilt and not (found is None and projection.is_source):
        _, applied = retrying(partial(_rebuild_one, con, log, projection, cp, batch_size, cache))
        cp = checkpoints(con)[projection.name]
        if on_commit is not None:
            on_commit(projection.name, cp.position)
    applied += _catch_up_one(con, log, projection, cp, until, batch_size, on_commit, cache)
    return Done(projection, before, time.perf_counter() - started, rebuilt, applied)


def _serialized(on_commit: OnCommit | None) -> OnCommit | None:
    """``on_commit`` called by one lane at a time (lanes commit from their threads)."""
    if on_commit is None:
        return None
    lock = threading.Lock()

    def said(name: str, position: int) -> None:
        with lock:
            on_commit(name, position)

    return said
