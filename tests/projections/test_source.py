"""``order_events`` over the warehouse's pinned, checked (and decrypted) sealed parts."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from eventlog.errors import IntegrityError
from eventlog.log import EventLog
from eventlog.orders.log import forget_customer
from projections import snapshot
from projections.plan import PROJECTIONS
from projections.runner import catch_up, rebuild
from projections.warehouse import checkpoints, connect, pinned_dir, warehouse_path
from tests.projections.test_bluegreen import _history
from tests.support.histories import append_commit, open_log


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        p.name: sorted(con.execute(f"SELECT * FROM {p.view}").fetchall(), key=repr)
        for p in PROJECTIONS
    }


def _pinned(lake: Path) -> list[str]:
    root = pinned_dir(warehouse_path(lake))
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _files(lake: Path, build: str) -> list[Path]:
    return sorted((pinned_dir(warehouse_path(lake)) / build).glob("*.parquet"))


def _sealed_and_caught_up(lake: Path, orders: int) -> EventLog:
    """A lake whose ``orders`` order histories are sealed and projected."""
    log = open_log(lake)
    append_commit(log, _history(orders))
    log.seal()
    catch_up(log)
    return log


def _in_memory(log: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of a warehouse without a file: every event stored as a typed row."""
    con = duckdb.connect()
    catch_up(log, con)
    tables = _tables(con)
    con.close()
    return tables


def test_sealed_parts_are_pinned_and_read_in_place(lake: Path) -> None:
    log = open_log(lake, replaced_grace=timedelta(0))
    history = _history(60)
    a, b = len(history) // 3, 2 * len(history) // 3
    append_commit(log, history[:a])
    log.seal()
    append_commit(log, history[a:b])  # a tail after the sealed parts
    catch_up(log)
    con = connect(log)
    cp = checkpoints(con)["order_events"]
    stored = con.execute(f"SELECT count(*) FROM {cp.table_name}").fetchall()[0][0]
    assert stored == b - a  # only the tail is stored typed; the parts are read in place
    assert _pinned(lake) == ["order_events__1"]
    assert _tables(con) == _in_memory(log)
    # the parts hold the personal fields encrypted; the pinned files hold typed rows,
    # decrypted, in the view's columns
    raw = pq.read_table(log.parts()[0].path).column("payload").to_pylist()
    assert any("enc:v1:" in p for p in raw)
    columns = [r[0] for r in con.execute("DESCRIBE analytics.order_events").fetchall()]
    for path in _files(lake, "order_events__1"):
        pinned = pq.read_table(path)
        assert pinned.column_names == columns
        values = [v for row in pinned.to_pylist() for v in row.values()]
        assert not any(isinstance(v, str) and "enc:v1:" in v for v in values)
    con.close()

    # more sealed and compacted in the log: the warehouse goes on from its checkpoint
    append_commit(log, history[b:])
    log.seal()
    log.compact()
    catch_up(log)
    con = connect(log)
    assert _tables(con) == _in_memory(log)
    assert len(_tables(con)["order_events"]) == log.head()
    con.close()

    rebuild(log, None, ["order_events"])
    assert _pinned(lake) == ["order_events__1", "order_events__2"]  # old kept for readers
    rebuild(log, None, ["order_events"])
    assert _pinned(lake) == ["order_events__2", "order_events__3"]  # older ones are gone
    # build 3 pinned nothing again: its files are build 2's (the same parts, linked)
    inodes = {p.name: p.stat().st_ino for p in _files(lake, "order_events__2")}
    assert inodes == {p.name: p.stat().st_ino for p in _files(lake, "order_events__3")}
    con = connect(log)
    cp = checkpoints(con)["order_events"]
    assert (cp.build, cp.position) == (3, log.head())
    assert con.execute(f"SELECT count(*) FROM {cp.table_name}").fetchall()[0][0] == 0
    assert _tables(con) == _in_memory(log)
    con.close()
    log.close()


def test_a_destroyed_key_makes_the_next_build_decrypt_again(lake: Path) -> None:
    log = _sealed_and_caught_up(lake, 14)
    forget_customer(log, "c3")  # no erasure cascade: a plain rebuild must still not reuse
    rebuild(log, None, ["order_events"])
    con = connect(log, read_only=True)
    names = dict(
        con.execute(
            "SELECT customer_id, any_value(customer_name) FROM analytics.order_events "
            "WHERE event_type = 'OrderCreated' GROUP BY customer_id"
        ).fetchall()
    )
    con.close()
    assert names["c3"] == "[erased]"
    assert names["c2"] == "N"
    log.close()


def test_a_damaged_part_is_never_pinned(lake: Path) -> None:
    log = _sealed_and_caught_up(lake, 20)
    part = log.parts()[0].path
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    shutil.rmtree(pinned_dir(warehouse_path(lake)))  # nothing pinned earlier to link from
    with pytest.raises(IntegrityError, match=r"SHA-256|checksum|cannot be read"):
        rebuild(log, None, ["order_events"])
    assert _pinned(lake) == []  # the failed build left nothing behind
    log.close()


def test_a_moved_lake_is_pinned_again_by_its_next_catch_up(lake: Path, tmp_path: Path) -> None:
    log = _sealed_and_caught_up(lake, 10)
    log.close()
    moved = tmp_path / "moved"
    shutil.copytree(lake, moved)
    shutil.rmtree(lake)
    log = open_log(moved)
    catch_up(log)
    con = connect(log, read_only=True)
    assert con.execute("SELECT count(*) FROM analytics.order_events").fetchall() == [(log.head(),)]
    assert _tables(con) == _in_memory(log)
    con.close()
    log.close()


def test_the_sql_sandbox_reads_the_pinned_parts_but_not_the_log(lake: Path) -> None:
    from pipelines.cli_warehouse import sandbox

    log = _sealed_and_caught_up(lake, 10)
    part = log.parts()[0].path
    con = connect(log, read_only=True)
    sandbox(con)
    assert con.execute("SELECT count(*) FROM analytics.order_events").fetchall() == [(log.head(),)]
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"SELECT count(*) FROM read_parquet('{part}')")
    con.close()
    log.close()


def test_a_cut_at_another_streams_event_keeps_its_recorded_time(lake: Path) -> None:
    # the pinned files hold order events alone: the checkpoint's time of the last sealed
    # event, a customer's erasure here, comes from the log
    log = _sealed_and_caught_up(lake, 6)
    forget_customer(log, "c2")
    log.seal()
    head = log.events_at([log.head()])[0]
    assert head.stream_type != "order"
    rebuild(log, None, ["order_events"])
    con = connect(log, read_only=True)
    cp = checkpoints(con)["order_events"]
    con.close()
    assert (cp.position, cp.recorded_at) == (head.position, head.recorded_at)
    log.close()


def test_files_typed_by_another_code_version_are_pinned_again(lake: Path) -> None:
    log = _sealed_and_caught_up(lake, 8)
    rebuild(log, None, ["order_events"])  # build 2 links build 1's files
    inodes = {p.name: p.stat().st_ino for p in _files(lake, "order_events__2")}
    assert inodes == {p.name: p.stat().st_ino for p in _files(lake, "order_events__1")}
    # as if the builds kept had been typed by an older order_events: nothing is reused
    for sources in pinned_dir(warehouse_path(lake)).glob("*/sources.json"):
        listed = json.loads(sources.read_text())
        listed["code_version"] = "2"
        sources.write_text(json.dumps(listed))
    rebuild(log, None, ["order_events"])
    again = {p.name: p.stat().st_ino for p in _files(lake, "order_events__3")}
    assert again.keys() == inodes.keys()
    assert not set(again.values()) & set(inodes.values())
    con = connect(log, read_only=True)
    assert _tables(con) == _in_memory(log)
    con.close()
    log.close()


def test_a_part_damaged_after_its_check_is_named_and_a_failed_write_is_not(lake: Path) -> None:
    log = _sealed_and_caught_up(lake, 6)
    part = log.parts()[0]
    dest = lake / "pinned.parquet"
    original = part.path.read_bytes()
    part.path.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")  # after the check, before the read
    with pytest.raises(IntegrityError, match=f"part {part.name} cannot be read"):
        snapshot._pin_one(log, part, dest, False, True)
    assert not dest.exists()
    part.path.write_bytes(original)
    # the warehouse's side failing (here: no directory to write in) is not the log's damage
    with pytest.raises(duckdb.IOException):
        snapshot._pin_one(log, part, lake / "missing" / "pinned.parquet", False, True)
    snapshot._pin_one(log, part, dest, False, True)
    assert pq.read_table(dest).num_rows > 0
    log.close()


def test_parts_in_object_storage_are_pinned_however_many(
    s3: Any, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.s3 import make_s3_lake

    make_s3_lake(s3, lake, monkeypatch)
    # as if the parts held more than a few events: nothing may scan them on a local disk
    monkeypatch.setattr(snapshot, "SMALL_CHUNK", 0)
    log = _sealed_and_caught_up(lake, 8)
    assert not log.store.local
    con = connect(log, read_only=True)
    assert _tables(con) == _in_memory(log)
    con.close()
    log.close()


def test_the_report_counts_order_events_without_scanning_the_pinned_files(lake: Path) -> None:
    log = _sealed_and_caught_up(lake, 12)  # 24 sealed events, pinned
    append_commit(log, _history(15)[24:])  # 6 more in the tail: stored rows
    reports = {r.name: r for r in catch_up(log)}
    con = connect(log)
    cp = checkpoints(con)["order_events"]
    [(total,)] = con.execute("SELECT count(*) FROM analytics.order_events").fetchall()
    [(stored,)] = con.execute(f"SELECT count(*) FROM {cp.table_name}").fetchall()
    con.close()
    assert (total, stored) == (30, 6)
    assert reports["order_events"].rows == total
    listing = pinned_dir(warehouse_path(log)) / cp.table_name.split(".", 1)[1] / snapshot.SOURCES
    listed = json.loads(listing.read_text())
    assert listed["rows"] == 24  # counted from the files' footers when they were pinned
    # a build pinned before the count was kept: the report scans the view instead
    del listed["rows"]
    listing.write_text(json.dumps(listed))
    assert {r.name: r.rows for r in catch_up(log)}["order_events"] == total
    listed["rows"] = 1000  # the kept count is what the report adds to the stored rows
    listing.write_text(json.dumps(listed))
    assert {r.name: r.rows for r in catch_up(log)}["order_events"] == 1006
    log.close()
