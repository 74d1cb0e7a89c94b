"""The projection runner: catch up, rebuild blue-green, report lag and staleness.

Each projection's rows live in a physical table ``builds.<name>__<build>`` behind the
view ``<schema>.<name>`` that readers query (the builds have their own schema, so listing
``analytics`` or ``temporal`` shows only what readers should query). ``catch_up`` applies the events after the
checkpoint, data and checkpoint in one DuckDB transaction per batch. ``rebuild``
builds ``__<build+1>`` from position 0 and, in the same transaction, points the view at
it, moves the checkpoint and drops the old table: readers see the old table until the
commit, then the new one, never a partial one. A projection whose code version
differs from its checkpoint's is stale; ``catch_up`` rebuilds it (``rebuild_stale``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from eventlog.errors import IntegrityError, InvalidInputError, LedgerLakeError
from eventlog.log import EventLog
from eventlog.orders.log import open_order_log
from projections.report import ProjectionReport
from projections.tables import (
    CUSTOMERS,
    DAILY_SALES,
    DELETE_TOUCHED_ORDERS,
    FOLD_INPUT,
    ORDER_EVENTS,
    ORDER_LINES,
    ORDERS,
    PAYMENTS,
    SOURCE_ALL,
    SOURCE_PREVIOUS,
    SOURCE_TOUCHED,
    Projection,
    fold_states,
)
from projections.temporal import ORDER_STATES, install_macros
from projections.warehouse import (
    ADVANCE_CHECKPOINT,
    BUILDS_SCHEMA,
    CREATE_SCHEMAS,
    UPSERT_CHECKPOINT,
    Checkpoint,
    checkpoints,
    connect,
    identifier,
)

PROJECTIONS: tuple[Projection, ...] = (
    ORDER_EVENTS,
    ORDERS,
    ORDER_LINES,
    PAYMENTS,
    ORDER_STATES,
    DAILY_SALES,
    CUSTOMERS,
)
"""Every projection, in dependency order."""

BY_NAME = {p.name: p for p in PROJECTIONS}
DEFAULT_BATCH_SIZE = 1_000_000

LAST_RECORDED = (
    "SELECT max(recorded_at) FILTER (WHERE position = $hi), count(DISTINCT position) FROM batch"
)

TOUCHED = """
CREATE OR REPLACE TEMP TABLE touched AS
SELECT DISTINCT order_id FROM analytics.order_events WHERE position > $lo AND position <= $hi
"""
# The touched orders' whole histories, gathered once per catch-up and read by every
# derived projection (one scan of order_events instead of one per projection). Two steps:
# the positions first (reads only order_id and position), then the rows at those
# positions; filtering all 38 columns on order_id at once would decode every row.
TOUCHED_POSITIONS = """
CREATE OR REPLACE TEMP TABLE touched_positions AS
SELECT position FROM analytics.order_events
WHERE position <= $hi AND order_id IN (SELECT order_id FROM touched)
"""
TOUCHED_EVENTS = """
CREATE OR REPLACE TEMP TABLE touched_events AS
SELECT * FROM analytics.order_events
WHERE position IN (SELECT position FROM touched_positions)
"""

# The touched orders the derived tables already hold rows for (events at or before the
# checkpoint): only theirs are deleted and recomputed; a new order has nothing to delete.
TOUCHED_KNOWN = """
CREATE OR REPLACE TEMP TABLE touched_known AS
SELECT DISTINCT order_id FROM touched_events WHERE position <= $lo
"""
OnCommit = Callable[[str, int], None]
Source = Path | str | EventLog


def _open_log(source: Source) -> tuple[EventLog, bool]:
    """The log itself, or one opened on a lake path (without sealing on close); owned?"""
    if isinstance(source, EventLog):
        return source, False
    return open_order_log(Path(source), read_only=True), True


Warehouse = duckdb.DuckDBPyConnection | None


class StaleProjectionError(LedgerLakeError):
    """A projection's stored code version differs from its code; rebuild it first."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Lag:
    """How far one projection is behind the log, and whether its code changed."""

    name: str
    code_version: str
    stored_code_version: str | None
    stale: bool
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    table_name: str | None
    updated_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "code_version": self.code_version,
            "stored_code_version": self.stored_code_version,
            "stale": self.stale,
            "position": self.position,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "table_name": self.table_name,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def select(names: Sequence[str] | None) -> list[Projection]:
    """The named projections plus what they depend on, in dependency order."""
    if not names:
        return list(PROJECTIONS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise InvalidInputError(
            f"unknown projection {', '.join(map(repr, unknown))}; "
            f"expected one of {', '.join(BY_NAME)}"
        )
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(BY_NAME[name].depends_on)
    return [p for p in PROJECTIONS if p.name in wanted]


@contextmanager
def _session(source: Source, warehouse: Warehouse) -> Iterator[tuple[EventLog, Any]]:
    """The log and a writable warehouse connection; closes only what it opened."""
    log, own_log = _open_log(source)
    own_con = warehouse is None
    con = connect(log, timeout_s=60.0) if warehouse is None else warehouse
    if not own_con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(CREATE_SCHEMAS)
    # Row order inside a table carries no meaning here (every reader orders or filters by
    # position), and letting DuckDB insert in parallel makes replay much faster.
    con.execute("SET preserve_insertion_order = false")
    try:
        yield log, con
    finally:
        if own_con:
            con.close()
        else:
            con.execute("RESET preserve_insertion_order")
        if own_log:
            log.close()


def _sql(projection: Projection, sql: str, table: str) -> str:
    return sql.replace("@TABLE@", table)


def _params(sql: str, lo: int, hi: int) -> dict[str, int]:
    params = {}
    if "$lo" in sql:
        params["lo"] = lo
    if "$hi" in sql:
        params["hi"] = hi
    return params


def _table_name(projection: Projection, build: int) -> str:
    # Projection names are unique (they are the checkpoint keys), so one schema holds all builds.
    return f"{BUILDS_SCHEMA}.{identifier(projection.name)}__{int(build)}"


def _point_view(con: Any, projection: Projection, table: str) -> None:
    # Identifiers come from identifier()-checked projection names, never from user input.
    con.execute(f"CREATE OR REPLACE VIEW {projection.view} AS SELECT * FROM {table}")  # noqa: S608


def _install(con: Any, projection: Projection) -> Checkpoint:
    """Create build 1 of a projection, empty, at position 0 (one transaction)."""
    table = _table_name(projection, 1)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(_sql(projection, projection.ddl, table))
        _point_view(con, projection, table)
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
        _rollback(con)
        raise
    return checkpoints(con)[projection.name]


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Positions (lo, hi] of the log: sealed ones read by DuckDB from the parts, or an
    Arrow table (the tail, read through EventLog.read)."""

    lo: int
    hi: int
    files: tuple[str, ...] = ()
    table: pa.Table | None = None


def _chunks(log: EventLog, after: int, until: int, batch_size: int) -> Iterator[_Chunk]:
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
        # each file's bytes are checked against the catalog before DuckDB reads it
        files = tuple(str(log.check_part(p)) for p in parts if p.last > lo and p.first <= hi)
        if log.shredder.enabled:  # personal fields are encrypted in the parts: read decrypted
            yield _Chunk(lo, hi, table=pa.concat_tables(list(log.read(after=lo, until=hi))))
        else:
            yield _Chunk(lo, hi, files=files)
        lo = hi
    if until > max(after, sealed):
        for table in log.read(after=max(after, sealed), until=until):
            for start in range(0, table.num_rows, batch_size):
                piece = table.slice(start, batch_size)
                first = int(piece.column("position")[0].as_py())
                last = int(piece.column("position")[piece.num_rows - 1].as_py())
                yield _Chunk(first - 1, last, table=piece)


def _stage(con: Any, chunk: _Chunk) -> datetime | None:
    """Make the chunk's events the relation ``batch``; returns the recorded_at of its end."""
    if chunk.table is not None:
        con.register("batch", chunk.table)
        return chunk.table.column("recorded_at")[chunk.table.num_rows - 1].as_py()  # type: ignore[no-any-return]
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


def _unstage(con: Any) -> None:
    con.unregister("batch")


def _apply_source(
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
    sql = _sql(projection, projection.batch_sql, table)
    chunks = list(_chunks(log, after, until, batch_size))
    for k, chunk in enumerate(chunks):
        held = hold_last and k == len(chunks) - 1
        if checkpoint:
            con.execute("BEGIN TRANSACTION")
        try:
            recorded = _stage(con, chunk)
            con.execute(sql)
            _unstage(con)
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
                _rollback(con)
            # A compaction removed a part between listing and reading: start over from
            # the last committed position with a fresh listing (never skips or repeats).
            if "No files found" in str(exc) or "No such file" in str(exc):
                raise _PartsMovedError(position) from exc
            raise
        except BaseException:
            if checkpoint:
                _rollback(con)
            raise
        if checkpoint and on_commit is not None and not held:
            on_commit(projection.name, position)
    return position, recorded


def _rollback(con: Any) -> None:
    """Roll back, keeping the error that got us here: DuckDB may have aborted already."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


class _PartsMovedError(Exception):
    """A part named in a listing was gone when read (compaction); re-list and retry."""

    def __init__(self, position: int) -> None:
        self.position = position


@dataclass(slots=True)
class FoldCache:
    """The last fold of a run: ``orders`` and ``order_states`` fold the same events once.

    ``full`` says whether any folding projection of the run reads every state; if none
    does (``orders`` alone reads the last state per order), the fold keeps only those.
    """

    full: bool
    key: tuple[str, int, int] | None = None
    states: pa.Table | None = None

    @classmethod
    def for_run(cls, projections: Sequence[Projection]) -> FoldCache:
        """The cache of a run over ``projections``."""
        return cls(full=any(p.folds and not p.last_states_only for p in projections))


def _register_states(
    con: Any, projection: Projection, source: str, lo: int, hi: int, cache: FoldCache
) -> None:
    """For a folding projection, register ``states``: fold_states of the source's events.

    ``orders`` and ``order_states`` fold the same events in one run: computed once.
    """
    if not projection.folds:
        return
    key = (source, lo, hi)
    if cache.key != key or cache.states is None:
        cache.states = _fold(con, source, lo, hi, last_only=not cache.full)
        cache.key = key
    con.register("states", cache.states)


def _fold(con: Any, source: str, lo: int, hi: int, *, last_only: bool) -> pa.Table:
    """fold_states of the events a source query selects ($lo/$hi bound)."""
    sql = FOLD_INPUT.replace("@SOURCE@", source)
    events = con.sql(sql, params=_params(sql, lo, hi))
    return fold_states(events.to_arrow_table(), last_only=last_only)


def _full(con: Any, projection: Projection, table: str, hi: int, cache: FoldCache) -> None:
    _register_states(con, projection, SOURCE_ALL, 0, hi, cache)
    sql = _sql(projection, projection.full_sql, table)
    con.execute(sql, _params(sql, 0, hi))


def _apply_derived(
    con: Any,
    projection: Projection,
    table: str,
    lo: int,
    hi: int,
    cache: FoldCache,
    touched: dict[tuple[int, int], int] | None = None,
) -> None:
    """Bring ``table`` from ``lo`` to ``hi`` (inside the caller's transaction).

    ``touched`` remembers the (lo, hi) whose temp tables this transaction already built,
    with how many of those orders the tables already hold rows for.
    """
    if lo == 0 or hi - lo > hi // 2:
        con.execute(f"DELETE FROM {table}")  # noqa: S608 - a checked identifier
        _full(con, projection, table, hi, cache)
        return
    built = touched if touched is not None else {}
    if (lo, hi) not in built:
        con.execute(TOUCHED, {"lo": lo, "hi": hi})
        con.execute(TOUCHED_POSITIONS, {"hi": hi})
        con.execute(TOUCHED_EVENTS)
        con.execute(TOUCHED_KNOWN, {"lo": lo})
        known = con.execute("SELECT count(*) FROM touched_known").fetchall()
        built.clear()
        built[(lo, hi)] = int(known[0][0]) if known else 0
    _register_states(con, projection, SOURCE_TOUCHED, lo, hi, cache)
    if projection.reads_previous_states:
        previous = _fold(con, SOURCE_PREVIOUS, lo, hi, last_only=True)
        con.register("previous_states", previous)
    for statement in projection.incremental_sql:
        if statement == DELETE_TOUCHED_ORDERS and built[(lo, hi)] == 0:
            continue  # only new orders: the table holds no rows of theirs to delete
        sql = _sql(projection, statement, table)
        con.execute(sql, _params(sql, lo, hi))


def _install_macros_when_ready(con: Any) -> None:
    """The as-of macros bind to their tables, so they follow the first install."""
    present = checkpoints(con)
    if ORDER_EVENTS.name in present and ORDER_STATES.name in present:
        install_macros(con, force=True)


def _count(con: Any, projection: Projection) -> int:
    rows = con.execute(f"SELECT count(*) FROM {projection.view}").fetchall()  # noqa: S608
    return int(rows[0][0])


def _head(log: EventLog) -> tuple[int, datetime | None]:
    head = log.head()
    if head == 0:
        return 0, None
    last = log.read_all(after=head - 1, until=head, columns=["position", "recorded_at"])
    return head, last.column("recorded_at")[0].as_py()


def _lag_seconds(head_at: datetime | None, at: datetime | None, lag_events: int) -> float:
    if lag_events <= 0 or head_at is None:
        return 0.0
    if at is None:
        return 0.0
    return max(0.0, (head_at - at).total_seconds())


@dataclass(frozen=True, slots=True)
class _Done:
    projection: Projection
    before: int
    duration_s: float
    rebuilt: bool
    applied: int


def _reports(con: Any, log: EventLog, done: list[_Done]) -> list[ProjectionReport]:
    """One report per projection run, lag measured against the log head after the run."""
    head, head_at = _head(log)
    stored = checkpoints(con)
    return [_report(con, stored[d.projection.name], d, head, head_at) for d in done]


def _report(
    con: Any, cp: Checkpoint, done: _Done, head: int, head_at: datetime | None
) -> ProjectionReport:
    projection = done.projection
    lag = max(0, head - cp.position)
    return ProjectionReport(
        name=projection.name,
        code_version=projection.code_version,
        from_position=done.before,
        to_position=cp.position,
        events_applied=done.applied,
        rows=_count(con, projection),
        duration_s=done.duration_s,
        lag_events=lag,
        lag_seconds=_lag_seconds(head_at, cp.recorded_at, lag),
        rebuilt=done.rebuilt,
        extra={"table": cp.table_name},
    )


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
    build = cp.build + 1
    table = _table_name(projection, build)
    if projection.is_source:
        hi = log.head()
        recorded = None
    else:
        deps = checkpoints(con)
        source = deps[projection.depends_on[0]]
        hi, recorded = source.position, source.recorded_at
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(_sql(projection, projection.ddl, table))
        if projection.is_source:
            hi, recorded = _apply_source(
                con, projection, table, log, 0, hi, batch_size, checkpoint=False, on_commit=None
            )
        else:
            _full(con, projection, table, hi, cache)
        _point_view(con, projection, table)
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
        _rollback(con)
        raise
    return cp.position, hi


def _retrying(build: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """Run a rebuild again when a compaction removed a part it was reading."""
    for _ in range(4):
        try:
            return build()
        except _PartsMovedError:
            continue
    return build()


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

    ``hold_last``: a source leaves its last batch's transaction open (``_apply_source``).
    """
    if projection.is_source:
        start = cp.position
        for _ in range(5):
            try:
                _apply_source(
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
            except _PartsMovedError as moved:
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
        _apply_derived(con, projection, cp.table_name, cp.position, hi, cache)
        con.execute(
            ADVANCE_CHECKPOINT,
            {"name": projection.name, "position": hi, "recorded_at": source.recorded_at},
        )
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    if on_commit is not None:
        on_commit(projection.name, hi)
    return hi - cp.position


def catch_up(
    source: Source,
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
    with _session(source, warehouse) as (log, con):
        until = log.head()
        runs: list[_Run] = []
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
            if found is None:
                found = _install(con, projection)
                stored = checkpoints(con)
            cp = found
            run = _Run(projection, cp.position)
            if cp.code_version != projection.code_version:
                if not rebuild_stale:
                    raise StaleProjectionError(
                        f"projection {projection.name} was built by code version "
                        f"{cp.code_version}, the code is at {projection.code_version}; "
                        "rebuild it ('ledgerlake project --rebuild --only "
                        f"{projection.name}')"
                    )
                _, run.applied = _retrying(
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
            _catch_up_derived(
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
        done = [_Done(r.projection, r.before, r.seconds, r.rebuilt, r.applied) for r in runs]
        return _reports(con, log, done)


@dataclass(slots=True)
class _Run:
    projection: Projection
    before: int
    applied: int = 0
    rebuilt: bool = False
    seconds: float = 0.0


def _catch_up_derived(
    con: Any,
    runs: list[_Run],
    cache: FoldCache,
    on_commit: OnCommit | None,
    *,
    in_transaction: bool = False,
) -> None:
    """Bring every derived projection to its source's checkpoint in one transaction.

    Each projection's rows and checkpoint still commit together; one commit for all of
    them keeps a small catch-up cheap (one fsync, not one per table). With
    ``in_transaction`` the source's last batch is already open in it.
    """
    moved: list[tuple[str, int]] = []
    touched: dict[tuple[int, int], int] = {}
    if not in_transaction:
        con.execute("BEGIN TRANSACTION")
    try:
        stored = checkpoints(con)
        for run in runs:
            started = time.perf_counter()
            cp = stored[run.projection.name]
            source = stored[run.projection.depends_on[0]]
            if source.position > cp.position:
                _apply_derived(
                    con,
                    run.projection,
                    cp.table_name,
                    cp.position,
                    source.position,
                    cache,
                    touched,
                )
                con.execute(
                    ADVANCE_CHECKPOINT,
                    {
                        "name": run.projection.name,
                        "position": source.position,
                        "recorded_at": source.recorded_at,
                    },
                )
                run.applied += source.position - cp.position
                moved.append((run.projection.name, source.position))
            run.seconds += time.perf_counter() - started
        if {ORDER_EVENTS.name, ORDER_STATES.name} <= set(stored):
            install_macros(con)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    if on_commit is not None:
        for name, position in moved:
            on_commit(name, position)


def rebuild(
    source: Source,
    warehouse: Warehouse = None,
    names: Sequence[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_commit: OnCommit | None = None,
) -> list[ProjectionReport]:
    """Rebuild the named projections (default: all) blue-green, then catch them up.

    Only the named ones are rebuilt (``names=None``: all); their dependencies are
    caught up first so the new version starts from a current source.
    """
    chosen = select(names)
    targets = {p.name for p in chosen} if not names else set(names)
    done: list[_Done] = []
    cache = FoldCache.for_run(chosen)
    with _session(source, warehouse) as (log, con):
        until = log.head()
        for projection in chosen:
            started = time.perf_counter()
            cp = checkpoints(con).get(projection.name) or _install(con, projection)
            before = cp.position
            applied = 0
            rebuilt = projection.name in targets
            if rebuilt:
                _, applied = _retrying(
                    partial(_rebuild_one, con, log, projection, cp, batch_size, cache)
                )
                if on_commit is not None:
                    on_commit(projection.name, checkpoints(con)[projection.name].position)
                cp = checkpoints(con)[projection.name]
            applied += _catch_up_one(con, log, projection, cp, until, batch_size, on_commit, cache)
            done.append(_Done(projection, before, time.perf_counter() - started, rebuilt, applied))
        _install_macros_when_ready(con)
        return _reports(con, log, done)


def lag(source: Source, warehouse: Warehouse = None) -> list[Lag]:
    """How far each projection is behind the log (events and seconds), and staleness."""
    log, own_log = _open_log(source)
    own_con = warehouse is None
    try:
        con: Any = warehouse
        stored: dict[str, Checkpoint] = {}
        if own_con:
            try:
                con = connect(log, read_only=True)
            except InvalidInputError:
                con = None
        if con is not None:
            stored = checkpoints(con)
        head, head_at = _head(log)
        out = []
        for p in PROJECTIONS:
            cp = stored.get(p.name)
            position = cp.position if cp else 0
            events = max(0, head - position)
            out.append(
                Lag(
                    name=p.name,
                    code_version=p.code_version,
                    stored_code_version=cp.code_version if cp else None,
                    stale=bool(cp and cp.code_version != p.code_version),
                    position=position,
                    head=head,
                    lag_events=events,
                    lag_seconds=_lag_seconds(head_at, cp.recorded_at if cp else None, events),
                    table_name=cp.table_name if cp else None,
                    updated_at=cp.updated_at if cp else None,
                )
            )
        return out
    finally:
        if own_con and con is not None:
            con.close()
        if own_log:
            log.close()
