"""Jobs (catch_up, rebuild_all, compact_log), the log-head sensor and the compaction schedule.

The jobs take the executor of their Definitions (in-process in ``pipelines.definitions``,
multiprocess in ``pipelines.deployment``).
"""

import dagster as dg

from pipelines.assets import EVENT_LOG, PROJECTION_NAMES, VECTOR_ASSETS, WAREHOUSE_ASSETS
from pipelines.resources import LakeResource
from projections import progress, vectors

PROJECTIONS = dg.AssetSelection.assets(EVENT_LOG, *PROJECTION_NAMES, "training_set")
REBUILT = [a.key.to_user_string() for a in (*WAREHOUSE_ASSETS, *VECTOR_ASSETS)]

catch_up_job = dg.define_asset_job(
    name="catch_up",
    selection=PROJECTIONS,
    description="Observe the log, apply the events after each checkpoint to every projection, "
    "export the training set, and run the checks.",
)

rebuild_all_job = dg.define_asset_job(
    name="rebuild_all",
    selection=PROJECTIONS,
    description="Rebuild every projection blue-green from position 0: readers keep the old "
    "table until the new one is whole, then switch in one commit.",
    config={"ops": {name: {"config": {"rebuild": True}} for name in REBUILT}},
    tags={"ledgerlake/mode": "rebuild"},
)


@dg.op(description="Merge each date partition's Parquet parts into one (never changes an event).")
def compact_parts(context: dg.OpExecutionContext, lake: LakeResource) -> dg.Output[int]:
    """Run EventLog.compact and report the parts it wrote."""
    with lake.open_writer() as log:
        before = len(log.live_parts())
        made = log.compact()
        after = len(log.live_parts())
    context.log.info(f"compacted {before} parts into {after}")
    return dg.Output(
        len(made),
        metadata={"parts_before": before, "parts_after": after, "parts_written": len(made)},
    )


@dg.job(name="compact_log", description="Compact the log's Parquet parts, partition by partition.")
def compact_log_job() -> None:
    """The compaction job (scheduled nightly)."""
    compact_parts()


compact_log_schedule = dg.ScheduleDefinition(
    name="compact_log_nightly",
    job=compact_log_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    description="Compact the log every night at 03:30 UTC.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def projection_positions(lake: LakeResource) -> tuple[int, dict[str, int]]:
    """The log head and how far behind it each projection is (events)."""
    with lake.open_log() as log:
        head = log.head()
        behind = {lag.name: lag.lag_events for lag in progress.lag(log)}
        behind |= vectors.vector_lag(log)
    return head, behind


@dg.sensor(
    name="log_head_sensor",
    job=catch_up_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Start a catch_up run when the log head moves past the projections' checkpoints.",
)
def log_head_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource
) -> dg.SensorResult | dg.SkipReason:
    """Request one catch_up run per new head that some projection has not reached."""
    head, behind = projection_positions(lake)
    lagging = {name: n for name, n in behind.items() if n > 0}
    if not lagging:
        return dg.SkipReason(f"every projection is at the log head {head}")
    requested = int(context.cursor) if context.cursor else -1
    if head <= requested:
        return dg.SkipReason(f"a catch_up run for head {requested} was already requested")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"head-{head}",
                tags={"ledgerlake/head": str(head), "ledgerlake/lagging": ",".join(lagging)},
            )
        ],
        cursor=str(head),
    )


@dg.op(
    description="Carry every pending erasure into the warehouse, vectors, exports and free pages."
)
def apply_erasures(context: dg.OpExecutionContext, lake: LakeResource) -> dg.Output[int]:
    """Run the erasure cascade (projections.erasure); the receipt's path goes to the log."""
    from projections import erasure

    with lake.open_writer() as log:
        receipt = erasure.apply_erasures(log, lake.root())
    if receipt is None:
        context.log.info("no erasure pending")
        return dg.Output(0, metadata={"erased": 0})
    erased = len(receipt["erasures"])
    context.log.info(f"erased {erased} customer(s); receipt {receipt['receipt']}")
    # the receipt holds no personal value; the metadata carries only counts and its path
    return dg.Output(erased, metadata={"erased": erased, "receipt": receipt["receipt"]})


@dg.job(name="erase", description="Apply pending erasures (after 'ledgerlake forget').")
def erase_job() -> None:
    """The erasure cascade job."""
    apply_erasures()


@dg.sensor(
    name="erasure_sensor",
    job=erase_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Start the erase job when the log records an erasure not yet applied.",
)
def erasure_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource
) -> dg.RunRequest | dg.SkipReason:
    """One erase run per newest pending erasure."""
    from projections import erasure

    with lake.open_log() as log:
        todo = erasure.pending(log, lake.root())
    if not todo:
        return dg.SkipReason("no erasure pending")
    return dg.RunRequest(run_key=f"erase-{todo[-1].position}")
