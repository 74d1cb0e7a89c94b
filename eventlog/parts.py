"""Part files: naming, atomic publication and the live set.

A part is an immutable Parquet file of consecutive events named by its position range,
``<first:020d>-<last:020d>.parquet``, under ``events/date=YYYY-MM-DD/`` (the recorded UTC
date). The live set is every part not contained in another part's range.
"""

from __future__ import annotations

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
WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "row_group_size": ROW_GROUP_SIZE,
    "write_statistics": True,
    "use_dictionary": ["stream_type", "event_type", "stream_id"],
}


@dataclass(frozen=True, slots=True, order=True)
class Part:
    """One published part file and the position range its name claims."""

    first: int
    last: int
    date: str
    path: Path

    @property
    def count(self) -> int:
        """How many events the name claims."""
        return self.last - self.first + 1

    def contains(self, other: Part) -> bool:
        """True when this part's range covers the other's (and they differ)."""
        return self != other and self.first <= other.first and other.last <= self.last


def part_name(first: int, last: int) -> str:
    """The file name of a part covering positions first..last."""
    return f"{first:020d}-{last:020d}.parquet"


def list_parts(events_dir: Path) -> list[Part]:
    """Every published part under events/, sorted by range (temp files ignored)."""
    parts: list[Part] = []
    if not events_dir.exists():
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
    if not events_dir.exists():
        return []
    return sorted(events_dir.glob("date=*/*.tmp"))


def live_set(parts: list[Part]) -> list[Part]:
    """The parts not covered by another part, sorted by first position."""
    ordered = sorted(parts, key=lambda p: (p.first, -p.last))
    live: list[Part] = []
    for part in ordered:
        if live and live[-1].first <= part.first and part.last <= live[-1].last:
            continue
        live.append(part)
    return live


def check_tiling(live: list[Part], sealed_head: int) -> list[str]:
    """Problems with the live set as a tiling of [1, sealed_head]; empty when fine."""
    problems: list[str] = []
    expected = 1
    for part in live:
        if part.first > expected:
            problems.append(f"gap: positions {expected}..{part.first - 1} are in no part")
        elif part.first < expected:
            problems.append(f"overlap: {part.path.name} starts at {part.first}, before {expected}")
        expected = max(expected, part.last + 1)
    if expected - 1 != sealed_head:
        problems.append(f"parts end at position {expected - 1}, sealed head is {sealed_head}")
    return problems


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class StagedPart:
    """A part written and fsynced under a temp name, not yet published."""

    tmp: Path
    part: Part


def stage_part(events_dir: Path, date: str, table: pa.Table) -> StagedPart:
    """Write a table of consecutive events to a temp file and fsync it (invisible to readers).

    The table must be in position order and dense. A crash leaves only the temp file,
    which the next writer's repair deletes.
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
        pq.write_table(table, fh, **WRITE_OPTIONS)
        fh.flush()
        os.fsync(fh.fileno())
    return StagedPart(tmp, Part(first, last, date, final))


def publish_part(staged: StagedPart) -> Part:
    """Publish a staged part with an exclusive ``os.link`` (never replaces), fsync the dirs."""
    final = staged.part.path
    try:
        os.link(staged.tmp, final)
    except FileExistsError:
        staged.tmp.unlink()
        raise IntegrityError(f"part {final} already exists; refusing to replace it") from None
    staged.tmp.unlink()
    fsync_dir(final.parent)
    fsync_dir(final.parent.parent)
    return staged.part


def write_part(events_dir: Path, date: str, table: pa.Table) -> Part:
    """Write a table of consecutive events as a part: temp file, fsync, exclusive publish."""
    return publish_part(stage_part(events_dir, date, table))


def remove_parts(parts: list[Part]) -> None:
    """Delete parts that a covering part has replaced, then fsync their directories."""
    dirs = set()
    for part in parts:
        part.path.unlink(missing_ok=True)
        dirs.add(part.path.parent)
    for d in dirs:
        fsync_dir(d)


def read_part(part: Part, columns: list[str] | None = None) -> pa.Table:
    """Read a part with the envelope schema."""
    return pq.read_table(part.path, columns=columns, schema=ENVELOPE_SCHEMA)
