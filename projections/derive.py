"""The derived projections: full fills, incremental updates of touched orders, the shared fold."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.builds import OnCommit, params, rollback, sql_for
from projections.fold import Folded, fold_input, fold_orders
from projections.order_events import ORDER_EVENTS
from projections.projection import (
    DELETE_TOUCHED_ORDERS,
    SOURCE_ALL,
    SOURCE_PREVIOUS,
    SOURCE_TOUCHED,
    Projection,
)
from projections.temporal import ORDER_STATES, install_macros
from projections.warehouse import ADVANCE_CHECKPOINT, checkpoints

# The orders with events in ($lo, $hi], each with its first version among them.
TOUCHED = """
CREATE OR REPLACE TEMP TABLE touched AS
SELECT order_id, min(version) AS first_version FROM analytics.order_events
WHERE position > $lo AND position <= $hi
GROUP BY order_id
"""
# The touched orders the derived tables already hold rows for (events at or before the
# checkpoint): only theirs are deleted and recomputed; a new order has nothing to delete.
# An order's versions grow with its positions (both are given at commit, in order), so
# an order has events at or before $lo exactly when its first version after $lo is not 1.
TOUCHED_KNOWN = """
CREATE OR REPLACE TEMP TABLE touched_known AS
SELECT order_id FROM touched WHERE first_version > 1
"""
# The touched orders' whole histories, gathered once per catch-up and read by every
# derived projection (one scan of order_events instead of one per projection).
# When every touched order is new, its history is the new events alone.
TOUCHED_NEW_EVENTS = """
CREATE OR REPLACE TEMP TABLE touched_events AS
SELECT * FROM analytics.order_events WHERE position > $lo AND position <= $hi
"""
# Otherwise two steps: the positions first (reads only order_id and position), then the
# rows at those positions; filtering all 38 columns on order_id at once would decode
# every row.
TOUCHED_POSITIONS = """
CREATE OR REPLACE TEMP TABLE touched_positions AS
SELECT position FROM analytics.order_events
WHERE position <= $hi AND order_id IN (SELECT order_id FROM touched)
"""
TOUCHED_HISTORIES = """
CREATE OR REPLACE TEMP TABLE touched_events AS
SELECT * FROM analytics.order_events WHERE position IN (SELECT position FROM touched_positions)
"""


@dataclass(slots=True)
class FoldCache:
    """The last fold of a run: its folding projections fold the same events once.

    The fold computes only what the run's projections read (``Projection.fold_tables``):
    ``full``, every state (else each order's last alone: ``orders`` reads only those);
    ``lines``, the cart lines and payments.
    """

    full: bool
    lines: bool = False
    key: tuple[str, int, int] | None = None
    folded: Folded | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while a fold is computed: projections built side by side fold once."""

    @classmethod
    def for_run(cls, projections: Sequence[Projection]) -> FoldCache:
        """The cache of a run over ``projections``."""
        tables = {t for p in projections for t in p.fold_tables}
        return cls(
            full="states" in tables,
            lines=bool(tables & {"folded_lines", "folded_payments"}),
        )


def register_states(
    con: Any, projection: Projection, source: str, lo: int, hi: int, cache: FoldCache
) -> None:
    """For a folding projection, register the fold of the source's events: ``states``
    (every state, when the run needs them), ``last_states`` (each order's last), and
    ``folded_lines`` and ``folded_payments`` (when the run needs them).

    The folding projections of a run fold the same events: computed once.
    """
    if not projection.folds:
        return
    key = (source, lo, hi)
    with cache.lock:
        if cache.key != key or cache.folded is None:
            cache.folded = fold(con, source, lo, hi, every=cache.full, lines=cache.lines)
            cache.key = key
        folded = cache.folded
    con.register("last_states", folded.last)
    for name, table in (
        ("states", folded.every),
        ("folded_lines", folded.lines),
        ("folded_payments", folded.payments),
    ):
        if table is not None:
            con.register(name, table)


def fold(con: Any, source: str, lo: int, hi: int, *, every: bool, lines: bool = False) -> Folded:
    """fold_orders of the events a source query selects ($lo/$hi bound)."""
    sql = fold_input(source, lines=lines)
    events = con.sql(sql, params=params(sql, lo, hi))
    return fold_orders(events.to_arrow_table(), every=every, lines=lines)


def fill(con: Any, projection: Projection, table: str, hi: int, cache: FoldCache) -> None:
    """Fill an empty table from every event up to ``hi`` (inside the caller's transaction)."""
    register_states(con, projection, SOURCE_ALL, 0, hi, cache)
    sql = sql_for(projection, projection.full_sql, table)
    con.execute(sql, params(sql, 0, hi))


def apply_derived(
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
        fill(con, projection, table, hi, cache)
        return
    built = touched if touched is not None else {}
    if (lo, hi) not in built:
        con.execute(TOUCHED, {"lo": lo, "hi": hi})
        con.execute(TOUCHED_KNOWN)
        rows = con.execute("SELECT count(*) FROM touched_known").fetchall()
        known = int(rows[0][0]) if rows else 0
        if known:
            con.execute(TOUCHED_POSITIONS, {"hi": hi})
            con.execute(TOUCHED_HISTORIES)
        else:  # only new orders: nothing before $lo to gather
            con.execute(TOUCHED_NEW_EVENTS, {"lo": lo, "hi": hi})
        built.clear()
        built[(lo, hi)] = known
    register_states(con, projection, SOURCE_TOUCHED, lo, hi, cache)
    if projection.reads_previous_states:
        previous = fold(con, SOURCE_PREVIOUS, lo, hi, every=False).last
        con.register("previous_states", previous)
    for statement in projection.incremental_sql:
        if statement == DELETE_TOUCHED_ORDERS and built[(lo, hi)] == 0:
            continue  # only new orders: the table holds no rows of theirs to delete
        sql = sql_for(projection, statement, table)
        con.execute(sql, params(sql, lo, hi))


@dataclass(slots=True)
class Run:
    projection: Projection
    before: int
    applied: int = 0
    rebuilt: bool = False
    seconds: float = 0.0


def catch_up_derived(
    con: Any,
    runs: list[Run],
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
                apply_derived(
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
        rollback(con)
        raise
    if on_commit is not None:
        for name, position in moved:
            on_commit(name, position)
