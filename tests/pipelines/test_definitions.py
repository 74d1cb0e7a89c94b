"""The Dagster definitions load, name every projection, and configure the lake's instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import ALL_ASSETS, WAREHOUSE_GROUP
from pipelines.instance import WAREHOUSE_POOL, dagster_home, lake_instance
from pipelines.resources import EmbedderResource
from projections import plan, vector_store

PROJECTION_NAMES = {p.name for p in plan.PROJECTIONS} | {
    vector_store.EVENT_NARRATIVES,
    vector_store.ORDER_STORIES,
}


def test_module_definitions_load_without_any_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERLAKE_", "DAGSTER_"))}
    code = (
        "import dagster as dg, pipelines.definitions as d;"
        "dg.Definitions.validate_loadable(d.defs);"
        "print(sorted(j.name for j in d.defs.resolve_all_job_defs()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    for job in ("catch_up", "rebuild_all", "compact_log"):
        assert job in out.stdout


def test_one_asset_per_projection_with_its_name_code_version_group_and_description(
    defs: dg.Definitions,
) -> None:
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert PROJECTION_NAMES | {"training_set", "event_log"} == set(specs)
    for projection in plan.PROJECTIONS:
        spec = specs[projection.name]
        assert spec.code_version == projection.code_version
        assert spec.group_name == WAREHOUSE_GROUP
        assert projection.description in (spec.description or "")
        assert {d.asset_key.to_user_string() for d in spec.deps} == {
            "event_log",
            *projection.depends_on,
        }
    for name in PROJECTION_NAMES | {"training_set"}:
        assert specs[name].code_version and specs[name].description


def test_duckdb_writers_share_one_pool(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for projection in plan.PROJECTIONS:
        node = graph.get(dg.AssetKey(projection.name))
        assert node.pools == {WAREHOUSE_POOL}, projection.name


def test_jobs_sensor_and_schedule(defs: dg.Definitions) -> None:
    from pipelines.sensors import rebuild_all_job

    assert rebuild_all_job.config is not None
    rebuilt = {op for op, cfg in rebuild_all_job.config["ops"].items() if cfg["config"]["rebuild"]}
    assert rebuilt == PROJECTION_NAMES
    assert defs.resolve_job_def("catch_up").executor_def.name == "in_process"
    assert defs.resolve_sensor_def("log_head_sensor").job_name == "catch_up"
    schedule = defs.resolve_schedule_def("compact_log_nightly")
    assert schedule.job_name == "compact_log" and schedule.cron_schedule == "30 3 * * *"
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert {"log_integrity", "caught_up", "rows_match_log"} <= checks
    assert {"intervals_do_not_overlap", "every_narrative_has_a_vector"} <= checks


def test_lake_instance_limits_every_pool_to_one_step(lake: Path) -> None:
    home = dagster_home(lake)
    assert home == (lake / ".dagster").resolve() and (home / "dagster.yaml").exists()
    with lake_instance(lake) as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert instance.root_directory == str(home)


def test_unknown_embedder_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown embedder kind 'bert'.*hashing"):
        EmbedderResource(kind="bert").get()


def test_hashing_embedder_resource() -> None:
    embedder = EmbedderResource(kind="hashing").get()
    assert embedder.name.startswith("hashing") and embedder.encode(["a b"]).shape[0] == 1


def test_all_assets_is_the_definitions_content() -> None:
    names = {a.key.to_user_string() for a in ALL_ASSETS if isinstance(a, dg.SourceAsset)}
    assert names == {"event_log"}
