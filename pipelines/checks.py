"""Dagster asset checks: the log keeps its invariants and every projection matches the log."""

from dataclasses import dataclass

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlog.log import EventLog
from pipelines.assets import EVENT_LOG
from pipelines.resources import LakeResource, VectorStoreResource, WarehouseResource
from projections import plan
from projections.vector_store import EVENT_NARRATIVES, ORDER_STORIES
from projections.warehouse import checkpoints

MAX_PROBLEMS_SHOWN = 20


@dg.asset_check(
    asset=EVENT_LOG,
    name="log_integrity",
    blocking=True,
    description="EventLog.verify: dense positions, dense versions, unique ids, tiled parts.",
)
def log_integrity(lake: LakeResource) -> dg.AssetCheckResult:
    """Fail (and stop downstream projections in the run) when the log breaks an invariant."""
    with lake.open_log() as log:
        report = log.verify()
    problems = report.problems[:MAX_PROBLEMS_SHOWN]
    return dg.AssetCheckResult(
        passed=report.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if report.ok else f"{len(report.problems)} problem(s): {problems[0]}",
        metadata={
            "head": report.head,
            "sealed_head": report.sealed_head,
            "events": report.events,
            "parts": report.parts,
            "problems": dg.MetadataValue.json(problems),
        },
    )


@dataclass(frozen=True, slots=True)
class LogCounts:
    """What the log holds up to a position: order events and distinct orders."""

    until: int
    events: int
    orders: int


def log_counts(log: EventLog, until: int) -> LogCounts:
    """Count order events and distinct order streams in (0, until], straight from the log."""
    events = 0
    orders: set[str] = set()
    for table in log.read(until=until, columns=["stream_type", "stream_id"]):
        mask = pc.equal(table.column("stream_type").cast(pa.string()), "order")
        ids = table.column("stream_id").filter(mask)
        events += len(ids)
        orders.update(ids.unique().to_pylist())
    return LogCounts(until, events, len(orders))


def head_read(instance: dg.DagsterInstance, name: str) -> int | None:
    """The log head the latest materialization of ``name`` read (None: never materialized)."""
    entry = instance.get_latest_materialization_event(dg.AssetKey(name))
    if entry is None or entry.asset_materialization is None:
        return None
    value = entry.asset_materialization.metadata.get("head_read")
    return int(value.value) if value is not None and isinstance(value.value, int) else None


def warehouse_position(warehouse: WarehouseResource, name: str) -> int:
    """The checkpoint of a DuckDB projection (0 when it, or the warehouse, was never built)."""
    if not warehouse.location().exists():
        return 0
    with warehouse.connect(read_only=True) as con:
        cp = checkpoints(con).get(name)
    return cp.position if cp else 0


def vector_position(vector_store: VectorStoreResource, name: str) -> int:
    """The checkpoint of the table a vector projection's alias points at (0: never built)."""
    from projections.vector_location import vector_location

    if not vector_location(vector_store.lake.root()).exists("aliases.json"):
        return 0
    store = vector_store.store(create=False)
    alias = store.alias(name)
    return store.checkpoint(alias.table)[0] if alias else 0


def caught_up_result(name: str, position: int, head: int | None) -> dg.AssetCheckResult:
    """Pass when the projection's checkpoint reached the head its materialization read."""
    if head is None:
        return dg.AssetCheckResult(
            passed=False,
            description=f"{name} has no materialization recording the head it read",
            metadata={"checkpoint": position},
        )
    return dg.AssetCheckResult(
        passed=position >= head,
        description=None if position >= head else f"{name} is {head - position} events behind",
        metadata={"checkpoint": position, "head_read": head, "behind": max(0, head - position)},
    )


def caught_up_check(name: str, store: str) -> dg.AssetChecksDefinition:
    """Check that projection ``name`` (in the 'warehouse' or 'vectors' store) is caught up."""

    @dg.asset_check(
        asset=name,
        name="caught_up",
        blocking=True,
        description="The checkpoint reached the log head the last materialization read.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        vector_store: VectorStoreResource,
    ) -> dg.AssetCheckResult:
        position = (
            warehouse_position(warehouse, name)
            if store == "warehouse"
            else vector_position(vector_store, name)
        )
        return caught_up_result(name, position, head_read(context.instance, name))

    return _check


def rows_result(name: str, rows: int, expected: int, counts: LogCounts) -> dg.AssetCheckResult:
    """Pass when the projection holds exactly the rows the log implies at its checkpoint."""
    return dg.AssetCheckResult(
        passed=rows == expected,
        description=None
        if rows == expected
        else f"{name} has {rows} rows, the log implies {expected}",
        metadata={"rows": rows, "expected": expected, "checkpoint": counts.until},
    )


def warehouse_rows_check(name: str, sql: str, per: str) -> dg.AssetChecksDefinition:
    """Check a DuckDB projection's row count against the log up to its checkpoint."""

    @dg.asset_check(
        asset=name,
        name="rows_match_log",
        blocking=True,
        description=f"Row count equals the number of {per} in the log up to the checkpoint.",
    )
    def _check(lake: LakeResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            cp = checkpoints(con).get(name)
            row = con.execute(sql).fetchone() if cp else None
        with lake.open_log() as log:
            counts = log_counts(log, cp.position if cp else 0)
        rows = int(row[0]) if row else 0
        return rows_result(name, rows, getattr(counts, per), counts)

    return _check


def vector_rows_check(name: str, per: str) -> dg.AssetChecksDefinition:
    """Check a vector projection's row count against the log up to its checkpoint."""

    @dg.asset_check(
        asset=name,
        name="rows_match_log",
        description=f"Row count equals the number of {per} in the log up to the checkpoint.",
    )
    def _check(lake: LakeResource, vector_store: VectorStoreResource) -> dg.AssetCheckResult:
        store = vector_store.store()
        alias = store.alias(name)
        position = store.checkpoint(alias.table)[0] if alias else 0
        rows = store.open_table(alias.table).count_rows() if alias else 0
        with lake.open_log() as log:
            counts = log_counts(log, position)
        return rows_result(name, rows, getattr(counts, per), counts)

    return _check


@dg.asset_check(
    asset="order_states",
    name="intervals_do_not_overlap",
    blocking=True,
    description="Per order, valid-time intervals are non-empty, ordered and never overlap.",
)
def intervals_do_not_overlap(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Fail when an order has two states valid at the same time (or an empty interval)."""
    with warehouse.connect(read_only=True) as con:
        examples = con.execute(OVERLAPS_SQL, {"n": MAX_PROBLEMS_SHOWN}).fetchall()
        total = con.execute(OVERLAP_COUNT_SQL).fetchone()
    count = int(total[0]) if total else 0
    return dg.AssetCheckResult(
        passed=count == 0,
        description=None if count == 0 else f"{count} overlapping or empty interval(s)",
        metadata={
            "overlaps": count,
            "examples": dg.MetadataValue.json([[str(v) for v in row] for row in examples]),
        },
    )


@dg.asset_check(
    asset="event_narratives",
    name="every_narrative_has_a_vector",
    blocking=True,
    description="Every narrative row has non-empty text and a vector of the model's dimension.",
)
def every_narrative_has_a_vector(vector_store: VectorStoreResource) -> dg.AssetCheckResult:
    """Fail when a narrative lacks its vector (null, wrong length or not finite)."""
    store = vector_store.store()
    alias = store.require(EVENT_NARRATIVES)
    table = store.open_table(alias.table).to_arrow().select(["position", "text", "vector"])
    missing = vector_problems(table, alias.dimension)
    return dg.AssetCheckResult(
        passed=not missing,
        description=None if not missing else f"{len(missing)} narrative(s) without a vector",
        metadata={
            "narratives": table.num_rows,
            "without_vector": len(missing),
            "positions": dg.MetadataValue.json(missing[:MAX_PROBLEMS_SHOWN]),
            "model": alias.model,
        },
    )


def vector_problems(table: pa.Table, dimension: int) -> list[int]:
    """Positions whose text is empty or whose vector is null, mis-sized or not finite."""
    bad: list[int] = []
    for pos, text, vector in zip(
        table.column("position").to_pylist(),
        table.column("text").to_pylist(),
        table.column("vector").to_pylist(),
        strict=True,
    ):
        if (
            not text
            or vector is None
            or len(vector) != dimension
            or not np.isfinite(np.asarray(vector, dtype=np.float64)).all()
        ):
            bad.append(pos)
    return bad


# Consecutive states of an order (by valid_from): each must end where (or before) the next
# starts, only the last may be open-ended, and none may be empty.
OVERLAPS_BASE = """
SELECT order_id, valid_from, valid_to, next_from FROM (
    SELECT order_id, valid_from, valid_to,
           lead(valid_from) OVER (PARTITION BY order_id ORDER BY valid_from, position) AS next_from
    FROM temporal.order_states
)
WHERE (next_from IS NOT NULL AND (valid_to IS NULL OR valid_to > next_from))
   OR (valid_to IS NOT NULL AND valid_to <= valid_from)
"""
OVERLAPS_SQL = OVERLAPS_BASE + " ORDER BY order_id, valid_from LIMIT $n"
OVERLAP_COUNT_SQL = "SELECT count(*) FROM (" + OVERLAPS_BASE + ")"  # noqa: S608 - constants only

ORDER_EVENTS_ROWS = "SELECT count(*) FROM analytics.order_events"
ORDERS_ROWS = "SELECT count(*) FROM analytics.orders"
ORDER_STATES_ORDERS = "SELECT count(DISTINCT order_id) FROM temporal.order_states"

CAUGHT_UP_STORES = {p.name: "warehouse" for p in plan.PROJECTIONS} | {
    n: "vectors" for n in (EVENT_NARRATIVES, ORDER_STORIES)
}

ALL_CHECKS = [
    log_integrity,
    *[caught_up_check(name, store) for name, store in CAUGHT_UP_STORES.items()],
    warehouse_rows_check("order_events", ORDER_EVENTS_ROWS, "events"),
    warehouse_rows_check("orders", ORDERS_ROWS, "orders"),
    warehouse_rows_check("order_states", ORDER_STATES_ORDERS, "orders"),
    vector_rows_check(EVENT_NARRATIVES, "events"),
    vector_rows_check(ORDER_STORIES, "orders"),
    intervals_do_not_overlap,
    every_narrative_has_a_vector,
]
