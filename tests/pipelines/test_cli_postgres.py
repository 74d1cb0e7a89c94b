"""A lake on PostgreSQL through the CLI: ``init --tail``, every command follows lake.toml,
no password is ever written or printed, a tail that refuses is exit 5 and a version clash
with another writer exit 3, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from typer.testing import CliRunner

from eventlog.envelope import NewEvent
from eventlog.lake import read_config
from eventlog.orders.log import open_order_log
from pipelines.cli import app
from tests.support.postgres import PostgresServer

runner = CliRunner()
CREATED = {
    "stream_id": "o-1",
    "type": "OrderCreated",
    "data": {
        "customer_id": "c-1",
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "channel": "web",
    },
}


def cli(lake: Path, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["--lake", str(lake), *args], input=stdin)


def _rows(server: PostgresServer, schema: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return [tuple(r) for r in conn.execute(query).fetchall()]


def test_init_records_the_tail_and_every_command_commits_there(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    done = cli(lake, "init", "--tail", postgres.url(), "--schema", "cli_lake", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["tail"].startswith(
        f"postgresql://postgres@127.0.0.1:{postgres.port}/"
    )
    assert read_config(lake).tail == postgres.url() and read_config(lake).schema == "cli_lake"
    assert cli(lake, "append", stdin=json.dumps(CREATED)).exit_code == 0
    handled = cli(
        lake,
        "handle",
        json.dumps(
            {
                "command": "AddItem",
                "order_id": "o-1",
                "at": "2026-11-26T12:00:00Z",
                "sku": "MUG",
                "product_name": "Mug",
                "quantity": 2,
                "unit_price_cents": 1250,
                "command_id": "cmd-1",
            }
        ),
    )
    assert handled.exit_code == 0, handled.output
    assert not (lake / "tail.sqlite").exists()
    assert _rows(postgres, "cli_lake", "SELECT position, version FROM tail ORDER BY 1") == [
        (1, 1),
        (2, 2),
    ]
    read = cli(lake, "read", "--json")
    assert [e["event_type"] for e in map(json.loads, read.stdout.splitlines())] == [
        "OrderCreated",
        "ItemAdded",
    ]
    assert cli(lake, "seal").exit_code == 0
    assert _rows(postgres, "cli_lake", "SELECT first, last FROM parts") == [(1, 2)]
    assert cli(lake, "verify").exit_code == 0
    info = json.loads(cli(lake, "info", "--json").stdout)
    assert (info["head"], info["sealed_head"], info["streams"]) == (2, 2, 1)
    again = cli(lake, "init", "--tail", postgres.url(), "--schema", "cli_lake")
    assert again.exit_code == 0  # the same tail again: harmless
    other = cli(lake, "init", "--tail", postgres.url(), "--schema", "elsewhere")
    assert other.exit_code == 2 and "not switched in place" in other.output


def test_a_url_with_a_password_is_refused_and_never_written_or_printed(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{postgres.port}/postgres"
    res = cli(lake, "init", "--tail", url)
    assert res.exit_code == 2
    assert "PGPASSWORD" in res.output and "hunter2" not in res.output
    assert not (lake / "lake.toml").exists()
    # a hand-edited config with a password is refused the same way, before connecting
    lake.mkdir(exist_ok=True)
    (lake / "lake.toml").write_text(f'tail = "{url}"\n')
    res = cli(lake, "info")
    assert res.exit_code == 2 and "hunter2" not in res.output


def test_a_tail_that_cannot_be_reached_is_exit_5_and_nothing_is_written(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    dead = "postgresql://ledgerlake@127.0.0.1:9/orders"  # the discard port: nobody listens
    res = cli(lake, "init", "--tail", dead)
    assert res.exit_code == 5, res.output
    assert "127.0.0.1:9/orders" in res.output and "cannot connect" in res.output
    assert not (lake / "lake.toml").exists()
    (lake / "lake.toml").write_text(f'tail = "{dead}"\n')
    for args in (("info",), ("read",), ("append",)):
        res = cli(lake, *args, stdin=json.dumps(CREATED))
        assert res.exit_code == 5, (args, res.output)
    assert [p.name for p in lake.iterdir()] == ["lake.toml"]


def test_a_version_clash_on_the_postgresql_tail_is_exit_3_and_nothing_is_written(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    assert cli(lake, "init", "--tail", postgres.url(), "--schema", "clash").exit_code == 0
    assert cli(lake, "append", stdin=json.dumps(CREATED)).exit_code == 0
    # another writer (its own connection, as on another machine) moves o-1 to version 2
    other = open_order_log(lake, seal_on_close=False)
    other.append("o-1", [NewEvent("CustomerNoteAdded", {"author": "bo", "note": "hi"})])
    other.close()
    before = _rows(postgres, "clash", "SELECT position, version FROM tail ORDER BY 1")
    assert before == [(1, 1), (2, 2)]

    note = {"stream_id": "o-1", "type": "CustomerNoteAdded", "data": {"author": "ada", "note": "x"}}
    clash = cli(lake, "append", stdin=json.dumps({**note, "expected_version": 1}))
    assert clash.exit_code == 3, clash.output
    assert "stream 'o-1' is at version 2, but version 1 was expected" in clash.output
    command = {
        "command": "AddItem",
        "order_id": "o-1",
        "at": "2026-11-26T12:00:00Z",
        "sku": "MUG",
        "product_name": "Mug",
        "quantity": 1,
        "unit_price_cents": 900,
        "expected_version": 1,
    }
    handled = cli(lake, "handle", json.dumps(command))
    assert handled.exit_code == 3, handled.output
    assert "stream 'o-1' is at version 2, but version 1 was expected" in handled.output
    assert _rows(postgres, "clash", "SELECT position, version FROM tail ORDER BY 1") == before
    assert _rows(postgres, "clash", "SELECT head FROM counters") == [(2,)]

    # at the version the stream really is at, both go through
    ok = cli(lake, "handle", json.dumps({**command, "expected_version": 2}))
    assert ok.exit_code == 0, ok.output
    assert cli(lake, "append", stdin=json.dumps({**note, "expected_version": 3})).exit_code == 0
    assert _rows(postgres, "clash", "SELECT max(version) FROM tail") == [(4,)]
