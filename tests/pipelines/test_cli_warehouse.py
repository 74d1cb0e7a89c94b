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
from tests.support.terminal import in_terminal, piped

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
    assert {(x["kind"], x["name"]): x["lag_events"] for x in json.loads(lag.stdout)} == {
        **{("warehouse", name): 0 for name in reports},
        ("vectors", "event_narratives"): 22,
        ("vectors", "order_stories"): 22,
        ("training", "training_set"): 22,
    }
    log = open_order_log(lake_with_orders, clock=StepClock(RECORDED_T0 + timedelta(days=1)))
    log.append("o3", [ev("CustomerNoteAdded", t(5, 9), author="a", note="n")])
    log.close()
    lag = json.loads(cli(lake_with_orders, "lag", "--json").stdout)
    warehouse = [x for x in lag if x["kind"] == "warehouse"]
    assert len(warehouse) == len(reports)
    # The new event was recorded hours after the last one the projections applied.
    assert all(x["lag_events"] == 1 and x["lag_seconds"] > 3600 for x in warehouse)


def test_project_only_and_rebuild(lake_with_orders: Path) -> None:
    done = cli(lake_with_orders, "project", "--only", "customers", "--json")
    assert done.exit_code == 0, done.output
    assert [r["name"] for r in json.loads(done.stdout)] == ["order_events", "orders", "customers"]
    again = cli(lake_with_orders, "project", "--rebuild", "--only", "orders", "--json")
    assert again.exit_code == 0, again.output
    by_name = {r["name"]: r for r in json.loads(again.stdout)}
    assert by_name["orders"]["rebuilt"] and not by_name["order_events"]["rebuilt"]
    assert by_name["orders"]["table"] == "builds.orders__2"
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
    ("query", "kind"),
    [
        ("DELETE FROM builds.orders__1", "DELETE"),
        ("INSERT INTO meta.checkpoints VALUES ('x', '1', 0, NULL, now(), 't', 1)", "INSERT"),
        ("DROP VIEW analytics.orders", "DROP"),
        ("CREATE TABLE analytics.x AS SELECT 1", "CREATE"),
        ("COPY (SELECT 1) TO 'out.csv'", "COPY"),
        ("SELECT 1; DELETE FROM builds.orders__1", "DELETE"),
        ("ATTACH 'other.duckdb'", "ATTACH"),
        ("UPDATE analytics.orders SET status = 'x'", "UPDATE"),
        ("INSTALL httpfs", "LOAD"),
        ("EXPORT DATABASE 'dump'", "EXPORT"),
    ],
)
def test_sql_refuses_writes(lake_with_orders: Path, query: str, kind: str) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    result = cli(lake_with_orders, "sql", query)
    assert result.exit_code == 2
    # The command's own guard refused it (not DuckDB's read-only connection, which
    # would say "Cannot execute statement of type ... in read-only mode").
    assert f"'sql' is read-only: a {kind} statement is refused" in result.stderr
    assert "read-only mode" not in result.stderr
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


def test_sql_in_a_terminal_prints_an_aligned_table(lake_with_orders: Path) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    query = "SELECT order_id, status, total_cents FROM analytics.orders ORDER BY order_id"
    shown = in_terminal("--lake", str(lake_with_orders), "sql", query)
    assert shown.code == 0, shown.stderr
    lines = shown.terminal.splitlines()
    header = next(line for line in lines if "order_id" in line)
    assert header.startswith("┃") and "status" in header and "total_cents" in header
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 4 and "\t" not in shown.terminal
    assert len({len(line) for line in (header, *rows)}) == 1  # every line equally wide
    o1 = next(line for line in rows if "│ o1 " in line)
    cells = o1.split("│")[1:-1]
    assert [c.strip() for c in cells] == ["o1", "delivered", "1300"]
    assert cells[2].endswith("1300 ") and cells[2].startswith("  ")  # numbers right-aligned
    assert lines[-1].strip() == "4 rows"
    # Piped, or asked for, the machine formats stay: TSV by default, CSV/JSON on request.
    assert piped("--lake", str(lake_with_orders), "sql", query).stdout.splitlines()[:2] == [
        "order_id\tstatus\ttotal_cents",
        f"{QUOTED}\tcancelled\t0",
    ]
    tsv = in_terminal("--lake", str(lake_with_orders), "sql", query, "--tsv")
    assert tsv.terminal.splitlines()[0] == "order_id\tstatus\ttotal_cents"
    as_json = in_terminal("--lake", str(lake_with_orders), "sql", query, "--json")
    assert json.loads(as_json.terminal)[1] == {
        "order_id": "o1",
        "status": "delivered",
        "total_cents": 1300,
    }
    both = cli(lake_with_orders, "sql", query, "--csv", "--json")
    assert both.exit_code == 2 and "choose one of --json, --csv and --tsv" in both.stderr


def test_build_tables_live_in_their_own_schema(lake_with_orders: Path) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    assert cli(lake_with_orders, "project", "--rebuild", "--only", "orders").exit_code == 0
    listing = cli(
        lake_with_orders,
        "sql",
        "SELECT schema, name FROM (SHOW ALL TABLES) WHERE schema <> 'builds' ORDER BY 1, 2",
        "--json",
    )
    assert json.loads(listing.stdout) == [
        {"schema": schema, "name": name}
        for schema, name in [
            ("analytics", "customers"),
            ("analytics", "daily_sales"),
            ("analytics", "order_events"),
            ("analytics", "order_lines"),
            ("analytics", "orders"),
            ("analytics", "payments"),
            ("meta", "checkpoints"),
            ("meta", "macros"),
            ("temporal", "order_states"),
        ]
    ]
    builds = cli(
        lake_with_orders,
        "sql",
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'builds' ORDER BY 1",
        "--json",
    )
    assert [r["table_name"] for r in json.loads(builds.stdout)] == [
        "customers__1",
        "daily_sales__1",
        "order_events__1",
        "order_lines__1",
        "order_states__1",
        "orders__2",
        "payments__1",
    ]


@pytest.mark.parametrize("args", [["sql", "SELECT 1"], ["state", "o1"], ["lag"]])
def test_no_lake_says_there_is_no_lake(tmp_path: Path, args: list[str]) -> None:
    nowhere = tmp_path / "nowhere"
    result = cli(nowhere, *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: no lake at {nowhere}; create one with 'ledgerlake generate' or 'ledgerlake append'"
    )
    assert not nowhere.exists()


def test_state_shows_money_with_currency_version_and_window(lake_with_orders: Path) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    # As of 2026-03-02 (a date: midnight UTC) o1 is paid; the next event is the shipping.
    shown = cli(lake_with_orders, "state", "o1", "--as-of", "2026-03-02")
    assert shown.exit_code == 0, shown.output
    assert shown.stderr == (
        "note: --as-of 2026-03-02 is read as 2026-03-02T00:00:00+00:00 "
        "(the start of that day in UTC)\n"
    )
    fields = dict(line.split(maxsplit=1) for line in shown.stdout.splitlines())
    assert fields["status"] == "paid"
    assert (fields["subtotal"], fields["discount"], fields["total"]) == (
        "EUR 15.00",
        "EUR 2.00",
        "EUR 13.00",
    )
    assert (fields["captured"], fields["refunded"]) == ("EUR 13.00", "EUR 0.00")
    assert "total_cents" not in fields
    assert fields["version"] == "8"
    assert fields["valid_from"] == "2026-03-01T10:07:00+00:00"
    assert fields["valid_to"] == "2026-03-02T09:00:00+00:00"
    now = cli(lake_with_orders, "state", "o1")
    assert now.stderr == ""
    assert now.stdout.splitlines()[-1].split(maxsplit=1) == [
        "valid_to",
        "- (still the current state)",
    ]
    as_json = json.loads(
        cli(lake_with_orders, "state", "o1", "--as-of", "2026-03-02", "--json").stdout
    )
    assert (as_json["total_cents"], as_json["version"]) == (1300, 8)
    assert (as_json["valid_from"], as_json["valid_to"]) == (
        "2026-03-01T10:07:00+00:00",
        "2026-03-02T09:00:00+00:00",
    )
    # A note recorded on 03-10 about 03-06: as known on 03-05 the state of 03-08 is still
    # current (no window end); as known now it ended on 03-06.
    log = open_order_log(lake_with_orders, clock=StepClock(RECORDED_T0 + timedelta(days=8)))
    log.append("o1", [ev("CustomerNoteAdded", t(6, 9), author="a", note="late note")])
    log.close()
    assert cli(lake_with_orders, "project").exit_code == 0

    def window(*known: str) -> tuple[str, str | None]:
        args = ["state", "o1", "--as-of", "2026-03-08T00:00Z", *known, "--json"]
        state = json.loads(cli(lake_with_orders, *args).stdout)
        return state["valid_from"], state["valid_to"]

    assert window("--known-at", "2026-03-05T00:00Z") == ("2026-03-04T10:00:00+00:00", None)
    assert window() == ("2026-03-06T09:00:00+00:00", None)
    earlier = ["state", "o1", "--as-of", "2026-03-05T00:00Z", "--json"]
    assert json.loads(cli(lake_with_orders, *earlier).stdout)["valid_to"] == (
        "2026-03-06T09:00:00+00:00"
    )


@pytest.mark.parametrize("bad", ["2026-02-30", "2026-13-01"])
def test_as_of_a_date_that_does_not_exist_exits_2(lake_with_orders: Path, bad: str) -> None:
    assert cli(lake_with_orders, "project").exit_code == 0
    result = cli(lake_with_orders, "state", "o1", "--as-of", bad)
    assert result.exit_code == 2
    assert result.stderr == f"error: --as-of: {bad!r} is not a calendar date\n"
