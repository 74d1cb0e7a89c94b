"""Integrity: the catalog is the truth, readers never write, verify checks content.

Each test plays an adversary against a real lake on disk: a stray or restored file, a
flipped byte, a missing part, a lost tail, a lake made before the catalog.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from eventlog.errors import IntegrityError, PayloadSchemaError
from eventlog.maintenance import open_for_repair, repair_lake
from eventlog.orders.events import REGISTRY
from eventlog.orders.log import open_order_log
from eventlog.parts import list_parts, part_name, write_part
from tests.support.logs import ManualClock, bulk_table, created, item, note


def snapshot(lake: Path) -> dict[str, str]:
    """Every file under the lake with a hash of its bytes (SQLite's shared-memory files
    excepted: a reader of a WAL database may create them, their content is transient)."""
    return {
        str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    }


def sealed_lake(lake: Path, parts: int = 3) -> list[Path]:
    """A lake of ``parts`` sealed parts (positions 1..3*parts) in one date partition."""
    log = open_order_log(lake, clock=ManualClock())
    for i in range(parts):
        log.append(f"o-{i}", [created(), item(), note(f"n{i}")])
        log.seal()
    paths = log.live_parts()
    log.close()
    return paths


def test_a_stray_copy_with_a_wider_name_is_never_read_and_nothing_is_deleted(lake: Path) -> None:
    parts = sealed_lake(lake)
    before = open_order_log(lake, read_only=True).read_all()
    # the first reproduction: a copy of part 1..3 under a name claiming 1..9
    shutil.copy(parts[0], parts[0].with_name(part_name(1, 9)))
    on_disk = snapshot(lake)
    reader = open_order_log(lake, read_only=True)
    assert reader.read_all().to_pylist() == before.to_pylist()
    assert next(reader.read()).num_rows == 3
    report = reader.verify()
    reader.close()
    assert snapshot(lake) == on_disk  # nothing that reads writes, nothing is lost
    assert not report.ok
    assert [p for p in report.problems if "stray" in p] == [
        f"stray file date=2026-11-26/{part_name(1, 9)} is not in the catalog (never read by "
        "the log, but a tool scanning events/ would count it); 'ledgerlake repair' removes it"
    ]
    # a writer does not remove it either (no marker names it): only an explicit repair
    writer = open_order_log(lake, clock=ManualClock(), seal_on_close=False)
    writer.append("o-9", [created()])
    writer.close()
    assert parts[0].with_name(part_name(1, 9)).exists()
    young = repair_lake(open_for_repair(lake, registry=REGISTRY))
    assert young.removed == [] and len(young.kept) == 1  # inside the grace period
    fixer = open_for_repair(lake, registry=REGISTRY)
    done = repair_lake(fixer, stray_grace=__import__("datetime").timedelta(0))
    fixer.close()
    assert done.removed == [f"date=2026-11-26/{part_name(1, 9)}: stray file, not in the catalog"]
    assert all(p.exists() for p in parts)
    assert open_order_log(lake, read_only=True).verify().ok


def test_a_partial_overlap_file_changes_no_answer_and_deletes_no_part(lake: Path) -> None:
    parts = sealed_lake(lake)
    stray = parts[0].with_name(part_name(2, 5))
    shutil.copy(parts[1], stray)
    on_disk = snapshot(lake)
    reader = open_order_log(lake, read_only=True)
    info = reader.info()
    assert (info.parts, info.head, info.sealed_head) == (3, 9, 9)
    assert reader.read_all(columns=["position"]).column("position").to_pylist() == list(
        range(1, 10)
    )
    reader.close()
    assert snapshot(lake) == on_disk


def test_readers_change_no_file_even_with_leftovers_a_writer_would_clean(lake: Path) -> None:
    parts = sealed_lake(lake)
    log = open_order_log(lake, seal_on_close=False)
    log.append("o-1", [note("in the tail")])
    log.close()
    (parts[0].parent / "x.parquet.77.tmp").write_bytes(b"half a part")
    inflight = lake / "events" / "_inflight"
    inflight.mkdir(exist_ok=True)
    (inflight / "123-dead").write_text("10 20\n")
    on_disk = snapshot(lake)
    reader = open_order_log(lake, read_only=True)
    reader.read_all()
    reader.read_stream("o-1")
    reader.stream_version("o-1")
    reader.info()
    report = reader.verify()
    reader.close()
    assert snapshot(lake) == on_disk
    assert report.ok and any("orphan temp file" in w for w in report.warnings)
    with pytest.raises(Exception, match="read-only"):
        open_order_log(lake, read_only=True).append("o-1", [note()])
    assert snapshot(lake) == on_disk


def test_verify_catches_every_flipped_byte_and_readers_refuse_the_part(lake: Path) -> None:
    """The fuzz: any single-byte flip in any part is caught, or the log decodes the same."""
    sealed_lake(lake, parts=4)
    reader = open_order_log(lake, read_only=True)
    clean = reader.read_all().to_pylist()
    reader.close()
    rng = random.Random(20261129)
    for _ in range(40):
        part = rng.choice(list_parts(lake / "events")).path
        original = part.read_bytes()
        at = rng.randrange(len(original))
        flipped = bytearray(original)
        flipped[at] ^= 1 << rng.randrange(8)
        part.write_bytes(bytes(flipped))
        reader = open_order_log(lake, read_only=True)
        report = reader.verify()
        if report.ok:  # only acceptable when nothing any reader decodes changed
            assert reader.read_all().to_pylist() == clean
        else:
            assert any(part.name in p for p in report.problems), report.problems
            with pytest.raises(IntegrityError, match=part.name):
                reader.read_all()
        reader.close()
        part.write_bytes(original)
    assert open_order_log(lake, read_only=True).verify().ok


def test_verify_checks_values_even_when_a_writer_catalogued_a_bad_part(lake: Path) -> None:
    """Content, not just hashes: a part that decodes but breaks the rules is named."""
    log = open_order_log(lake, clock=ManualClock(), seal_on_close=False)
    log.append("o-1", [created(), item()])
    log.seal()
    good = log.read_all()
    bad = good.set_column(
        good.schema.get_field_index("payload"),
        "payload",
        pa.array(['{"nonsense": 1}', good.column("payload")[1].as_py()]),
    )
    path = log.parts()[0].path
    path.unlink()
    part = write_part(lake / "events", "2026-11-26", bad)
    log.tail.conn.execute(
        "UPDATE parts SET bytes = ?, sha256 = ? WHERE name = ?", (part.size, part.sha256, part.name)
    )
    report = log.verify()
    log.close()
    assert not report.ok
    assert any("payload that does not fit" in p and "OrderCreated" in p for p in report.problems)


def test_a_missing_part_fails_readers_instead_of_answering_with_less(lake: Path) -> None:
    parts = sealed_lake(lake)
    parts[1].unlink()
    reader = open_order_log(lake, read_only=True)
    with pytest.raises(IntegrityError, match="file is missing"):
        reader.read_all()
    with pytest.raises(IntegrityError, match="file is missing"):
        reader.live_parts(check=True)
    reader.close()


def test_an_emptied_tail_next_to_parts_is_reported_not_taken_for_a_fresh_lake(lake: Path) -> None:
    sealed_lake(lake)
    for f in lake.glob("tail.sqlite*"):
        f.unlink()
    sqlite3.connect(lake / "tail.sqlite").close()  # an empty database file
    for read_only in (True, False):
        with pytest.raises(IntegrityError, match="ledgerlake repair"):
            open_order_log(lake, read_only=read_only)
    fixer = open_for_repair(lake, registry=REGISTRY)
    report = repair_lake(fixer)
    fixer.close()
    assert len(report.adopted) == 3
    again = open_order_log(lake, read_only=True)
    assert again.head() == 9 and again.verify().ok


def test_a_lake_made_before_the_catalog_is_adopted_once_after_a_content_check(lake: Path) -> None:
    parts = sealed_lake(lake)
    # a compaction leftover of the old rule (1..6 merged, 1..3 and 4..6 still there) and a
    # restored copy whose name claims more than it holds
    merged = open_order_log(lake, read_only=True).read_all(until=6)
    write_part(lake / "events", "2026-11-26", merged)
    shutil.copy(parts[0], parts[0].with_name(part_name(1, 9)))
    conn = sqlite3.connect(lake / "tail.sqlite")
    conn.execute("DROP TABLE parts")
    conn.commit()
    conn.close()
    with pytest.raises(IntegrityError, match="before the part catalog existed"):
        open_order_log(lake, read_only=True)
    fixer = open_for_repair(lake, registry=REGISTRY)
    report = repair_lake(fixer)
    fixer.close()
    # the longest part whose content checks out wins; the lying name is never adopted
    assert report.adopted == [
        f"date=2026-11-26/{part_name(1, 6)}",
        parts[2].parent.name + "/" + parts[2].name,
    ]
    reader = open_order_log(lake, read_only=True)
    assert reader.read_all(columns=["position"]).column("position").to_pylist() == list(
        range(1, 10)
    )
    reader.close()


def test_integers_outside_what_projections_hold_are_refused_at_the_door(lake: Path) -> None:
    log = open_order_log(lake, seal_on_close=False)
    for value in (2**63, 2**64, -1, 100_001):
        with pytest.raises(PayloadSchemaError, match="quantity"):
            log.append("o-1", [created(), item(quantity=value)])
    table = bulk_table(3, 1)
    huge = pa.array(
        ['{"sku":"a","product_name":"b","quantity":1,"unit_price_cents":' + str(2**63) + "}"] * 3
    )
    bad = table.set_column(table.schema.get_field_index("payload"), "payload", huge)
    bad = bad.set_column(
        bad.schema.get_field_index("event_type"), "event_type", pa.array(["ItemAdded"] * 3)
    )
    with pytest.raises(PayloadSchemaError, match="unit_price_cents"):
        log.append_batch(bad)
    assert log.head() == 0
    log.close()


def test_the_catalog_commits_with_the_sealed_head(lake: Path) -> None:
    log = open_order_log(lake, clock=ManualClock(), seal_on_close=False)
    log.append("o-1", [created(), item()])
    log.seal()
    log.append_batch(bulk_table(30, 3))
    live = log.parts()
    assert [(p.first, p.last) for p in live] == [(1, 2), (3, 32)]
    assert live[-1].last == log.sealed_head()
    for p in live:
        assert hashlib.sha256(p.path.read_bytes()).hexdigest() == p.sha256
    log.close()
