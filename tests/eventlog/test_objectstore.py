"""Parts on an S3-compatible object store (a real moto server on loopback), with a
PostgreSQL tail: publishing never overwrites, the catalog is the truth, and the faults an
object store brings lose nothing acknowledged.

The log's whole contract also runs on this backend (``postgresql-tail+s3`` in
``tests/support/backends.py``); these are the drills that only object storage has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventlog.errors import InvalidInputError, StorageError
from eventlog.lake import read_config
from eventlog.objectstore import OBJECT_PART, ObjectPartStore
from eventlog.orders.log import open_order_log
from eventlog.s3 import parse_parts_url
from pipelines.cli import app
from tests.support.logs import ManualClock, bulk_table, created, item, note, positions
from tests.support.postgres import PostgresServer, make_postgres_lake
from tests.support.s3 import S3Server, StoppableS3, make_s3_lake, use_s3_env

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def s3_lake(
    postgres: PostgresServer, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """A lake with a PostgreSQL tail and its parts in a fresh bucket: (lake, bucket)."""
    lake = tmp_path / "lake"
    make_postgres_lake(postgres, lake)
    url = make_s3_lake(s3, lake, monkeypatch)
    return lake, parse_parts_url(url)[0]


@pytest.fixture
def stoppable_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoppableS3]:
    """An S3 server this test can stop and start again (its objects survive)."""
    gate = StoppableS3()
    gate.start()
    yield gate
    gate.close()


def _objects(server: S3Server, bucket: str, prefix: str = "lake/events/") -> list[str]:
    """The objects under a prefix (not the empty "directory" markers pyarrow leaves)."""
    return [k for k in server.keys(bucket, prefix) if not k.endswith("/")]


def test_parts_are_objects_with_names_that_cannot_collide(
    s3_lake: tuple[Path, str], s3: S3Server
) -> None:
    lake, bucket = s3_lake
    clock = ManualClock()
    with open_order_log(lake, clock=clock, seal_on_close=False) as log:
        log.append("o-1", [created(), item()])
        log.seal()
        log.append_batch(bulk_table(300, 7))
        log.append("o-2", [created(), note()])
        log.seal()
        assert isinstance(log.store, ObjectPartStore)
        keys = _objects(s3, bucket)
        assert len(keys) == 3 and all(OBJECT_PART.match(k.rsplit("/", 1)[1]) for k in keys)
        assert [p.name for p in log.parts()] == [k.removeprefix("lake/events/") for k in keys]
        before = log.read_all()
        made = log.compact()  # one covering part; the replaced objects stay for the grace
        assert len(made) == 1 and len(_objects(s3, bucket)) == 4
        assert log.read_all().to_pylist() == before.to_pylist()
        assert log.read_stream("o-2").column("version").to_pylist() == [1, 2]
        report = log.verify()
        assert report.ok and report.warnings == [], (report.problems, report.warnings)
        clock.advance(minutes=11)  # past the grace: the next write removes them
        log.append("o-3", [created()])
        log.seal()
        assert len(_objects(s3, bucket)) == 2 and log.verify().ok
    # lake.toml names the bucket and the endpoint, never a credential
    text = (lake / "lake.toml").read_text()
    assert "s3://" in text and "secret" not in text and "AWS" not in text


def test_object_store_stopped_in_the_middle_of_a_seal_loses_nothing(
    postgres: PostgresServer,
    stoppable_s3: StoppableS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lake = tmp_path / "lake"
    make_postgres_lake(postgres, lake)
    url = make_s3_lake(stoppable_s3.server, lake, monkeypatch)
    bucket = parse_parts_url(url)[0]
    clock = ManualClock()
    log = open_order_log(lake, clock=clock, seal_on_close=False, seal_max_age=timedelta(days=9))
    acked = [log.append("o-1", [created(), item()]).last_position]
    clock.advance(days=1)  # a second recorded date: the seal publishes two parts
    acked.append(log.append("o-2", [created(), note()]).last_position)
    real_stage = log.store.stage
    staged: list[str] = []

    def stage_then_stop(date: str, table: object) -> object:
        if staged:  # the first part is up; the store goes away before the second
            stoppable_s3.stop()
        staged.append(date)
        return real_stage(date, table)  # type: ignore[arg-type]

    monkeypatch.setattr(log.store, "stage", stage_then_stop)
    with pytest.raises(StorageError, match="object storage refused"):
        log.seal()
    # every acknowledged event is still in the tail, readable without the store
    assert (log.head(), log.sealed_head(), log.info().tail_events) == (4, 0, 4)
    assert positions(log) == [1, 2, 3, 4] and acked == [2, 4]
    monkeypatch.undo()  # the credentials go too: set them again
    use_s3_env(monkeypatch, stoppable_s3.server)
    stoppable_s3.start()
    assert log.seal() == 4  # the next seal succeeds
    assert positions(log) == [1, 2, 3, 4]
    log.tail.close()
    # the first try left one object nobody reads (not in the catalog) and its marker ...
    assert len(_objects(stoppable_s3.server, bucket, "lake/events/date=")) == 3
    writer = open_order_log(lake, clock=clock, seal_on_close=False)  # ... until a writer opens
    assert len(_objects(stoppable_s3.server, bucket)) == 2
    report = writer.verify()
    assert report.ok and report.warnings == [], (report.problems, report.warnings)
    writer.close()


CRASHING_SEALER = textwrap.dedent(
    """
    import os, sys
    from eventlog.orders.log import open_order_log
    from tests.support.logs import created, item
    log = open_order_log(sys.argv[1], seal_on_close=False)
    log.append("o-1", [created(), item()])
    print("acked", flush=True)
    log.tail.add_part = lambda part: os._exit(9)  # killed after publishing, before the commit
    log.seal()
    """
)


def test_a_stale_object_from_a_crashed_sealer_is_ignored_then_removed(
    s3_lake: tuple[Path, str], s3: S3Server
) -> None:
    lake, bucket = s3_lake
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_SEALER, str(lake)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 9 and "acked" in done.stdout, done.stderr
    stale = [k for k in _objects(s3, bucket) if "/date=" in k]
    assert len(stale) == 1 and any("_inflight" in k for k in _objects(s3, bucket))
    reader = open_order_log(lake, read_only=True)
    assert (reader.sealed_head(), positions(reader)) == (0, [1, 2])  # never read
    report = reader.verify()  # a marker says someone is (or was) publishing: a warning
    assert report.ok and any("stray" in w for w in report.warnings)
    assert _objects(s3, bucket) != []  # a reader removes nothing
    reader.close()
    with open_order_log(lake, seal_on_close=False) as writer:  # a writer's open removes it
        assert _objects(s3, bucket) == []
        assert writer.seal() == 2 and positions(writer) == [1, 2]
        assert writer.verify().ok


def _cli(lake: Path, *args: str) -> object:
    return runner.invoke(app, ["--lake", str(lake), *args])


def test_verify_exits_1_naming_a_part_object_deleted_behind_the_logs_back(
    s3_lake: tuple[Path, str], s3: S3Server
) -> None:
    lake, bucket = s3_lake
    with open_order_log(lake) as log:
        for i in range(3):
            log.append(f"o-{i}", [created()])
            log.seal()
        gone = log.parts()[1]
    ok = _cli(lake, "verify")
    assert ok.exit_code == 0, ok.output  # type: ignore[attr-defined]
    s3.client().delete_object(Bucket=bucket, Key=f"lake/events/{gone.name}")
    found = _cli(lake, "verify", "--json")
    assert found.exit_code == 1  # type: ignore[attr-defined]
    problems = json.loads(found.stdout)["problems"]  # type: ignore[attr-defined]
    assert any(gone.name in p and "missing" in p for p in problems)
    read = _cli(lake, "read", "--json")  # a reader names it too, and fails (exit 1)
    assert read.exit_code == 1 and gone.name in read.output  # type: ignore[attr-defined]


def test_a_damaged_part_object_is_named_by_verify(s3_lake: tuple[Path, str], s3: S3Server) -> None:
    lake, bucket = s3_lake
    with open_order_log(lake) as log:
        log.append("o-1", [created(), item()])
        log.seal()
        part = log.parts()[0]
    s3.client().put_object(Bucket=bucket, Key=f"lake/events/{part.name}", Body=b"PAR1 damaged")
    with open_order_log(lake, read_only=True) as reader:
        report = reader.verify()
    assert not report.ok and any(part.name in p for p in report.problems)


def test_init_with_parts_records_the_bucket_and_refuses_bad_input(
    postgres: PostgresServer, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3_env(monkeypatch, s3)
    bucket = s3.make_bucket()
    lake = tmp_path / "lake"
    done = _cli(
        lake, "init", "--tail", postgres.url(), "--schema", "s3_cli", "--parts",
        f"s3://{bucket}/orders", "--parts-endpoint", s3.endpoint, "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    assert json.loads(done.stdout)["parts"] == f"s3://{bucket}/orders/events"  # type: ignore[attr-defined]
    config = read_config(lake)
    assert (config.parts, config.parts_endpoint) == (f"s3://{bucket}/orders", s3.endpoint)
    again = _cli(lake, "init", "--tail", postgres.url(), "--schema", "s3_cli", "--parts",
                 f"s3://{bucket}/orders", "--parts-endpoint", s3.endpoint)  # fmt: skip
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    for bad, code, says in [
        ("https://bucket/x", 2, "must be s3://BUCKET/PREFIX"),
        ("s3://key:secret@bucket/x", 2, "must not hold credentials"),
        ("s3://No_Such/x", 2, "bucket name"),
        ("s3://no-such-bucket-here/x", 5, "does not exist"),
    ]:
        other = tmp_path / f"bad-{code}-{len(says)}"
        out = _cli(other, "init", "--parts", bad, "--parts-endpoint", s3.endpoint)
        assert out.exit_code == code and says in out.output, out.output  # type: ignore[attr-defined]
        assert "secret" not in out.output  # type: ignore[attr-defined]
        assert not other.exists()  # nothing written
    dead = _cli(tmp_path / "dead", "init", "--parts", f"s3://{bucket}/x",
                "--parts-endpoint", "http://127.0.0.1:9")  # fmt: skip
    assert dead.exit_code == 5 and not (tmp_path / "dead").exists()  # type: ignore[attr-defined]


def test_parts_urls_are_checked() -> None:
    assert parse_parts_url("s3://lake-bucket/a/b/") == ("lake-bucket", "a/b")
    assert parse_parts_url("s3://lake-bucket") == ("lake-bucket", "")
    for bad in ["s3://b", "s3://lake-bucket/../x", "s3://lake-bucket/a?x=1", "file:///tmp"]:
        with pytest.raises(InvalidInputError):
            parse_parts_url(bad)


def test_repair_removes_a_stray_object_verify_reported(
    s3_lake: tuple[Path, str], s3: S3Server
) -> None:
    lake, bucket = s3_lake
    with open_order_log(lake) as log:
        log.append("o-1", [created(), item()])
        log.seal()
        # an object named like a part that no catalog row names (no marker: not in flight)
        stray = log.store.stage("2026-11-26", log.read_all()).part
    found = _cli(lake, "verify", "--json")
    assert found.exit_code == 1  # type: ignore[attr-defined]
    assert any(stray.name in p and "stray" in p for p in json.loads(found.stdout)["problems"])  # type: ignore[attr-defined]
    kept = _cli(lake, "repair", "--json")  # younger than the grace period: left
    assert kept.exit_code == 0 and stray.path.name in " ".join(_objects(s3, bucket))  # type: ignore[attr-defined]
    done = _cli(lake, "repair", "--stray-grace", "0", "--json")
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    assert stray.path.name not in " ".join(_objects(s3, bucket))
    assert _cli(lake, "verify").exit_code == 0  # type: ignore[attr-defined]


def test_a_bulk_append_or_a_read_while_the_store_is_away_fails_loudly_and_writes_nothing(
    postgres: PostgresServer,
    stoppable_s3: StoppableS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lake = tmp_path / "lake"
    make_postgres_lake(postgres, lake)
    make_s3_lake(stoppable_s3.server, lake, monkeypatch)
    log = open_order_log(lake, seal_on_close=False)
    log.append_batch(bulk_table(200, 5))
    stoppable_s3.stop()
    with pytest.raises(StorageError, match="object storage refused"):
        log.append_batch(bulk_table(300, 5, seed=1))
    assert (log.head(), log.sealed_head()) == (200, 200)  # nothing committed
    log.store.forget_cached()
    fresh = open_order_log(lake, read_only=True)
    with pytest.raises(StorageError, match="object storage refused"):
        fresh.read_all()  # a reader says the store refused (exit 5), never "no events"
    fresh.close()
    stoppable_s3.start()
    assert log.append_batch(bulk_table(300, 5, seed=1)).last_position == 500
    assert positions(log) == list(range(1, 501))
    log.tail.close()
    with open_order_log(lake, seal_on_close=False) as writer:  # the failed upload's marker
        assert writer.verify().ok
