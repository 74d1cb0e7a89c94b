"""ledgerlake project / state / sql / lag: output, exit codes, read-only guarantees."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from eventlog.orders.log import open_order_log
from pipelines.cli import app
from tests.projections.test_tables import CREATED_C1, O1, O2, O3, ev, t
from tests.support.histories import RECORDED_T0, StepClock, open_log

runner = CliRunner()
QUOTED = "o'; DROP TABLE analytics.orders; --"


def cli(lake: Path, *args: str) -> Result:
    return runner.invoke(app, ["--lake", str(lake), *args])


@pytest.fixture
def lake_with_orders(lake: Path) -> Path:
    log = open_log(lake)
    log.append("o1", O1)
    log.append("o2", O2)
    log.append("o3", O3)
    log.append(
        QUOTED,
        [ev("OrderCreated", t(5, 1), **CREATED_C1), ev("OrderCancelled", t(5, 2), reason="x")],
    )
    log.close()
    return lake


def test_project_then_lag_is_zero(lake_with_orders: Path) -> None:
    done = cli(lake_with_orders, "project", "--json")
    assert done.exit_code == 0, done.output
    reports = {r["name"]: r for r in json.loads(done.stdout)}
    assert set(reports) == {
        "order_events",
        "orders",
        "order_lines",
        "payments",
        "order_states",
        "daily_sales",
        "customers",
    }
    assert reports["orders"]["rows"] == 4 and reports["orders"]["to_position"] == 22
    lag = cli(lake_with_orders, "lag", "--json")
    assert lag.exit_code == 0
    assert {x["name"]: x["lag_events"] for x in json.loads(lag.stdout)} == dict.fromkeys(reports, 0)
    log = open_order_log(lake_with_orders, clock=StepClock(RECORDED_T0 + timedelta(days=1)))
    log.append("o3", [ev("CustomerNoteAdded", t(5, 9), author="a", note="n")])
    log.close()
    lag = json.loads(cli(lake_with_orders, "lag", "--json").stdout)
    # The new event was recorded hours after the last one the projections applied.
    assert all(x["lag_events"] == 1 and x["lag_seconds"] > 3600 for x in lag)


def test_project_only_and_rebuild(lake_with_orders: Path) -> None:
    done = cli(lake_with_orders, "project", "--only", "customers", "--json")
    assert done.exit_code == 0, done.output
    assert [r["name"] for r in json.loads(done.stdout)] == ["order_events", "orders", "customers"]
    again = cli(lake_with_orders, "project", "--rebuild", "--only", "orders", "--json")
    assert again.exit_code == 0, again.output
    by_name = {r["name"]: r for r in json.loads(again.stdout)}
    assert by_name["orders"]["rebuilt"] and not by_name["order_events"]["rebuilt"]
    assert by_name["orders"]["table"] == "analytics.orders__2"
    bad = cli(lake_with_orders, "project", "--only", "nope")
    assert bad.exit_code == 2 and "unknown projection 'nope'" in bad.stderr


def test_state_now_as_of_and_known_at(lake_with_orders: Path) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    now = cli(lake_with_orders, "state", "o1", "--json")
    assert now.exit_code == 0, now.output
    state = json.loads(now.stdout)
    assert (state["status"], state["total_cents"], state["version"]) == ("delivered", 1300, 12)
    then = json.loads(
        cli(lake_with_orders, "state", "o1", "--as-of", "2026-03-01T10:07:00Z", "--json").stdout
    )
    assert (then["status"], then["captured_cents"], then["carrier"]) == ("paid", 1300, None)
    before = cli(lake_with_orders, "state", "o1", "--as-of", "2026-02-01T00:00:00Z", "--json")
    assert before.exit_code == 0 and json.loads(before.stdout) is None
    # Known before anything was recorded: the order was not known to exist.
    unknown_then = cli(
        lake_with_orders,
        "state",
        "o1",
        "--as-of",
        "2026-03-05T00:00:00Z",
        "--known-at",
        "2026-03-01T00:00:00Z",
        "--json",
    )
    assert unknown_then.exit_code == 0 and json.loads(unknown_then.stdout) is None
    quoted = cli(lake_with_orders, "state", QUOTED, "--json")
    assert quoted.exit_code == 0, quoted.output
    assert json.loads(quoted.stdout)["order_id"] == QUOTED
    text = cli(lake_with_orders, "state", "o2")
    assert text.exit_code == 0 and "cancelled" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown order 'nope'"),
        (["o1", "--as-of", "yesterday"], "cannot parse time 'yesterday'"),
        (["o1", "--as-of", "2026-03-01T10:00:00"], "has no timezone"),
        (["o1", "--known-at", "soon"], "--known-at"),
    ],
)
def test_state_bad_input_exits_2(lake_with_orders: Path, args: list[str], message: str) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    result = cli(lake_with_orders, "state", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_sql_json_and_csv(lake_with_orders: Path) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    query = "SELECT order_id, status, created_at FROM analytics.orders ORDER BY order_id"
    as_json = cli(lake_with_orders, "sql", query, "--json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [r["order_id"] for r in rows] == [
        "o'; DROP TABLE analytics.orders; --",
        "o1",
        "o2",
        "o3",
    ]
    assert rows[1]["created_at"] == "2026-03-01T10:00:00+00:00"
    as_csv = cli(lake_with_orders, "sql", query, "--csv")
    parsed = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert parsed[0] == ["order_id", "status", "created_at"] and parsed[2][:2] == [
        "o1",
        "delivered",
    ]
    macro = cli(
        lake_with_orders,
        "sql",
        "SELECT status FROM temporal.orders_as_of(TIMESTAMPTZ '2026-03-01 10:30:00+00') "
        "WHERE order_id = 'o1'",
        "--json",
    )
    assert json.loads(macro.stdout) == [{"status": "paid"}]


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM analytics.orders__1",
        "INSERT INTO meta.checkpoints VALUES ('x', '1', 0, NULL, now(), 't', 1)",
        "DROP VIEW analytics.orders",
        "CREATE TABLE analytics.x AS SELECT 1",
        "COPY (SELECT 1) TO 'out.csv'",
        "SELECT 1; DELETE FROM analytics.orders__1",
        "ATTACH 'other.duckdb'",
    ],
)
def test_sql_refuses_writes(lake_with_orders: Path, query: str, tmp_path: Path) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    result = cli(lake_with_orders, "sql", query)
    assert result.exit_code == 2
    assert "read-only" in result.stderr
    count = cli(lake_with_orders, "sql", "SELECT count(*) AS n FROM analytics.orders", "--json")
    assert json.loads(count.stdout) == [{"n": 4}]


def test_sql_bad_query_and_missing_warehouse(lake_with_orders: Path) -> None:
    missing = cli(lake_with_orders, "sql", "SELECT 1")
    assert missing.exit_code == 2 and "ledgerlake project" in missing.stderr
    assert cli(lake_with_orders, "project").exit_code == 0
    bad = cli(lake_with_orders, "sql", "SELEC nonsense")
    assert bad.exit_code == 2 and "cannot parse the query" in bad.stderr
    nothing = cli(lake_with_orders, "sql", "SELECT * FROM no_such_table")
    assert nothing.exit_code == 2 and "query failed" in nothing.stderr
