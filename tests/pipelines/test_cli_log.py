"""The log commands of the ``ledgerlake`` CLI: happy paths, bad input, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from eventlog.envelope import NewEvent
from eventlog.orders.log import open_order_log
from pipelines.cli import app

runner = CliRunner()


def cli(lake: Path, *args: str, stdin: str | None = None) -> Any:
    """Run ``ledgerlake --lake LAKE ARGS`` in-process."""
    return runner.invoke(app, ["--lake", str(lake), *args], input=stdin)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def head_of(lake: Path) -> int:
    with open_order_log(lake, create=False, seal_on_close=False) as log:
        return log.head()


def created(order_id: str = "o-1", **extra: Any) -> dict[str, Any]:
    return {
        "stream_id": order_id,
        "type": "OrderCreated",
        "data": {
            "customer_id": "c-1",
            "customer_name": "Ada Lovelace",
            "customer_email": "ada@example.com",
            "currency": "EUR",
            "channel": "web",
        },
        **extra,
    }


def item(order_id: str = "o-1", quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "stream_id": order_id,
        "type": "ItemAdded",
        "data": {
            "sku": "MUG",
            "product_name": "Mug",
            "quantity": quantity,
            "unit_price_cents": 1800,
        },
        **extra,
    }


def jsonl(*objs: dict[str, Any]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.fixture
def seeded(lake: Path) -> Path:
    """A lake holding one order with one item (positions 1..2)."""
    result = cli(lake, "append", stdin=jsonl(created(), item()))
    assert result.exit_code == 0, result.output
    return lake


# --- generate ---------------------------------------------------------------------------------


def test_generate_prints_a_summary_and_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ra = cli(a, "generate", "--orders", "25", "--days", "3", "--seed", "4", "--json")
    rb = cli(b, "generate", "--orders", "25", "--days", "3", "--seed", "4", "--json")
    assert ra.exit_code == 0, ra.output
    sa, sb = json.loads(ra.stdout), json.loads(rb.stdout)
    assert sa["events"] == sa["head"] == head_of(a) == 203
    assert sa["by_type"]["OrderCreated"] == 25
    assert {k: v for k, v in sa.items() if k not in ("seconds", "events_per_second")} == {
        k: v for k, v in sb.items() if k not in ("seconds", "events_per_second")
    }
    assert cli(a, "read").stdout == cli(b, "read").stdout
    text = cli(tmp_path / "c", "generate", "--orders", "5", "--days", "2")
    assert text.exit_code == 0 and "events" in text.stdout


@pytest.mark.parametrize(
    "args",
    [["--orders", "0"], ["--days", "-1"], ["--orders", "x"], ["--start", "2026-01-01T00:00:00"]],
)
def test_generate_bad_arguments_exit_2_and_write_nothing(tmp_path: Path, args: list[str]) -> None:
    lake = tmp_path / "lake"
    result = cli(lake, "generate", *args)
    assert result.exit_code == 2
    assert not lake.exists()


# --- append -----------------------------------------------------------------------------------


def test_append_from_stdin_commits_and_prints_positions(lake: Path) -> None:
    result = cli(lake, "append", "--json", stdin=jsonl(created(), item(), created("o-2")))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["appended"], out["first_position"], out["last_position"], out["head"]) == (
        3,
        1,
        3,
        3,
    )
    assert [r["stream_id"] for r in out["results"]] == ["o-1", "o-2"]  # consecutive lines group
    text = cli(lake, "append", stdin=jsonl(item(quantity=2)))
    assert text.exit_code == 0 and "positions 4..4" in text.stdout


def test_append_from_a_file_with_all_optional_keys(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        jsonl(
            created(
                expected_version="no_stream",
                occurred_at="2026-02-03T10:00:00+01:00",
                metadata={"source": "import"},
                event_id="8c1f2a4e-3b5d-4c6e-9f70-1a2b3c4d5e6f",
                stream_type="order",
            ),
            item(expected_version=1),
        )
        + "\n"
    )
    result = cli(lake, "append", str(path))
    assert result.exit_code == 0, result.output
    events = lines(cli(lake, "read").stdout)
    assert events[0]["occurred_at"] == "2026-02-03T09:00:00+00:00"
    assert events[0]["metadata"] == {"source": "import"}
    assert events[0]["event_id"] == "8c1f2a4e-3b5d-4c6e-9f70-1a2b3c4d5e6f"
    assert [e["version"] for e in events] == [1, 2]


BAD_LINES = [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"stream_id": "o-1", "data": {}}), "missing type"),
    (json.dumps({**item(), "colour": "red"}), "unknown keys colour"),
    (json.dumps({**item(), "type": "ItemTeleported"}), "unknown event type"),
    (
        json.dumps({**item(), "data": {"sku": "MUG", "quantity": 1, "unit_price_cents": 5}}),
        "product_name",
    ),
    (json.dumps({**item(), "data": {**item()["data"], "quantity": "two"}}), "integer"),
    (json.dumps({**item(), "data": "MUG"}), "JSON object"),
    (json.dumps(item("../x")), "must not contain"),
    (json.dumps(item("a/b")), "must not contain"),
    (json.dumps(item("")), "must not be empty"),
    (json.dumps(item("x" * 201)), "at most 200"),
    (json.dumps(item("a\x01b")), "control characters"),
    (json.dumps(item(expected_version=-1)), "expected_version"),
    (json.dumps(item(expected_version="latest")), "expected_version"),
    (json.dumps(item(occurred_at="2026-01-01T00:00:00")), "timezone"),
    (json.dumps(item(occurred_at="yesterday")), "ISO 8601"),
    (json.dumps(item(metadata=[1])), "metadata"),
    (json.dumps(item(event_id="nope")), "not a UUID"),
    (json.dumps(item(stream_type="invoice")), "stream type"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_LINES)
def test_append_bad_line_exits_2_names_the_line_and_writes_nothing(
    seeded: Path, bad: str, message: str
) -> None:
    stdin = jsonl(item()) + bad + "\n" + jsonl(item())
    result = cli(seeded, "append", stdin=stdin)
    assert result.exit_code == 2, result.output
    assert "line 2" in result.stderr
    assert message in result.stderr
    assert head_of(seeded) == 2


def test_append_bad_input_to_a_missing_lake_creates_nothing(tmp_path: Path) -> None:
    lake = tmp_path / "nowhere"
    assert cli(lake, "append", stdin="{oops\n").exit_code == 2
    assert cli(lake, "append", stdin="\n\n").exit_code == 2
    assert cli(lake, "append", str(tmp_path / "missing.jsonl")).exit_code == 2
    assert not lake.exists()


def test_append_version_clash_exits_3_and_writes_nothing(seeded: Path) -> None:
    stdin = jsonl(created("o-9"), item(expected_version=5))
    result = cli(seeded, "append", stdin=stdin)
    assert result.exit_code == 3, result.output
    assert "version" in result.stderr
    assert head_of(seeded) == 2
    assert cli(seeded, "append", stdin=jsonl(created(expected_version="no_stream"))).exit_code == 3


def test_append_repeated_event_ids_append_nothing(seeded: Path) -> None:
    line = jsonl(item(event_id="11111111-2222-4333-8444-555555555555"))
    assert cli(seeded, "append", stdin=line).exit_code == 0
    again = cli(seeded, "append", "--json", stdin=line)
    assert again.exit_code == 0
    assert json.loads(again.stdout)["appended"] == 0
    assert head_of(seeded) == 3


# --- handle -----------------------------------------------------------------------------------


CREATE = {
    "command": "CreateOrder",
    "order_id": "o-7",
    "customer_id": "c-7",
    "customer_name": "Grace Hopper",
    "customer_email": "grace@example.com",
    "currency": "USD",
    "channel": "web",
}
ADD = {
    "command": "AddItem",
    "order_id": "o-7",
    "sku": "KBD",
    "product_name": "Keyboard",
    "quantity": 2,
    "unit_price_cents": 12999,
}


def test_handle_records_events_from_argument_file_and_stdin(lake: Path, tmp_path: Path) -> None:
    result = cli(lake, "handle", json.dumps(CREATE), "--json")
    assert result.exit_code == 0, result.output
    (event,) = lines(result.stdout)
    assert event["event_type"] == "OrderCreated" and event["position"] == 1
    path = tmp_path / "cmd.json"
    path.write_text(json.dumps({**ADD, "at": "2026-05-01T12:00:00Z"}))
    by_file = cli(lake, "handle", "--file", str(path), "--json")
    assert by_file.exit_code == 0, by_file.output
    (added,) = lines(by_file.stdout)
    assert added["payload"]["quantity"] == 2
    assert added["occurred_at"] == "2026-05-01T12:00:00+00:00"
    by_stdin = cli(lake, "handle", stdin=json.dumps({**ADD, "quantity": 1}))
    assert by_stdin.exit_code == 0 and "ItemAdded" in by_stdin.stdout
    assert head_of(lake) == 3


def test_handle_repeated_command_id_appends_nothing(lake: Path) -> None:
    assert cli(lake, "handle", json.dumps(CREATE)).exit_code == 0
    cmd = json.dumps({**ADD, "command_id": "cmd-1"})
    first = cli(lake, "handle", cmd, "--json")
    again = cli(lake, "handle", cmd, "--json")
    assert again.exit_code == 0
    assert lines(again.stdout) == lines(first.stdout)
    assert head_of(lake) == 2


def test_handle_rule_error_exits_4(lake: Path) -> None:
    assert cli(lake, "handle", json.dumps(CREATE)).exit_code == 0
    ship = {"command": "ShipOrder", "order_id": "o-7", "carrier": "UPS", "tracking_number": "1Z"}
    result = cli(lake, "handle", json.dumps(ship))
    assert result.exit_code == 4
    assert "paid" in result.stderr
    assert head_of(lake) == 1


def test_handle_concurrency_conflict_exits_3(lake: Path) -> None:
    assert cli(lake, "handle", json.dumps(CREATE)).exit_code == 0
    result = cli(lake, "handle", json.dumps({**ADD, "expected_version": 5}))
    assert result.exit_code == 3
    assert head_of(lake) == 1


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ({**ADD, "quantity": 0}, "quantity"),
        ({**ADD, "quantity": -3}, "quantity"),
        ({**ADD, "quantity": "2"}, "integer"),
        ({**ADD, "command": "Teleport"}, "unknown command"),
        ({k: v for k, v in ADD.items() if k != "sku"}, "missing sku"),
        ({**ADD, "order_id": "../x"}, "must not contain"),
        ({**ADD, "at": "tomorrow"}, "ISO 8601"),
        ({**ADD, "expected_version": -1}, "expected_version"),
        ({**ADD, "command_id": 7}, "command_id"),
    ],
)
def test_handle_bad_input_exits_2_and_writes_nothing(
    lake: Path, command: dict[str, Any], message: str
) -> None:
    assert cli(lake, "handle", json.dumps(CREATE)).exit_code == 0
    result = cli(lake, "handle", json.dumps(command))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert head_of(lake) == 1


def test_handle_non_json_and_missing_lake_exit_2(tmp_path: Path) -> None:
    lake = tmp_path / "nowhere"
    assert cli(lake, "handle", "{not json").exit_code == 2
    assert cli(lake, "handle", "[]").exit_code == 2
    missing = cli(lake, "handle", json.dumps(ADD))
    assert missing.exit_code == 2 and "ledgerlake generate" in missing.stderr
    assert not lake.exists()


# --- read -------------------------------------------------------------------------------------


def test_read_prints_envelope_json_lines_with_filters(seeded: Path) -> None:
    assert cli(seeded, "append", stdin=jsonl(created("o-2"), item("o-2"))).exit_code == 0
    events = lines(cli(seeded, "read").stdout)
    assert [e["position"] for e in events] == [1, 2, 3, 4]
    assert set(events[0]) == {
        "position", "stream_type", "stream_id", "version", "event_id", "event_type",
        "schema_version", "occurred_at", "recorded_at", "payload", "metadata",
    }  # fmt: skip
    assert isinstance(events[1]["payload"], dict) and events[1]["payload"]["sku"] == "MUG"
    assert events[0]["recorded_at"].endswith("+00:00")
    stream = lines(cli(seeded, "read", "--stream", "o-2").stdout)
    assert [(e["stream_id"], e["version"]) for e in stream] == [("o-2", 1), ("o-2", 2)]
    assert [e["position"] for e in lines(cli(seeded, "read", "--after", "2").stdout)] == [3, 4]
    assert [e["position"] for e in lines(cli(seeded, "read", "--limit", "3").stdout)] == [1, 2, 3]
    typed = lines(cli(seeded, "read", "--type", "OrderCreated", "--json").stdout)
    assert [e["stream_id"] for e in typed] == ["o-1", "o-2"]
    both = lines(cli(seeded, "read", "--stream", "o-1", "--type", "ItemAdded").stdout)
    assert [e["position"] for e in both] == [2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "ItemTeleported"], "unknown event type"),
        (["--stream", "a/b"], "must not contain"),
        (["--after", "-1"], "after"),
        (["--limit", "-5"], "limit"),
    ],
)
def test_read_bad_input_exits_2(seeded: Path, args: list[str], message: str) -> None:
    result = cli(seeded, "read", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_read_follow_sees_new_events_then_stops_when_idle(seeded: Path) -> None:
    def later() -> None:
        time.sleep(0.5)
        with open_order_log(seeded, seal_on_close=False) as log:
            log.append("o-1", [NewEvent("ItemRemoved", {"sku": "MUG", "quantity": 1})])

    writer = threading.Thread(target=later)
    writer.start()
    result = cli(seeded, "read", "--follow", "--after", "1", "--idle-timeout", "3")
    writer.join()
    assert result.exit_code == 0, result.output
    assert [e["position"] for e in lines(result.stdout)] == [2, 3]


# --- seal, verify, compact, info --------------------------------------------------------------


def test_seal_verify_compact_info(seeded: Path) -> None:
    assert cli(seeded, "append", stdin=jsonl(created("o-2"))).exit_code == 0
    info = json.loads(cli(seeded, "info", "--json").stdout)
    assert info["head"] == 3 and info["streams"] == 2
    sealed = json.loads(cli(seeded, "seal", "--json").stdout)
    assert sealed == {"sealed_head": 3, "head": 3}
    assert cli(seeded, "append", stdin=jsonl(created("o-3"))).exit_code == 0
    assert cli(seeded, "seal").exit_code == 0
    before = json.loads(cli(seeded, "info", "--json").stdout)
    assert before["parts"] >= 2 and before["sealed_head"] == 4 and before["tail_events"] == 0
    assert set(before) >= {"head", "sealed_head", "parts", "partitions", "bytes", "streams"}
    events_before = cli(seeded, "read").stdout
    compacted = json.loads(cli(seeded, "compact", "--json").stdout)
    assert compacted["parts"] == len(before["partitions"]) < before["parts"]
    assert cli(seeded, "read").stdout == events_before
    report = cli(seeded, "verify", "--json")
    assert report.exit_code == 0
    assert json.loads(report.stdout) == {
        "ok": True, "head": 4, "sealed_head": 4, "events": 4, "parts": compacted["parts"],
        "problems": [], "warnings": [],
    }  # fmt: skip
    for command in ("info", "verify", "seal", "compact"):
        text = cli(seeded, command)
        assert text.exit_code == 0 and text.stdout.strip()


def test_read_and_info_do_not_seal_the_tail(seeded: Path) -> None:
    assert cli(seeded, "read").exit_code == 0
    assert cli(seeded, "verify").exit_code == 0
    assert json.loads(cli(seeded, "info", "--json").stdout)["tail_events"] == 2


def test_verify_reports_a_corrupt_part_with_exit_1(seeded: Path) -> None:
    assert cli(seeded, "seal").exit_code == 0
    (part,) = sorted((seeded / "events").rglob("*.parquet"))
    part.write_bytes(b"PAR1 this is not a parquet file PAR1")
    result = cli(seeded, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["head"] == 2
    assert any(part.name in p for p in report["problems"])
    text = cli(seeded, "verify")
    assert text.exit_code == 1 and "NOT OK" in text.stdout


@pytest.mark.parametrize("command", ["read", "verify", "info", "seal", "compact"])
def test_missing_lake_exits_2_with_a_hint(tmp_path: Path, command: str) -> None:
    lake = tmp_path / "nowhere"
    result = cli(lake, command)
    assert result.exit_code == 2
    assert "no lake" in result.stderr and "ledgerlake generate" in result.stderr
    assert not lake.exists()


# --- the installed entry point ----------------------------------------------------------------


def test_installed_entry_point_runs_in_a_subprocess(tmp_path: Path) -> None:
    exe = shutil.which("ledgerlake", path=str(Path(sys.executable).parent))
    assert exe is not None, "the ledgerlake entry point is not installed in this environment"
    lake = str(tmp_path / "lake")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "--lake", lake, *args], input=stdin, capture_output=True, text=True, timeout=120
        )

    gen = run("generate", "--orders", "10", "--days", "2", "--seed", "3", "--json")
    assert gen.returncode == 0, gen.stderr
    head = json.loads(gen.stdout)["head"]
    verified = run("verify", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    bad = run("append", stdin="not json\n")
    assert bad.returncode == 2 and "line 1" in bad.stderr
    first = run("read", "--limit", "1")
    assert first.returncode == 0 and json.loads(first.stdout)["position"] == 1
    assert json.loads(run("info", "--json").stdout)["head"] == head
