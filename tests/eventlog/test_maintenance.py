"""Sealing from the rows a handle kept: only when they are the whole tail, else read back."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from eventlog.envelope import NewEvent
from eventlog.orders.log import open_order_log


def _note(text: str) -> NewEvent:
    return NewEvent("CustomerNoteAdded", {"author": text, "note": text})  # the note is encrypted


def _part_rows(lake: Path) -> list[tuple[int, str, str]]:
    rows = []
    for path in sorted((lake / "events").rglob("*.parquet")):
        table = pq.read_table(path, columns=["position", "stream_id", "payload"])
        rows += list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
    return sorted(rows)


def test_a_seal_after_another_writer_appended_reads_the_whole_tail(lake: Path) -> None:
    a = open_order_log(lake, seal_on_close=False)
    b = open_order_log(lake, seal_on_close=False)
    a.append("o-1", [_note("a1"), _note("a2")])
    b.append("o-2", [_note("b1")])  # between a's appends: a's kept rows are not the tail
    a.append("o-1", [_note("a3")])
    assert a.seal() == 4
    got = _part_rows(lake)
    assert [r[0] for r in got] == [1, 2, 3, 4]
    assert [r[1] for r in got] == ["o-1", "o-1", "o-2", "o-1"]
    assert all('"author":"b1"' in r[2] for r in got if r[1] == "o-2")
    # a's next appends are the whole tail again; then b seals what a kept
    a.append("o-1", [_note("a4")])
    b.append("o-2", [_note("b2")])
    a.append("o-1", [_note("a5")])
    assert b.seal() == 7
    assert [r[0] for r in _part_rows(lake)] == list(range(1, 8))
    assert a.verify().ok
    a.close()
    b.close()


def test_a_seal_of_rows_this_handle_kept_equals_what_the_tail_held(lake: Path) -> None:
    log = open_order_log(lake, seal_on_close=False)
    for i in range(5):
        log.append(f"o-{i}", [_note(f"n{i}"), _note(f"m{i}")])
    before = log.read_all(columns=["position", "stream_id", "version", "event_id", "payload"])
    assert log.seal() == 10
    after = log.read_all(columns=["position", "stream_id", "version", "event_id", "payload"])
    assert after.equals(before)
    assert log.verify().ok
    log.close()
