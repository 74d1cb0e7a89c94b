"""Part files: naming, atomic publication with a content hash, and reading.

A part is an immutable Parquet file of consecutive events named by its position range,
``<first:020d>-<last:020d>.parquet``, under ``events/date=YYYY-MM-DD/`` (the recorded UTC
date). A file's name is only a label: which parts are live, and what each one must hold
(range, rows, bytes, SHA-256), is what the catalog in the tail says (``eventlog.tails``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eventlog.envelope import ENVELOPE_SCHEMA
from eventlog.errors import IntegrityError

PART_NAME = re.compile(r"^(\d{20})-(\d{20})\.parquet$")
DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
ROW_GROUP_SIZE = 4_096  # small groups keep read_stream (row-group granular) fast
# How every part is written (the benchmark's raw-pyarrow limit writes with the same).
# Page checksums (CRC32) let point reads notice a damaged page without hashing the file.
WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "row_group_size": ROW_GROUP_SIZE,
    "write_statistics": True,
    "use_dictionary": ["stream_type", "event_type", "stream_id"],
    "write_page_checksum": True,
}
HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, order=True)
class Part:
    """One part file: the position range it holds, where it is, and what its bytes hash to.

    ``size`` and ``sha256`` are empty for a file seen in a listing (not yet checked).
    """

    first: int
    last: int
    date: str
    path: Path
    size: int = 0
    sha256: str = ""

    @property
    def count(self) -> int:
        """How many events the part holds."""
        return self.last - self.first + 1

    @property
    def name(self) -> str:
        """The catalog's name of the part: its path under ``events/``."""
        return f"{self.path.parent.name}/{self.path.name}"


def missing_part(part: Part) -> IntegrityError:
    """A catalogued part whose file is gone."""
    return IntegrityError(
        f"part {part.name} (positions {part.first}..{part.last}) is in the catalog but "
        "its file is missing; restore it from a backup"
    )


def mismatched_part(part: Part, what: str = "file") -> IntegrityError:
    """A catalogued part whose bytes differ from its catalog entry."""
    return IntegrityError(
        f"part {part.name} (positions {part.first}..{part.last}) does not match its "
        f"catalog entry (size or SHA-256 differ): the {what} was damaged or replaced; "
        "restore it from a backup"
    )


def part_name(first: int, last: int) -> str:
    """The file name of a part covering positions first..last."""
    return f"{first:020d}-{last:020d}.parquet"


def list_parts(events_dir: Path) -> list[Part]:
    """Every file under events/ named like a part, sorted by its name's range.

    Only for repair and ``verify`` (to find files the catalog does not know): readers
    take the live set from the catalog, never from a listing.
    """
    parts: list[Part] = []
    if not events_dir.is_dir():
        return parts
    for date_dir in events_dir.iterdir():
        m = DATE_DIR.match(date_dir.name)
        if not m or not date_dir.is_dir():
            continue
        for f in date_dir.iterdir():
            pm = PART_NAME.match(f.name)
            if pm:
                parts.append(Part(int(pm.group(1)), int(pm.group(2)), m.group(1), f))
    return sorted(parts)


def temp_files(events_dir: Path) -> list[Path]:
    """Leftover ``*.tmp`` files of an interrupted write."""
    if not events_dir.is_dir():
        return []
    return sorted(events_dir.glob("date=*/*.tmp"))


def check_tiling(live: list[Part], sealed_head: int) -> list[str]:
    """Problems with a live set as a tiling of [1, sealed_head]; empty when fine."""
    problems: list[str] = []
    expected = 1
    for part in sorted(live):
        if part.first > expected:
            problems.append(f"gap: positions {expected}..{part.first - 1} are in no part")
        elif part.first < expected:
            problems.append(f"overlap: {part.name} starts at {part.first}, before {expected}")
        expected = max(expected, part.last + 1)
    if expected - 1 != sealed_head:
        problems.append(f"parts end at position {expected - 1}, sealed head is {sealed_head}")
    return problems


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a new or removed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingFile:
    """A write-only file that hashes what passes through it (Parquet writes sequentially)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        self.digest.update(data)
        self.size += len(data)
        return int(self.fh.write(data))

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.closed = True  # the caller closes the real file after fsync

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class StagedPart:
    """A part written and fsynced under a temp name, not yet published."""

    tmp: Path
    part: Part


def stage_part(events_dir: Path, date: str, table: pa.Table) -> StagedPart:
    """Write a table of consecutive events to a temp file and fsync it (invisible to readers).

    The table must be in position order and dense. The file is hashed as it is written.
    A crash leaves only the temp file, which the next writer's repair deletes.
    """
    positions = table.column("position")
    first, last = positions[0].as_py(), positions[-1].as_py()
    if last - first + 1 != table.num_rows:
        raise IntegrityError(f"part {first}..{last} has {table.num_rows} rows; not dense")
    directory = events_dir / f"date={date}"
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / part_name(first, last)
    tmp = directory / (final.name + f".{os.getpid()}.tmp")
    table = table.cast(ENVELOPE_SCHEMA)
    with open(tmp, "wb") as fh:
        sink = _HashingFile(fh)
        pq.write_table(table, sink, **WRITE_OPTIONS)
        fh.flush()
        os.fsync(fh.fileno())
    part = Part(first, last, date, final, sink.size, sink.digest.hexdigest())
    return StagedPart(tmp, part)


def publish_part(staged: StagedPart) -> Part:
    """Publish a staged part with an exclusive ``os.link`` (never replaces), fsync the dirs.

    A published file is not yet part of the log: it becomes so when its catalog row
    commits (see ``eventlog.tails``).
    """
    final = staged.part.path
    try:
        os.link(staged.tmp, final)
    except FileExistsError:
        staged.tmp.unlink()
        raise IntegrityError(
            f"a file {final} already exists (not in the catalog: a stray or a dead writer's "
            "leftover); run 'ledgerlake repair' to remove it"
        ) from None
    staged.tmp.unlink()
    fsync_dir(final.parent)
    fsync_dir(final.parent.parent)
    return staged.part


def write_part(events_dir: Path, date: str, table: pa.Table) -> Part:
    """Write a table of consecutive events as a part file: temp file, fsync, exclusive publish."""
    return publish_part(stage_part(events_dir, date, table))


def remove_files(paths: list[Path]) -> None:
    """Delete files (missing ones are fine), then fsync their directories."""
    dirs = set()
    for path in paths:
        path.unlink(missing_ok=True)
        dirs.add(path.parent)
    for d in dirs:
        if d.is_dir():
            fsync_dir(d)


def read_part(part: Part, columns: list[str] | None = None) -> pa.Table:
    """Read a part with the envelope schema (page checksums verified)."""
    pf = pq.ParquetFile(part.path, page_checksum_verification=True)
    return pf.read(columns=columns).cast(
        pa.schema([ENVELOPE_SCHEMA.field(c) for c in (columns or ENVELOPE_SCHEMA.names)])
    )
