"""Erasure end to end: a planted customer, forgotten, and every file read for what is left."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from typer.testing import CliRunner

from pipelines.assets import ALL_ASSETS
from pipelines.cli import app
from pipelines.definitions import resources_for
from tests.support.bytescan import scan
from tests.support.planted import Planted, plant, planted

T_PLANT = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
TOKENS = ("zqxvortel", "yqzwinkle", "glimmerquartz", "snorklewhistle", "plantedmail")


def cli(lake: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--lake", str(lake), *args])


def needles(p: Planted) -> list[str]:
    """The planted values and their rarest words (a text index keeps words, not values)."""
    return [*p.values, *TOKENS]


def materialize(lake: Path, instance: dg.DagsterInstance) -> None:
    result = dg.materialize(
        ALL_ASSETS,
        instance=instance,
        resources=resources_for(str(lake), "hashing"),
        run_config=QUIET,
    )
    assert result.success


@pytest.fixture
def planted_lake(tmp_path: Path) -> tuple[Path, Path, Planted]:
    """A lake with the planted customer (first, so the training cutoffs know their orders)
    and generated orders after, projected, embedded and exported through Dagster."""
    from eventlog.orders.generate import generate
    from eventlog.orders.log import open_order_log

    from .conftest import SMALL

    p = planted()
    lake = tmp_path / "lake"
    with open_order_log(lake, clock=lambda: T_PLANT) as log:
        plant(log, p, T_PLANT)
    generate(lake, **SMALL)
    small_lake = lake
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        materialize(small_lake, instance)
    return small_lake, home, p


def test_forget_and_erase_leave_no_byte_of_the_customer(
    planted_lake: tuple[Path, Path, Planted],
) -> None:
    lake, home, p = planted_lake
    found = scan(lake, needles(p))
    # the scan sees what is there: the derived copies hold the values before the erasure ...
    assert any("warehouse.duckdb" in h for h in found), found
    assert any(".lance" in h for h in found), found
    assert any("training_set.parquet" in h for h in found), found
    # ... the log never held them in clear, nor Dagster's storage
    assert scan(lake / "events", needles(p)) == []
    assert not [h for h in found if "tail.sqlite" in h]
    assert scan(home, needles(p)) == []

    forgot = cli(lake, "forget", p.customer_id, "--json")
    assert forgot.exit_code == 0, forgot.output
    assert json.loads(forgot.stdout)["already_forgotten"] is False
    again = cli(lake, "forget", p.customer_id)
    assert again.exit_code == 0 and "already forgotten" in again.stdout
    erased = cli(lake, "erase", "--apply", "--json")
    assert erased.exit_code == 0, erased.output
    receipt = json.loads(erased.stdout)
    assert [e["customer_id"] for e in receipt["erasures"]] == [p.customer_id]
    assert receipt["steps"]["training_exports"], receipt
    assert cli(lake, "erase").stdout.strip() == "no erasure pending"

    # a catch-up through Dagster after the erasure records its previews too
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        materialize(lake, instance)
    assert scan(lake, needles(p)) == []
    assert scan(home, needles(p)) == []

    hits = cli(lake, "search", p.note, "--k", "50", "--json")
    assert hits.exit_code == 0, hits.output
    assert not any(t in hits.stdout.lower() for t in TOKENS)
    state = cli(lake, "state", p.orders[0], "--as-of", "2026-01-02T00:00:00Z", "--json")
    assert state.exit_code == 0, state.output
    assert json.loads(state.stdout)["customer_id"] == p.customer_id
    assert cli(lake, "verify").exit_code == 0
    receipt_text = Path(receipt["receipt"]).read_text(encoding="utf-8").lower()
    assert not any(v.lower() in receipt_text for v in needles(p))


def test_every_read_path_shows_the_erased_marker(planted_lake: tuple[Path, Path, Planted]) -> None:
    from eventlog.orders.log import open_order_log
    from eventlog.shred import ERASED

    lake, _, p = planted_lake
    assert cli(lake, "forget", p.customer_id).exit_code == 0
    with open_order_log(lake, read_only=True) as log:
        first = log.read_stream(p.orders[0]).column("payload").to_pylist()
        assert json.loads(first[0])["customer_name"] == ERASED
        assert not any(v in text for text in first for v in p.values)
        _, state, _ = log.stream_state(p.orders[0])
        assert state is not None and state["customer_name"] == ERASED
    rows = cli(
        lake,
        "sql",
        f"SELECT customer_name FROM analytics.orders WHERE customer_id = '{p.customer_id}'",
        "--json",
    )
    assert rows.exit_code == 0, rows.output  # the warehouse shows the marker after the cascade
    listed = cli(lake, "erase")
    assert listed.exit_code == 0 and f"1 erasure(s) pending: {p.customer_id}" in listed.stdout
    assert cli(lake, "erase", "--apply").exit_code == 0
    rows = cli(
        lake,
        "sql",
        "SELECT DISTINCT customer_name FROM analytics.orders WHERE "
        f"customer_id = '{p.customer_id}'",
        "--json",
    )
    assert json.loads(rows.stdout) == [{"customer_name": ERASED}]


def test_forget_an_unknown_customer_exits_2_and_writes_nothing(small_lake: Path) -> None:
    before = sorted(str(f) for f in small_lake.rglob("*"))
    result = cli(small_lake, "forget", "cus-nobody")
    assert result.exit_code == 2
    assert "no customer 'cus-nobody'" in result.output
    assert sorted(str(f) for f in small_lake.rglob("*")) == before


def test_the_sensor_requests_the_erase_job_and_the_job_applies_it(
    planted_lake: tuple[Path, Path, Planted],
) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.sensors import erasure_sensor

    lake, _, p = planted_lake
    defs = build_definitions(lake=str(lake), embedder_kind="hashing")
    resources = resources_for(str(lake), "hashing")
    with dg.build_sensor_context(resources=resources) as ctx:
        assert isinstance(erasure_sensor(ctx), dg.SkipReason)
    assert cli(lake, "forget", p.customer_id).exit_code == 0
    with dg.build_sensor_context(resources=resources) as ctx:
        request = erasure_sensor(ctx)
    assert isinstance(request, dg.RunRequest)
    result = defs.get_job_def("erase").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert scan(lake, needles(p)) == []
