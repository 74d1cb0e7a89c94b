"""Stream files: compaction clusters each part by stream; ``read_stream`` answers the same.

The Parquet parts stay the truth: a stream file is derived, checked block by block, and
ignored when it was made from other bytes than the part the catalog lists.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from eventlog.errors import IntegrityError
from eventlog.orders.log import open_order_log
from eventlog.streamfiles import BLOCK_ROWS, stream_file_path
from tests.support.logs import ManualClock, bulk_table, created, item, note

STREAMS = 40


def parquet_answer(lake: Path, stream_id: str, after_version: int = 0) -> list[dict[str, object]]:
    """What ``read_stream`` answers from the Parquet parts alone (stream files hidden)."""
    streams = lake / "streams"
    hidden = lake.parent / "hidden-streams"
    if streams.exists():
        streams.rename(hidden)
    try:
        reader = open_order_log(lake, read_only=True)
        rows = reader.read_stream(stream_id, after_version=after_version).to_pylist()
        reader.close()
    finally:
        if hidden.exists():
            hidden.rename(streams)
    return rows


def bulk_lake(lake: Path, clock: ManualClock) -> None:
    """Three bulk parts (one date) over STREAMS streams, some streams longer than a block."""
    log = open_order_log(lake, clock=clock, bulk_part_rows=900, seal_on_close=False)
    log.append_batch(bulk_table(2_000, STREAMS, seed=1))
    log.append_batch(bulk_table(1_200, 3, prefix="long", seed=2))  # > BLOCK_ROWS per stream
    log.close()


def test_compaction_writes_stream_files_and_read_stream_answers_the_same(lake: Path) -> None:
    clock = ManualClock()
    bulk_lake(lake, clock)
    wanted = [f"bulk-{i}" for i in range(STREAMS)] + ["long-0", "long-1", "long-2", "nobody"]
    before = {sid: parquet_answer(lake, sid) for sid in wanted}
    log = open_order_log(lake, clock=clock)
    assert len(log.parts()) > 1
    log.compact()
    (part,) = log.parts()
    assert stream_file_path(lake, part).exists()
    assert max(len(before[s]) for s in wanted) > BLOCK_ROWS  # a stream spans blocks
    for sid in wanted:
        assert log.read_stream(sid).to_pylist() == before[sid]
        assert log.read_stream(sid, after_version=3).to_pylist() == before[sid][3:]
    # newer events (tail, then a new part) join the clustered ones in version order
    log.append("bulk-7", [item(), note("after")])
    mixed = log.read_stream("bulk-7").to_pylist()
    log.seal()
    assert log.read_stream("bulk-7").to_pylist() == mixed == parquet_answer(lake, "bulk-7")
    assert [r["version"] for r in mixed] == list(range(1, len(mixed) + 1))
    log.close()
    reader = open_order_log(lake, read_only=True)  # readers use them too, writing nothing
    assert reader.read_stream("long-1").to_pylist() == before["long-1"]
    reader.close()


def test_a_damaged_block_fails_the_read_instead_of_answering(lake: Path) -> None:
    clock = ManualClock()
    bulk_lake(lake, clock)
    log = open_order_log(lake, clock=clock)
    log.compact()
    path = stream_file_path(lake, log.parts()[0])
    log.close()
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40  # inside some block: which stream it holds does not matter
    path.write_bytes(bytes(data))
    reader = open_order_log(lake, read_only=True)
    with pytest.raises(IntegrityError, match="damaged"):
        for sid in [f"bulk-{i}" for i in range(STREAMS)] + ["long-0", "long-1", "long-2"]:
            reader.read_stream(sid)
    report = reader.verify()
    reader.close()
    assert not report.ok
    assert [p for p in report.problems if "stream file" in p] == [
        f"stream file {path} is damaged (a block's CRC32 differs); it is derived: delete it "
        "and run 'ledgerlake compact' to write it again"
    ]
    path.unlink()  # derived: without it the part is read, and compact writes it again
    assert open_order_log(lake, read_only=True).verify().ok
    writer = open_order_log(lake, clock=clock)
    writer.compact()
    writer.close()
    assert path.exists() and open_order_log(lake, read_only=True).verify().ok


def test_a_stream_file_of_other_bytes_is_ignored_and_compact_writes_it_again(
    lake: Path,
) -> None:
    clock = ManualClock()
    log = open_order_log(lake, clock=clock)
    for i in range(3):
        log.append(f"o-{i}", [created(), item(), note(f"n{i}")])
        log.seal()
    log.compact()
    (part,) = log.parts()
    path = stream_file_path(lake, part)
    good = log.read_stream("o-1").to_pylist()
    log.close()
    # another lake's stream file under this part's name (a restored backup, say)
    other = lake.parent / "other"
    olog = open_order_log(other, clock=ManualClock())
    for i in range(3):
        olog.append(f"o-{i}", [created("someone-else"), item(), note("other")])
        olog.seal()
    olog.compact()
    shutil.copy(stream_file_path(other, olog.parts()[0]), path)
    olog.close()
    reader = open_order_log(lake, read_only=True)
    assert reader.read_stream("o-1").to_pylist() == good  # from the Parquet part
    assert not reader.stream_files.has(part)
    reader.close()
    writer = open_order_log(lake, clock=clock)
    writer.compact()  # a single live part without its stream file gets one
    assert writer.stream_files.has(part)
    assert writer.read_stream("o-1").to_pylist() == good
    writer.close()


def test_a_lake_without_stream_files_reads_the_same_and_gains_them_on_compact(
    lake: Path,
) -> None:
    clock = ManualClock()
    bulk_lake(lake, clock)
    log = open_order_log(lake, clock=clock, replaced_grace=timedelta(0))
    before = log.read_stream("bulk-3").to_pylist()
    assert not (lake / "streams").exists()  # nothing but compaction writes them
    log.compact()
    assert log.read_stream("bulk-3").to_pylist() == before
    (first,) = log.parts()
    assert stream_file_path(lake, first).exists()
    log.append("bulk-3", [note("later")])
    log.seal()
    log.compact()  # the merged part replaces the first: its stream file goes with it
    (merged,) = log.parts()
    assert not stream_file_path(lake, first).exists()
    assert stream_file_path(lake, merged).exists()
    assert len(log.read_stream("bulk-3").to_pylist()) == len(before) + 1
    log.close()
    assert open_order_log(lake, read_only=True).verify().ok
