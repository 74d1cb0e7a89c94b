"""The lake's Dagster instance: unchanged on a directory lake, on the lake's PostgreSQL
when its tail is there; the deployment's Definitions use the multiprocess executor."""

from __future__ import annotations

from pathlib import Path

from pipelines.instance import DAGSTER_YAML, instance_yaml, lake_instance
from tests.support.postgres import PostgresServer, make_postgres_lake


def test_a_directory_lake_keeps_its_sqlite_instance(tmp_path: Path) -> None:
    assert instance_yaml(tmp_path) == DAGSTER_YAML
    with lake_instance(tmp_path) as instance:
        assert "Postgres" not in type(instance.run_storage).__name__


def test_a_postgresql_lake_keeps_dagster_beside_its_tail(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    schema = make_postgres_lake(postgres, tmp_path)
    text = instance_yaml(tmp_path)
    assert "postgresql+psycopg2://postgres@127.0.0.1" in text
    assert f"search_path%3D{schema}_dagster" in text and "password" not in text
    with lake_instance(tmp_path) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"


def test_the_deployment_runs_steps_in_processes() -> None:
    from pipelines import definitions, deployment

    assert deployment.defs.resolve_job_def("catch_up").executor_def.name == "multiprocess"
    assert definitions.defs.resolve_job_def("catch_up").executor_def.name == "in_process"
