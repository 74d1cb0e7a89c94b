"""Part storage: publish, list and read the immutable parts of one lake (a local directory).

The parts live under ``<lake>/events/`` (see ``eventlog.parts`` for the file format).
Which of them hold the log is the catalog's word, kept by the tail: this module never
decides liveness, it publishes files, reads the ones it is given, checks their bytes
against their catalog rows and removes the ones repair names.

Publishing inside a write transaction leaves an in-flight marker first
(``events/_inflight/<pid>-<uuid>`` naming the positions being published); the log
removes it after the tail commits. A marker found by a writer that holds the writer
lock belongs to a writer that died between publishing and committing.

``eventlog.objectstore.ObjectPartStore`` implements the same operations on an
S3-compatible bucket (publish = an object under a name that cannot collide; markers =
objects under a prefix). Nothing above these two classes touches a file or an object
directly: repair and ``verify`` list what the catalog lacks through them.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventlog.envelope import COLUMNS, ENVELOPE_SCHEMA
from eventlog.errors import IntegrityError
from eventlog.parts import (
    Part,
    StagedPart,
    file_sha256,
    fsync_dir,
    list_parts,
    mismatched_part,
    missing_part,
    publish_part,
    read_part,
    remove_files,
    stage_part,
    temp_files,
)
from eventlog.tails import CatalogRow

_READERS = max(2, os.cpu_count() or 1)  # threads that read parts at scattered positions


def open_part(path: Path, meta: pq.FileMetaData | None = None) -> pq.ParquetFile:
    """A part file for reading, its pages' checksums verified; damage is an IntegrityError."""
    try:
        return pq.ParquetFile(path, metadata=meta, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            raise IntegrityError(f"part file {path} is missing") from None
        raise IntegrityError(f"part {path} cannot be read: {exc}") from None


def _write_marker(path: Path, span: tuple[int, int]) -> None:
    """Write one in-flight marker file and fsync it."""
    with open(path, "w") as fh:
        fh.write(f"{span[0]} {span[1]}\n")
        fh.flush()
        os.fsync(fh.fileno())


class PartStore:
    """The parts directory of one lake: ``<lake>/events/``."""

    local = True  # parts are files on this machine's filesystem (DuckDB reads them itself)
    # every commit looks for a dead writer's markers (a listdir: cheap); see ``commit_markers``

    def __init__(self, events_dir: Path) -> None:
        self.events_dir = events_dir
        self.inflight_dir = events_dir / "_inflight"
        self._markers: list[tuple[Path, tuple[int, int]]] = []  # this transaction's
        self.published = False  # whether this transaction published a part
        self._footers: dict[Path, pq.FileMetaData] = {}
        # parts whose bytes this handle checked against the catalog: (size, mtime) when checked
        self._checked: dict[str, tuple[int, int]] = {}

    def create(self) -> None:
        """Make the directory (writers only)."""
        self.events_dir.mkdir(parents=True, exist_ok=True)

    def part(self, row: CatalogRow) -> Part:
        """The part a catalog row describes."""
        name, first, last, date, size, sha = row
        return Part(first, last, date, self.events_dir / name, size, sha)

    def describe(self) -> str:
        """Where the parts are, for messages."""
        return str(self.events_dir)

    # ---------------------------------------------------------------- publishing
    def commit_markers(self) -> list[Path]:
        """The markers a write transaction must see before it assigns positions.

        A dead writer's uncommitted file would block the exclusive publish of the same
        positions, so every local commit looks (one listdir).
        """
        return self.markers()

    def remove_markers(self, markers: list[Path]) -> None:
        """Delete markers (after repair)."""
        for marker in markers:
            marker.unlink(missing_ok=True)

    def markers(self) -> list[Path]:
        """The in-flight markers present now."""
        try:
            names = os.listdir(self.inflight_dir)  # noqa: PTH208 (every commit looks: cheap)
        except FileNotFoundError:
            return []
        return [self.inflight_dir / name for name in names]

    def marker_spans(self) -> list[tuple[int, int]]:
        """The position spans the markers present now name."""
        spans = []
        for marker in self.markers():
            try:
                text = marker.read_text().split()
            except FileNotFoundError:
                continue
            if len(text) == 2 and all(t.isdigit() for t in text):
                spans.append((int(text[0]), int(text[1])))
        return spans

    def begin(self) -> None:
        """A write transaction starts: nothing published yet."""
        self.published = False

    def mark_inflight(self, span: tuple[int, int]) -> None:
        """Leave a marker naming the positions about to be published (durably).

        Each span gets a marker file of its own, written once and never rewritten: a
        writer killed while writing its next marker leaves the markers of the parts it
        already published intact (rewriting one marker in place would truncate it first,
        and a kill right then would leave those parts named by no marker).
        """
        if any(lo <= span[0] and span[1] <= hi for _, (lo, hi) in self._markers):
            return
        self.inflight_dir.mkdir(parents=True, exist_ok=True)
        marker = self.inflight_dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        self._markers.append((marker, span))
        _write_marker(marker, span)
        fsync_dir(self.inflight_dir)

    def publish(self, date: str, table: pa.Table) -> Part:
        """Publish a part inside a write transaction, its marker first.

        The caller records it in the catalog in the same transaction.
        """
        positions = table.column("position")
        self.mark_inflight((positions[0].as_py(), positions[-1].as_py()))
        return self.publish_staged(self.stage(date, table))

    def stage(self, date: str, table: pa.Table) -> StagedPart:
        """Write and fsync a part under a temp name (any thread; invisible to readers)."""
        return stage_part(self.events_dir, date, table)

    def publish_staged(self, staged: StagedPart) -> Part:
        """Publish a staged part (its span must be marked in flight already)."""
        self.published = True
        return publish_part(staged)

    def discard(self, staged: StagedPart) -> None:
        """Drop a staged part that will not be published."""
        staged.tmp.unlink(missing_ok=True)

    def finish(self, stale: list[Path], committed: bool) -> None:
        """After the transaction: drop the markers it handled.

        Rolled back before any publish: the marker guards nothing. Rolled back after one:
        it stays, and the next writer removes the uncommitted files it names.
        """
        if committed:
            for marker in stale:
                marker.unlink(missing_ok=True)
        if committed or not self.published:
            for marker, _ in self._markers:
                marker.unlink(missing_ok=True)
        self._markers = []

    # ---------------------------------------------------------------- listing, removing
    def list_files(self) -> list[Part]:
        """Every file named like a part (for repair and ``verify`` only)."""
        return list_parts(self.events_dir)

    def temp_files(self) -> list[Path]:
        """Leftover temp files of interrupted writes."""
        return temp_files(self.events_dir)

    def remove(self, paths: list[Path]) -> None:
        """Delete files (repair only) and forget what was cached about them."""
        remove_files(paths)
        self._footers.clear()

    def remove_names(self, names: list[str]) -> None:
        """Delete parts by their catalog names (``date=.../<file>``; repair only)."""
        self.remove([self.events_dir / name for name in names])

    def size_of(self, part: Part) -> int | None:
        """The size of a part's file in bytes, None when it is missing."""
        try:
            return part.path.stat().st_size
        except FileNotFoundError:
            return None

    def sha256_of(self, part: Part) -> str:
        """The SHA-256 of a part's file."""
        return file_sha256(part.path)

    def age_s(self, part: Part) -> float:
        """Seconds since a part's file was last written."""
        import time

        return time.time() - part.path.stat().st_mtime

    def read_whole(self, part: Part, columns: list[str] | None = None) -> pa.Table:
        """A whole part with the envelope schema (no catalog check: ``verify``, compaction)."""
        return read_part(part, columns)

    def read_checked(self, part: Part, columns: list[str] | None = None) -> pa.Table:
        """A whole live part once its bytes match the catalog."""
        self.check(part)
        return read_part(part, columns)

    def forget_cached(self) -> None:
        """Drop cached footers (parts were replaced or removed)."""
        self._footers.clear()

    # ---------------------------------------------------------------- reading
    def check(self, part: Part) -> Path:
        """A live part's path once its bytes match the catalog (size and SHA-256).

        Each part is hashed once per handle (again if its size or mtime changed).
        """
        try:
            st = part.path.stat()
        except FileNotFoundError:
            raise missing_part(part) from None
        stamp = (st.st_size, st.st_mtime_ns)
        if self._checked.get(part.name) == stamp:
            return part.path
        if st.st_size != part.size or file_sha256(part.path) != part.sha256:
            raise mismatched_part(part)
        self._checked[part.name] = stamp
        return part.path

    def read_range(self, part: Part, after: int, until: int, columns: list[str] | None) -> pa.Table:
        """Positions (after, until] of a part (its bytes checked first)."""
        cols = list(columns) if columns else list(COLUMNS)
        if "position" not in cols:
            cols = ["position", *cols]
        pf = self._open_checked(part)
        groups = []
        offset = part.first
        for i in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            if offset + n - 1 > after and offset <= until:
                groups.append(i)
            offset += n
        try:
            table = pf.read_row_groups(groups, columns=cols).cast(
                pa.schema([ENVELOPE_SCHEMA.field(c) for c in cols])
            )
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(f"part {part.name} cannot be read: {exc}") from None
        pos = table.column("position")
        table = table.filter(pc.and_(pc.greater(pos, after), pc.less_equal(pos, until)))
        if table.num_rows != min(part.last, until) - max(after, part.first - 1):
            raise IntegrityError(f"part {part.name} does not hold the positions its catalog says")
        return table.select(columns) if columns else table

    def read_parts(
        self,
        live: Callable[[], list[Part]],
        after: int,
        until: int,
        columns: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """Sealed positions (after, until] from the live parts, re-listing on a race."""
        cursor = after
        while cursor < until:
            parts = [p for p in live() if p.last > cursor and p.first <= until]
            if not parts:
                raise IntegrityError(f"no part holds position {cursor + 1}")
            try:
                for part in parts:
                    if part.first > cursor + 1:
                        raise IntegrityError(f"no part holds position {cursor + 1}")
                    table = self.read_range(part, cursor, until, columns)
                    cursor = min(part.last, until)
                    yield table
                    if cursor >= until:
                        break
            except IntegrityError:
                # compaction replaced (and removed) the part while we read: list again;
                # a part that is still live is really missing or damaged
                if any(p.name == part.name for p in live()):
                    raise

    def take(self, live: Callable[[], list[Part]], positions: list[int]) -> list[pa.Table]:
        """The rows at scattered sealed positions, part by part (in parallel)."""
        for _ in range(3):
            by_part: dict[Part, list[int]] = defaultdict(list)
            try:
                parts = live()
                for p in positions:
                    part = next((x for x in parts if x.first <= p <= x.last), None)
                    if part is None:
                        raise IntegrityError(f"no part holds position {p}")
                    by_part[part].append(p)
                if len(by_part) > 1:  # pyarrow decodes without the GIL: parts in parallel
                    with ThreadPoolExecutor(max_workers=min(len(by_part), _READERS)) as pool:
                        return list(pool.map(lambda item: self._take_rows(*item), by_part.items()))
                return [self._take_rows(part, pos) for part, pos in by_part.items()]
            except IntegrityError:
                # a part compaction replaced and removed while we read: list again; a part
                # that is still live is really missing or damaged
                self._footers.clear()
                if {p.name for p in by_part} <= {p.name for p in live()}:
                    raise
        raise IntegrityError("parts kept disappearing while reading; is compaction looping?")

    def _open_checked(self, part: Part) -> pq.ParquetFile:
        """A live part for a sequential read, its bytes checked first."""
        return open_part(self.check(part))

    def _open_random(self, part: Part, meta: pq.FileMetaData | None = None) -> pq.ParquetFile:
        """A part for reading a few row groups."""
        return open_part(part.path, meta)

    def _take_rows(self, part: Part, positions: list[int]) -> pa.Table:
        meta = self._footers.get(part.path)
        if meta is None:
            meta = self._open_random(part).metadata
            if len(self._footers) > 4096:
                self._footers.clear()
            self._footers[part.path] = meta
        starts = []
        offset = 0
        for i in range(meta.num_row_groups):
            starts.append(offset)
            offset += meta.row_group(i).num_rows
        wanted: dict[int, list[int]] = defaultdict(list)
        for p in positions:
            idx = p - part.first
            g = max(i for i, s in enumerate(starts) if s <= idx)
            wanted[g].append(idx - starts[g])
        pf = self._open_random(part, meta)
        tables = []
        try:
            for g, rows in sorted(wanted.items()):
                tables.append(pf.read_row_group(g).take(pa.array(rows)))
            table = pa.concat_tables(tables).cast(ENVELOPE_SCHEMA)
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(f"part {part.name} cannot be read: {exc}") from None
        if table.column("position").to_pylist() != sorted(positions):
            raise IntegrityError(f"part {part.name} does not hold the positions its catalog says")
        return table
