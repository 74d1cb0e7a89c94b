"""The Definitions of a deployment on many machines (``dagster code-server start -m
pipelines.deployment``): the same assets, checks, jobs, sensor and schedule as
``pipelines.definitions``, with the multiprocess executor (one process per step, at most
four at once; the ``warehouse`` pool still lets one step at a time write the DuckDB file).
See docs/dagster.md for the dagster.yaml that goes with it.
"""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import build_definitions

defs = build_definitions(executor=dg.multiprocess_executor.configured({"max_concurrent": 4}))
