"""The one Dagster ``Definitions`` of LedgerLake (``dagster dev -m pipelines.definitions``).

Configuration comes from the environment only when a run starts, through ``dg.EnvVar``:
LEDGERLAKE_HOME (the lake) and LEDGERLAKE_EMBEDDER ('sentence-transformers' or 'hashing').
``ledgerlake ui`` sets both for the UI it starts.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipelines.assets import ALL_ASSETS
from pipelines.checks import ALL_CHECKS
from pipelines.resources import (
    EmbedderResource,
    LakeResource,
    VectorStoreResource,
    WarehouseResource,
)
from pipelines.sensors import (
    catch_up_job,
    compact_log_job,
    compact_log_schedule,
    erase_job,
    erasure_sensor,
    log_head_sensor,
    rebuild_all_job,
)


def resources_for(
    lake: str | dg.EnvVar, embedder_kind: str | dg.EnvVar, model_path: str | None = None
) -> dict[str, Any]:
    """The four resources, all bound to one lake."""
    lake_resource = LakeResource(path=lake)
    return {
        "lake": lake_resource,
        "warehouse": WarehouseResource(lake=lake_resource),
        "vector_store": VectorStoreResource(lake=lake_resource),
        "embedder": EmbedderResource(kind=embedder_kind, model_path=model_path),
    }


def build_definitions(
    lake: str | dg.EnvVar = dg.EnvVar("LEDGERLAKE_HOME"),
    embedder_kind: str | dg.EnvVar = dg.EnvVar("LEDGERLAKE_EMBEDDER"),
    model_path: str | None = None,
    executor: dg.ExecutorDefinition = dg.in_process_executor,
) -> dg.Definitions:
    """Every asset, check, job, sensor and schedule with resources bound to ``lake``.

    ``executor``: in-process by default (one process per run, small machines);
    ``pipelines.deployment`` gives the multiprocess one.
    """
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[catch_up_job, rebuild_all_job, compact_log_job, erase_job],
        sensors=[log_head_sensor, erasure_sensor],
        schedules=[compact_log_schedule],
        resources=resources_for(lake, embedder_kind, model_path),
        executor=executor,
    )


defs = build_definitions()
