"""The contract of the event log: every backend runs these same tests (``open_log``)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
import pytest

from eventlog.envelope import NewEvent
from eventlog.errors import (
    ConcurrencyError,
    DuplicateEventError,
    IntegrityError,
    InvalidInputError,
    PayloadSchemaError,
    UnknownEventTypeError,
)
from eventlog.log import AppendRequest, EventLog
from eventlog.orders.log import open_order_log
from eventlog.parts import part_name
from tests.support.backends import BACKENDS, drop_tail
from tests.support.logs import (
    T0,
    ManualClock,
    bulk_table,
    created,
    envelope_rows,
    item,
    note,
    positions,
)

OpenLog = Callable[..., EventLog]


def _label(path: PurePath) -> str:
    """A part's file name without the random suffix object storage adds to its range."""
    return re.sub(r"-[0-9a-f]{32}\.parquet$", ".parquet", path.name)


def _local_only(log: EventLog) -> None:
    """Tests that damage files by hand; their object-storage twins are in test_objectstore.py."""
    if not log.store.local:
        pytest.skip("edits part files on a local disk; see tests/eventlog/test_objectstore.py")


@pytest.fixture(params=sorted(BACKENDS))
def open_log(request: pytest.FixtureRequest, lake: Path) -> Iterator[OpenLog]:
    """Open (and later close) logs of one backend on the test's lake.

    One entry per backend in ``BACKENDS``; a new store (an object-storage commit log)
    adds its own there and must pass the whole contract.
    """
    BACKENDS[request.param](request, lake)
    opened: list[EventLog] = []

    def make(**options: Any) -> EventLog:
        options.setdefault("clock", ManualClock())
        log = open_order_log(lake, **options)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.tail.close()


# ------------------------------------------------------------------ append
def test_expected_version_exact_no_stream_and_any(open_log: OpenLog) -> None:
    log = open_log()
    first = log.append("o-1", [created()], expected_version="no_stream")
    assert (first.first_position, first.last_version) == (1, 1)
    second = log.append("o-1", [item(), item("sku-2")], expected_version=1)
    assert (second.first_position, second.last_position) == (2, 3)
    assert (second.first_version, second.last_version) == (2, 3)
    third = log.append("o-1", [note()], expected_version="any")
    assert third.last_version == 4
    assert log.head() == 4 and log.stream_version("o-1") == 4


@pytest.mark.parametrize(("expected", "actual"), [("no_stream", 1), (0, 1), (5, 1)])
def test_wrong_expected_version_raises_with_both_versions(
    open_log: OpenLog, expected: Any, actual: int
) -> None:
    log = open_log()
    log.append("o-1", [created()])
    with pytest.raises(ConcurrencyError) as info:
        log.append("o-1", [item()], expected_version=expected)
    assert (info.value.stream_id, info.value.expected, info.value.actual) == (
        "o-1",
        expected,
        actual,
    )
    assert info.value.exit_code == 3
    assert log.head() == 1


def test_exact_version_on_missing_stream_is_a_clash(open_log: OpenLog) -> None:
    log = open_log()
    with pytest.raises(ConcurrencyError) as info:
        log.append("o-9", [created()], expected_version=2)
    assert info.value.actual == 0
    assert log.head() == 0


def test_append_many_is_atomic(open_log: OpenLog) -> None:
    log = open_log()
    log.append("o-1", [created()])
    good = AppendRequest("o-2", [created()], expected_version="no_stream")
    clash = AppendRequest("o-1", [item()], expected_version=0)
    with pytest.raises(ConcurrencyError):
        log.append_many([good, clash])
    bad_payload = AppendRequest("o-3", [NewEvent("ItemAdded", {"sku": "x"})])
    with pytest.raises(PayloadSchemaError):
        log.append_many([good, bad_payload])
    unknown = AppendRequest("o-3", [NewEvent("OrderTeleported", {})])
    with pytest.raises(UnknownEventTypeError):
        log.append_many([good, unknown])
    assert positions(log) == [1]
    assert log.stream_version("o-2") == 0
    results = log.append_many([good, AppendRequest("o-1", [item()], expected_version=1)])
    assert [(r.stream_id, r.first_position) for r in results] == [("o-2", 2), ("o-1", 3)]


def test_append_many_same_stream_twice_numbers_versions_in_order(open_log: OpenLog) -> None:
    log = open_log()
    results = log.append_many(
        [
            AppendRequest("o-1", [created()], expected_version="no_stream"),
            AppendRequest("o-1", [item()], expected_version=1),
        ]
    )
    assert [(r.first_version, r.last_version) for r in results] == [(1, 1), (2, 2)]


def test_repeated_command_id_returns_original_and_appends_nothing(open_log: OpenLog) -> None:
    log = open_log()
    original = log.append("o-1", [created(), item()], command_id="cmd-1")
    log.append("o-2", [created()])
    again = log.append("o-1", [created(), item()], command_id="cmd-1", expected_version=0)
    assert again.duplicate and not original.duplicate
    assert (again.first_position, again.last_position) == (1, 2)
    assert (again.first_version, again.last_version) == (1, 2)
    assert log.head() == 3
    meta = json.loads(log.read_all().column("metadata")[0].as_py())
    assert meta["command_id"] == "cmd-1"


def test_repeated_event_ids_append_nothing(open_log: OpenLog) -> None:
    log = open_log()
    ids = ["0b6f8d8e-8f4e-4a8a-9c39-2f1d0c6b7a10", "1c7a9e9f-9a5f-4b9b-8d4a-3e2e1d7c8b21"]
    events = [created(), item()]
    events = [
        NewEvent(e.event_type, e.payload, event_id=i) for e, i in zip(events, ids, strict=True)
    ]
    log.append("o-1", events)
    again = log.append("o-1", events)
    assert again.duplicate and (again.first_position, again.last_position) == (1, 2)
    with pytest.raises(DuplicateEventError, match="already in the log"):
        log.append("o-2", [NewEvent("OrderCreated", created().payload, event_id=ids[0])])
    with pytest.raises(DuplicateEventError, match="twice"):
        log.append("o-3", [note(event_id=ids[1][:-2] + "99"), note(event_id=ids[1][:-2] + "99")])
    assert log.head() == 2
    assert log.read_all().column("event_id").to_pylist() == ids


def test_bad_input_writes_nothing(open_log: OpenLog) -> None:
    log = open_log()
    for sid in ["../x", "a/b", "", "x" * 201, "a\nb"]:
        with pytest.raises(InvalidInputError):
            log.append(sid, [created()])
    with pytest.raises(InvalidInputError):
        log.append("o-1", [note(event_id="not-a-uuid")])
    with pytest.raises(InvalidInputError):
        log.append("o-1", [created()], expected_version=-1)
    with pytest.raises(InvalidInputError):
        log.append("o-1", [])
    assert log.head() == 0 and log.store.list_files() == []


# ------------------------------------------------------------------ seal
def test_manual_seal_moves_tail_into_a_part(open_log: OpenLog) -> None:
    log = open_log()
    log.append("o-1", [created(), item()])
    assert log.sealed_head() == 0
    assert log.seal() == 2
    parts = log.live_parts()
    assert [_label(p) for p in parts] == [part_name(1, 2)]
    assert parts[0].parent.name == "date=2026-11-26"
    assert log.store.read_whole(log.parts()[0]).num_rows == 2
    assert log.info().tail_events == 0
    assert positions(log) == [1, 2]


def test_seal_by_size(open_log: OpenLog) -> None:
    log = open_log(seal_max_events=5)
    for i in range(12):
        log.append(f"o-{i}", [created()])
    assert log.sealed_head() == 10
    assert [_label(p) for p in log.live_parts()] == [part_name(1, 5), part_name(6, 10)]
    assert positions(log) == list(range(1, 13))


def test_seal_by_age(open_log: OpenLog) -> None:
    clock = ManualClock()
    log = open_log(clock=clock, seal_max_age=timedelta(minutes=5))
    log.append("o-1", [created()])
    clock.advance(minutes=4)
    log.append("o-2", [created()])
    assert log.sealed_head() == 0
    clock.advance(minutes=1, seconds=1)
    log.append("o-3", [created()])
    assert log.sealed_head() == 3


def test_close_seals(lake: Path) -> None:
    with open_order_log(lake) as log:
        log.append("o-1", [created()])
    reopened = open_order_log(lake)
    assert reopened.sealed_head() == 1
    reopened.close()


def test_bulk_append_seals_tail_then_writes_one_part(open_log: OpenLog) -> None:
    log = open_log()
    log.append("bulk-1", [created()])
    res = log.append_batch(bulk_table(500, 7))
    assert (res.first_position, res.last_position) == (2, 501)
    assert [_label(p) for p in log.live_parts()] == [part_name(1, 1), part_name(2, 501)]
    assert log.info().tail_events == 0
    table = log.read_all()
    assert table.column("position").to_pylist() == list(range(1, 502))
    by_stream: dict[str, list[int]] = {}
    for sid, ver in zip(
        table.column("stream_id").to_pylist(), table.column("version").to_pylist(), strict=True
    ):
        by_stream.setdefault(sid, []).append(ver)
    assert all(v == list(range(1, len(v) + 1)) for v in by_stream.values())
    assert log.verify().ok


def test_bulk_append_checks_expected_versions_and_command_id(open_log: OpenLog) -> None:
    log = open_log()
    log.append("bulk-0", [note()])
    with pytest.raises(ConcurrencyError):
        log.append_batch(bulk_table(10, 1), expected_versions={"bulk-0": 0})
    first = log.append_batch(bulk_table(10, 1), command_id="import-1")
    again = log.append_batch(bulk_table(10, 1), command_id="import-1")
    assert again.duplicate and again.last_position == first.last_position == 11
    bad = bulk_table(3, 1).set_column(2, "payload", pa.array(['{"author": 1}'] * 3))
    with pytest.raises(PayloadSchemaError):
        log.append_batch(bad)
    assert log.head() == 11


def test_big_append_many_goes_straight_to_a_part(open_log: OpenLog) -> None:
    log = open_log(bulk_threshold=50)
    log.append("o-1", [created()])
    log.append("o-2", [note() for _ in range(60)])
    assert log.sealed_head() == 61 and log.info().tail_events == 0
    assert log.verify().ok


# ------------------------------------------------------------------ read
def _mixed_log(open_log: OpenLog) -> EventLog:
    log = open_log()
    log.append("o-1", [created(), item()])
    log.append("o-2", [created(), note()])
    log.seal()
    log.append("o-1", [item("sku-2"), note()])
    log.append("o-3", [created()])
    return log  # positions 1..4 in a part, 5..7 in the tail


def test_read_presents_parts_and_tail_as_one_log(open_log: OpenLog) -> None:
    log = _mixed_log(open_log)
    assert log.sealed_head() == 4 and log.head() == 7
    assert positions(log) == list(range(1, 8))
    assert log.read_all(after=2, until=6).column("position").to_pylist() == [3, 4, 5, 6]
    assert log.read_all(after=7).num_rows == 0
    notes = log.read_all(event_types=["CustomerNoteAdded"])
    assert notes.column("position").to_pylist() == [4, 6]
    only_pos = log.read_all(event_types=["ItemAdded"], columns=["position"])
    assert only_pos.column_names == ["position"]
    assert only_pos.column("position").to_pylist() == [2, 5]
    with pytest.raises(UnknownEventTypeError):
        log.read_all(event_types=["Nope"])
    with pytest.raises(InvalidInputError):
        list(log.read(after=-1))


def test_read_stream_and_head(open_log: OpenLog) -> None:
    log = _mixed_log(open_log)
    stream = log.read_stream("o-1")
    assert stream.column("version").to_pylist() == [1, 2, 3, 4]
    assert stream.column("position").to_pylist() == [1, 2, 5, 6]
    assert log.read_stream("o-1", after_version=2).column("position").to_pylist() == [5, 6]
    assert log.read_stream("missing").num_rows == 0
    assert (log.head(), log.sealed_head()) == (7, 4)
    assert [e.position for e in log.events_at([6, 2])] == [2, 6]


def test_subscribe_yields_past_then_new_events(open_log: OpenLog, lake: Path) -> None:
    log = _mixed_log(open_log)
    writer = open_log()

    def write_later() -> None:
        time.sleep(0.3)
        writer.append("o-4", [created()])
        writer.append("o-4", [note()])

    thread = threading.Thread(target=write_later)
    thread.start()
    seen: list[int] = []
    for table in log.subscribe(after=3, poll_interval=0.05, idle_timeout=1.0):
        seen += table.column("position").to_pylist()
    thread.join()
    assert seen == [4, 5, 6, 7, 8, 9]


def test_subscribe_stops_on_stop_and_idle_timeout(open_log: OpenLog) -> None:
    log = _mixed_log(open_log)
    started = time.monotonic()
    assert sum(t.num_rows for t in log.subscribe(idle_timeout=0.2, poll_interval=0.05)) == 7
    assert time.monotonic() - started < 2
    assert list(log.subscribe(stop=lambda: True)) == []


# ------------------------------------------------------------------ time
def test_partitions_by_recorded_utc_date(open_log: OpenLog) -> None:
    clock = ManualClock(T0.replace(hour=23, minute=59, second=59))
    log = open_log(clock=clock)
    log.append("o-1", [created()])
    clock.advance(seconds=2)
    log.append("o-1", [item()])
    log.seal()
    dates = [p.parent.name for p in log.live_parts()]
    assert dates == ["date=2026-11-26", "date=2026-11-27"]
    assert [_label(p) for p in log.live_parts()] == [part_name(1, 1), part_name(2, 2)]


def test_recorded_at_never_goes_back(open_log: OpenLog) -> None:
    clock = ManualClock()
    log = open_log(clock=clock)
    log.append("o-1", [created()])
    clock.advance(hours=-3)
    log.append("o-1", [item()])
    log.append_batch(bulk_table(5, 1))
    rec = log.read_all().column("recorded_at").to_pylist()
    assert rec == sorted(rec) and rec[0] == T0
    assert log.read_all().column("occurred_at").to_pylist()[1] == T0 - timedelta(hours=3)
    assert log.verify().ok


# ------------------------------------------------------------------ verify
def test_verify_clean(open_log: OpenLog) -> None:
    log = _mixed_log(open_log)
    report = log.verify()
    assert report.ok, report.problems
    assert (report.head, report.sealed_head, report.events, report.parts) == (7, 4, 7, 1)


def test_verify_detects_a_corrupt_part(open_log: OpenLog) -> None:
    log = _mixed_log(open_log)
    _local_only(log)
    part = log.live_parts()[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2] + b"\0" * (len(data) - len(data) // 2))
    report = log.verify()
    assert not report.ok
    assert any("SHA-256 differs" in p and part.name in p for p in report.problems)


def test_verify_detects_a_gap(open_log: OpenLog) -> None:
    log = open_log()
    for i in range(3):
        log.append(f"o-{i}", [created()])
        log.seal()
    missing = log.parts()[1]
    log.store.remove([missing.path])
    report = log.verify()
    assert not report.ok
    assert any(missing.name in p and "file is missing" in p for p in report.problems)
    # the catalog still tiles: a row removed from it is the gap verify names
    with log.tail.write():
        log.tail.forget_part(missing.name)
    assert any("gap: positions 2..2" in p for p in log.verify().problems)


def test_verify_detects_an_orphan_temp_file(open_log: OpenLog) -> None:
    log = _mixed_log(open_log)
    _local_only(log)
    tmp = log.live_parts()[0].with_name("junk.parquet.123.tmp")
    tmp.write_bytes(b"half")
    report = log.verify()
    assert not report.ok and any("orphan temp file" in p for p in report.problems)


# ------------------------------------------------------------------ compaction
def test_compact_merges_a_dates_parts_without_changing_events(open_log: OpenLog) -> None:
    clock = ManualClock()
    log = open_log(seal_max_events=3, clock=clock)
    for i in range(10):
        log.append(f"o-{i % 4}", [created() if i < 4 else note(f"n{i}")])
    log.seal()
    before = log.read_all()
    old = log.live_parts()
    assert len(old) == 4
    made = log.compact()
    assert [_label(p) for p in made] == [part_name(1, 10)]
    assert [_label(p) for p in log.live_parts()] == [part_name(1, 10)]
    # the replaced files stay for the grace period (a reader mid-scan keeps them) ...
    assert {p.name for p in old} < {p.path.name for p in log.store.list_files()}
    assert len(log.store.list_files()) == 5
    assert log.read_all().to_pylist() == before.to_pylist()
    report = log.verify()
    assert report.ok and report.warnings == [], (report.problems, report.warnings)
    # ... and go with the first write after it
    clock.advance(minutes=11)
    log.append("o-9", [created()])
    log.seal()
    assert [p.path for p in log.store.list_files()] == log.live_parts()
    assert log.replaced() == [] and log.verify().ok


def test_reader_racing_compaction_sees_every_event_once(open_log: OpenLog) -> None:
    log = open_log(seal_max_events=2)
    for i in range(9):
        log.append(f"o-{i}", [created()])
    reader = open_log()
    batches = reader.read(columns=["position"])
    seen = next(batches).column("position").to_pylist()
    log.compact()
    for table in batches:
        seen += table.column("position").to_pylist()
    assert seen == list(range(1, 10))


# ------------------------------------------------------------------ recovery
def _unshredded(payload: str) -> dict[str, object]:
    """A payload without its personal fields (what survives losing the key store)."""
    import json

    from eventlog.orders.events import REGISTRY

    return {k: v for k, v in json.loads(payload).items() if k not in REGISTRY.personal_fields}


def test_deleting_tail_after_seal_loses_nothing(open_log: OpenLog, lake: Path) -> None:
    log = open_log()
    log.append("o-1", [created(), item()], command_id="cmd-1")
    log.append("o-2", [created()])
    log.append_batch(bulk_table(20, 3))
    log.seal()
    before = log.read_all()
    names = [p.name for p in log.parts()]
    log.tail.close()
    drop_tail(lake)
    # a missing tail next to parts is reported, never taken for a fresh lake ...
    with pytest.raises(IntegrityError, match=r"tail\.sqlite is missing|tail of .* is empty"):
        open_log()
    assert not (lake / "tail.sqlite").exists()
    # ... and an explicit repair rebuilds it from the parts' content
    from eventlog.maintenance import open_for_repair, repair_lake
    from eventlog.orders.events import REGISTRY

    fixer = open_for_repair(lake, registry=REGISTRY)
    report = repair_lake(fixer)
    fixer.tail.close()
    assert report.adopted == names
    rebuilt = open_log()
    after = rebuilt.read_all()
    # every event comes back; the subjects' keys lived in the tail, so personal fields
    # read as erased (back the tail up with the parts: docs/erasure.md)
    assert (
        after.drop_columns(["payload"]).to_pylist() == before.drop_columns(["payload"]).to_pylist()
    )
    assert [_unshredded(p) for p in after.column("payload").to_pylist()] == [
        _unshredded(p) for p in before.column("payload").to_pylist()
    ]
    assert ("[erased]" in after.column("payload")[0].as_py()) == rebuilt.shredder.enabled
    assert (rebuilt.head(), rebuilt.sealed_head()) == (23, 23)
    assert rebuilt.stream_version("o-1") == 2 and rebuilt.stream_version("o-2") == 1
    assert rebuilt.read_stream("o-1").column("position").to_pylist() == [1, 2]
    again = rebuilt.append("o-1", [created(), item()], command_id="cmd-1")
    assert again.duplicate and (again.first_position, again.last_position) == (1, 2)
    assert rebuilt.append("o-1", [note()], expected_version=2).first_position == 24
    assert rebuilt.verify().ok


def test_a_part_published_but_never_committed_is_never_read(open_log: OpenLog, lake: Path) -> None:
    from eventlog.parts import write_part

    log = open_log()
    _local_only(log)
    log.append("o-1", [created(), item()])
    # a crash after publishing the part but before the SQLite commit: not in the catalog
    stray = write_part(log.events_dir, "2026-11-26", log.read_all())
    (log.events_dir / "date=2026-11-26" / "x.parquet.1.tmp").write_bytes(b"partial")
    log.tail.close()
    reader = open_log(read_only=True)
    assert (reader.sealed_head(), reader.head(), reader.info().tail_events) == (0, 2, 2)
    assert positions(reader) == [1, 2]
    report = reader.verify()
    assert not report.ok  # no marker: nobody is publishing, so these are strays
    assert any(stray.name in p and "stray" in p for p in report.problems)
    assert any("orphan temp file" in p for p in report.problems)
    assert stray.path.exists()  # a reader removes nothing


def test_live_writer_removes_a_dead_writers_uncommitted_parts_before_appending(
    open_log: OpenLog,
) -> None:
    from eventlog.parts import write_part

    log = open_log()
    _local_only(log)
    log.append("o-1", [created()])
    dead = open_log()
    # the dead writer sealed position 1 and published a bulk part 2..6, then died before
    # committing either: its marker names the span; the events of 2..6 were never acked
    dead.inflight_dir.mkdir(parents=True, exist_ok=True)
    (dead.inflight_dir / "999-dead").write_text("1 6\n")
    leftovers = [
        write_part(log.events_dir, "2026-11-26", log.read_all()),
        write_part(log.events_dir, "2026-11-26", envelope_rows(start=2, n=5)),
    ]
    res = log.append("o-2", [created()])
    assert res.first_position == 2
    assert positions(log) == [1, 2]
    assert not any(p.path.exists() for p in leftovers)
    assert not any(log.inflight_dir.iterdir())
    log.seal()
    assert log.verify().ok


def test_a_lake_with_key_value_counters_is_migrated_on_open(tmp_path: Path) -> None:
    """Lakes written before the one-row ``counters`` table kept ``meta`` key/value rows."""
    import sqlite3

    log = open_order_log(tmp_path / "lake", seal_max_events=3)
    for i in range(5):
        log.append(f"s-{i % 2}", [note(f"n{i}")])
    before = log.tail.metas()
    log.tail.close()
    conn = sqlite3.connect(tmp_path / "lake" / "tail.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    for key in ("head", "sealed_head", "index_head", "heads_head", "last_recorded_at"):
        conn.execute("INSERT INTO meta VALUES (?, ?)", (key, before[key]))  # no ids_head then
    conn.execute("DROP TABLE counters")
    conn.close()

    again = open_order_log(tmp_path / "lake", seal_max_events=3)
    assert again.tail.metas() == {**before, "ids_head": before["index_head"]}
    tables = {r[0] for r in again.tail.conn.execute("SELECT name FROM sqlite_master")}
    assert "meta" not in tables
    assert again.verify().ok
    res = again.append("s-0", [note("after")], expected_version=3)
    assert res.first_position == before["head"] + 1
    again.close()
