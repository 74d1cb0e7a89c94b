"""The whole pipeline off one disk: a PostgreSQL tail, parts and vectors in an S3 bucket
(a real moto server on loopback), Dagster's records in PostgreSQL.

generate -> project -> embed -> search -> export-training -> a Dagster materialization of
every asset, in one test; then a second machine (a fresh lake directory holding only the
lake's config) builds its own warehouse from the shared log and searches the shared
vectors, and Polars scans the parts where they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from typer.testing import CliRunner

from eventlog.lake import read_config, write_config
from eventlog.orders.log import open_order_log
from pipelines.cli import app
from projections.warehouse import create_events_view
from tests.support.dagster_ui import ASSETS
from tests.support.postgres import PostgresServer, make_postgres_lake
from tests.support.s3 import S3Server, make_s3_lake

runner = CliRunner()


def cli(lake: Path, *args: str) -> Any:
    done = runner.invoke(app, ["--lake", str(lake), *args])
    assert done.exit_code == 0, f"{args}: {done.output}"
    return done


@pytest.mark.slow
def test_generate_project_embed_search_export_and_dagster_on_postgresql_and_s3(
    postgres: PostgresServer,
    s3: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg

    lake = tmp_path / "lake"
    schema = make_postgres_lake(postgres, lake)
    url = make_s3_lake(s3, lake, monkeypatch)
    bucket = url.removeprefix("s3://").split("/")[0]

    summary = json.loads(cli(lake, "generate", "--orders", "40", "--days", "30", "--json").stdout)
    events = summary["events"]
    assert events > 100
    assert any(k.startswith("lake/events/date=") for k in s3.keys(bucket))
    assert not (lake / "events").exists() or not any((lake / "events").iterdir())
    assert "ok:" in cli(lake, "verify").stdout

    cli(lake, "project")
    orders = json.loads(
        cli(lake, "sql", "SELECT count(*) AS n FROM analytics.orders", "--json").stdout
    )
    assert orders[0]["n"] == 40

    cli(lake, "embed", "--model", "hashing-64")
    assert any(k.startswith("lake/vectors/") for k in s3.keys(bucket))
    assert not (lake / "vectors").exists()  # the vectors live beside the parts
    hits = json.loads(cli(lake, "search", "payment failed", "--k", "3", "--json").stdout)
    assert len(hits) == 3

    out = tmp_path / "training.parquet"
    cli(lake, "export-training", "--out", str(out), "--model", "hashing-64", "--horizon", "5d")
    assert out.stat().st_size > 0

    # Dagster on the lake's PostgreSQL: every asset materialized, the run recorded there
    from pipelines.definitions import build_definitions
    from pipelines.instance import dagster_schema, lake_instance

    defs = build_definitions(lake=str(lake), embedder_kind="hashing")
    with lake_instance(lake) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = defs.resolve_job_def("catch_up").execute_in_process(instance=instance)
        assert result.success
        done = {
            e.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
        }
        assert done == ASSETS
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks)
        for name in ASSETS:
            assert instance.get_latest_materialization_event(dg.AssetKey(name)) is not None
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        runs = conn.execute(f'SELECT count(*) FROM "{dagster_schema(schema)}".runs').fetchone()
    assert runs is not None and runs[0] >= 1
    assert "password" not in (lake / ".dagster" / "dagster.yaml").read_text()

    # a second machine: only the lake's config; it builds a warehouse from the shared log
    other = tmp_path / "analyst"
    other.mkdir()
    write_config(other, read_config(lake))
    cli(other, "project")
    mine = json.loads(
        cli(other, "sql", "SELECT count(*) AS n FROM analytics.order_events", "--json").stdout
    )
    assert mine[0]["n"] == events
    again = json.loads(
        cli(other, "sql", "SELECT count(*) AS n FROM analytics.orders", "--json").stdout
    )
    assert again == orders
    shared = json.loads(cli(other, "search", "payment failed", "--k", "3", "--json").stdout)
    assert shared == hits

    # Polars scans the parts in the bucket, as the catalog lists them
    from projections.notebook import scan_parts

    with open_order_log(other, read_only=True) as log:
        sealed = log.sealed_head()
        con = duckdb.connect()  # the notebooks' `events` view: parts from the bucket + tail
        create_events_view(con, log)
        assert con.execute("SELECT count(*), max(position) FROM events").fetchone() == (
            events,
            events,
        )
    frame = scan_parts(other).collect()
    assert frame.height == sealed and frame["position"].to_list() == list(range(1, sealed + 1))
