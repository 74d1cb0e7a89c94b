"""Every failure is a message with the right exit code, never a traceback, nothing written.

Each class of failure runs the installed ``ledgerlake`` in a subprocess, as a script would:
a damaged tail, a zero-byte warehouse, a full disk (a small tmpfs), a read-only filesystem
(a read-only bind mount), deep JSON, times at the calendar's edges, bad lake paths, a
corrupt part, the ``sql`` sandbox, and a part deleted behind the log's back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.eventlog.test_integrity import snapshot

LEDGERLAKE = Path(sys.executable).with_name("ledgerlake")
ORDER = {
    "customer_id": "c-1",
    "customer_name": "Ada",
    "customer_email": "ada@example.com",
    "currency": "EUR",
    "channel": "web",
}


def run(lake: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ledgerlake --lake LAKE ARGS`` as a process; never a traceback on stderr."""
    proc = subprocess.run(
        [str(LEDGERLAKE), "--lake", str(lake), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def line(stream: str, etype: str, data: dict[str, object], **extra: object) -> str:
    return json.dumps({"stream_id": stream, "type": etype, "data": data, **extra}) + "\n"


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    proc = run(lake, "append", stdin=line("o-1", "OrderCreated", ORDER))
    assert proc.returncode == 0, proc.stderr
    assert run(lake, "seal").returncode == 0
    proc = run(lake, "append", stdin=line("o-1", "CustomerNoteAdded", {"author": "a", "note": "n"}))
    assert proc.returncode == 0
    return lake


def test_a_damaged_tail_is_an_integrity_error_for_readers_and_writers(seeded: Path) -> None:
    tail = seeded / "tail.sqlite"
    data = bytearray(tail.read_bytes())
    data[:100] = b"\x13" * 100  # the SQLite header
    tail.write_bytes(bytes(data))
    for f in seeded.glob("tail.sqlite-*"):
        f.unlink()
    before = snapshot(seeded)
    for args in (("read",), ("verify",), ("info",), ("append",)):
        proc = run(seeded, *args, stdin=line("o-2", "OrderCreated", ORDER))
        assert proc.returncode == 1, (args, proc.stderr)
        assert "tail.sqlite is damaged" in proc.stderr
    assert snapshot(seeded) == before


def test_a_zero_byte_warehouse_is_named_with_its_remedy(seeded: Path) -> None:
    (seeded / "warehouse.duckdb").write_bytes(b"")
    for args in (("sql", "SELECT 1"), ("state", "o-1"), ("project",)):
        proc = run(seeded, *args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "not a valid DuckDB database" in proc.stderr and "rebuild" in proc.stderr


def test_a_corrupt_part_is_an_integrity_problem_not_bad_input(seeded: Path) -> None:
    part = next((seeded / "events").glob("date=*/*.parquet"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    for args in (("read",), ("verify",), ("project",)):
        proc = run(seeded, *args)
        assert proc.returncode == 1, (args, proc.stderr, proc.stdout)
        assert part.name in proc.stderr + proc.stdout


def test_a_deleted_part_fails_project_and_lag_still_shows_the_gap(seeded: Path) -> None:
    assert run(seeded, "project").returncode == 0
    run(seeded, "append", stdin=line("o-2", "OrderCreated", ORDER))
    assert run(seeded, "seal").returncode == 0
    newest = max((seeded / "events").glob("date=*/*.parquet"))
    newest.unlink()
    proc = run(seeded, "project", "--rebuild")
    assert proc.returncode == 1 and "file is missing" in proc.stderr
    # lag cannot read the missing part either: it says so instead of "lag 0"
    lag = run(seeded, "lag", "--json")
    assert lag.returncode == 1 and "file is missing" in lag.stderr


def test_sql_writes_no_file_and_reads_none_outside_the_warehouse(seeded: Path) -> None:
    assert run(seeded, "project").returncode == 0
    part = next((seeded / "events").glob("date=*/*.parquet"))
    before = snapshot(seeded)
    attacks = {
        f"EXPLAIN ANALYZE COPY (SELECT 'x' AS x) TO '{part}' (FORMAT csv)": "COPY statement",
        "SELECT * FROM read_text('/etc/hostname')": "file system operations are disabled",
        f"SELECT * FROM read_parquet('{part}')": "file system operations are disabled",
        "SET enable_external_access = true": "is refused",
    }
    for query, said in attacks.items():
        proc = run(seeded, "sql", query)
        assert proc.returncode == 2, (query, proc.stderr)
        assert said in proc.stderr, (query, proc.stderr)
    assert snapshot(seeded) == before
    ok = run(seeded, "sql", "EXPLAIN ANALYZE SELECT count(*) FROM analytics.orders")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({"sku": "M", "product_name": "Mug", "quantity": 2**64, "unit_price_cents": 1}, "quantity"),
        (
            {"sku": "M", "product_name": "Mug", "quantity": 1, "unit_price_cents": 2**63},
            "unit_price",
        ),
    ],
)
def test_integers_beyond_what_projections_hold_exit_2(
    seeded: Path, payload: dict[str, object], said: str
) -> None:
    before = snapshot(seeded)
    proc = run(seeded, "append", stdin=line("o-1", "ItemAdded", payload))
    assert proc.returncode == 2 and said in proc.stderr
    assert snapshot(seeded) == before


def test_deep_json_and_edge_times_are_bad_input(seeded: Path) -> None:
    before = snapshot(seeded)
    deep = "[" * 100_000 + "]" * 100_000
    text = (
        '{"stream_id":"o-1","type":"CustomerNoteAdded","data":{"author":"a","note":"n"},"metadata":{"x":'
        + deep
        + "}}\n"
    )
    proc = run(seeded, "append", stdin=text)
    assert proc.returncode == 2 and "deep" in proc.stderr, proc.stderr
    nested = {"x": 1}
    for _ in range(40):
        nested = {"x": nested}
    proc = run(
        seeded,
        "append",
        stdin=line("o-1", "CustomerNoteAdded", {"author": "a", "note": "n"}, metadata=nested),
    )
    assert proc.returncode == 2 and "deeper than 32" in proc.stderr
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        proc = run(
            seeded,
            "append",
            stdin=line("o-1", "CustomerNoteAdded", {"author": "a", "note": "n"}, occurred_at=when),
        )
        assert proc.returncode == 2 and "outside what the log can store" in proc.stderr, proc.stderr
    assert snapshot(seeded) == before


def test_bad_lake_paths(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-lake"
    a_file.write_text("hello")
    for args in (("read",), ("append",)):
        proc = run(a_file, *args, stdin=line("o-1", "OrderCreated", ORDER))
        assert proc.returncode == 2 and "is a file" in proc.stderr
    odd = tmp_path / "la?ke#1"
    assert run(odd, "append", stdin=line("o-1", "OrderCreated", ORDER)).returncode == 0
    proc = run(odd, "read")
    assert proc.returncode == 0 and json.loads(proc.stdout)["stream_id"] == "o-1"
    assert run(odd, "verify").returncode == 0


@contextlib.contextmanager
def mounted(*command: str) -> Iterator[None]:
    target = command[-1]
    try:
        subprocess.run(["mount", *command], check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount here ({exc}); these tests need root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_loses_nothing_acknowledged_and_says_so(seeded: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)):
        lake = small / "lake"
        shutil.copytree(seeded, lake)
        assert run(lake, "project").returncode == 0
        acked = run(lake, "read").stdout
        filler = small / "filler"
        with open(filler, "wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        big_note = {"author": "a", "note": "x" * 200_000}
        results = {
            "append": run(lake, "append", stdin=line("o-1", "CustomerNoteAdded", big_note)),
            "seal": run(lake, "seal"),
            "project": run(lake, "project", "--rebuild"),
        }
        for name, proc in results.items():
            assert proc.returncode in (0, 5), (name, proc.returncode, proc.stderr)
        assert results["append"].returncode == 5, results["append"].stderr
        assert "No space left" in results["append"].stderr or "full" in results["append"].stderr
        assert results["project"].returncode == 5
        assert "No space left" in results["project"].stderr
        filler.unlink()
        assert run(lake, "read").stdout == acked
        assert run(lake, "verify").returncode == 0
        assert run(lake, "seal").returncode == 0
        assert run(lake, "project").returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_a_read_only_filesystem_serves_readers_and_refuses_writers(
    seeded: Path, tmp_path: Path
) -> None:
    assert run(seeded, "project").returncode == 0
    ro = tmp_path / "ro"
    ro.mkdir()
    with mounted("--bind", "-o", "ro", str(seeded), str(ro)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        before = snapshot(ro)
        for args in (
            ("read",),
            ("verify",),
            ("info",),
            ("lag",),
            ("sql", "SELECT count(*) FROM analytics.orders"),
            ("state", "o-1"),
        ):
            proc = run(ro, *args)
            assert proc.returncode == 0, (args, proc.stderr)
        for args in (("append",), ("seal",), ("project",)):
            proc = run(ro, *args, stdin=line("o-2", "OrderCreated", ORDER))
            assert proc.returncode == 5, (args, proc.returncode, proc.stderr)
            assert "readonly database" in proc.stderr or "Read-only file system" in proc.stderr
        assert snapshot(ro) == before


def test_the_stray_copy_reproduction_loses_nothing_and_writes_nothing(seeded: Path) -> None:
    """``cp`` a part under a wider name, then ``read --limit 1``: once this deleted parts."""
    run(seeded, "append", stdin=line("o-2", "OrderCreated", ORDER))
    assert run(seeded, "seal").returncode == 0
    first = min((seeded / "events").glob("date=*/*.parquet"))
    shutil.copy(first, first.with_name("00000000000000000001-00000000000000000036.parquet"))
    everything = run(seeded, "read").stdout
    before = snapshot(seeded)
    proc = run(seeded, "read", "--limit", "1")
    assert proc.returncode == 0 and json.loads(proc.stdout)["position"] == 1
    assert run(seeded, "info").returncode == 0
    assert snapshot(seeded) == before
    assert run(seeded, "read").stdout == everything
    verify = run(seeded, "verify")
    assert verify.returncode == 1 and "stray file" in verify.stdout


def test_values_at_the_bounds_project_exactly(seeded: Path) -> None:
    """The largest values the log accepts never wedge a projection or lose precision."""
    big = {"sku": "GOLD", "product_name": "Gold bar", "quantity": 100_000,
           "unit_price_cents": 100_000_000_000}  # fmt: skip
    lines = "".join(line("o-1", "ItemAdded", big) for _ in range(3))
    assert run(seeded, "append", stdin=lines).returncode == 0
    assert run(seeded, "project").returncode == 0, "a projection stopped on accepted values"
    proc = run(seeded, "sql", "SELECT subtotal_cents FROM analytics.orders", "--json")
    assert json.loads(proc.stdout) == [{"subtotal_cents": 3 * 100_000 * 100_000_000_000}]
    assert run(seeded, "project").returncode == 0  # and later runs go on
