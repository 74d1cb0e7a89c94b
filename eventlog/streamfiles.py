"""Stream files: a part's events clustered by stream, so ``read_stream`` reads one block.

A part holds its events in position order, so one stream's events lie in many row
groups, and pyarrow decodes a whole row group (every column, thousands of rows) to
return one row of it. A stream file is a derived copy of one part, sorted by
``(stream_id, position)`` and cut into small blocks; a stream's events then come from
one block (rarely two), read with one ``pread``.

Layout of ``<lake>/streams/date=YYYY-MM-DD/<first>-<last>.streams`` (the part's name)::

    MAGIC | block 1 | block 2 | ... | footer (JSON) | footer length (u64) | CRC32 (u32) | END

Each block is an Arrow IPC stream (LZ4 buffers: a tenth of zstd's decoding time here) of at most ``BLOCK_ROWS`` envelope
rows. The footer names the part it was made from (name, range, SHA-256) and lists every
block: offset, length, CRC32, first and last stream id. Every block's CRC32 is checked
before it is decoded and the footer's before it is trusted (as Parquet page CRCs are
for point reads of parts); the rows a block yields must be exactly the positions the
stream index gives, or the read fails with an ``IntegrityError``.

Stream files are derived and disposable: compaction writes one for each part it makes
and for each live part that lacks one (old lakes gain them on their next ``compact``).
A part without one, or whose file names other bytes, is read from the Parquet part as
before. They are removed with the parts compaction replaced.
"""

from __future__ import annotations

import bisect
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.envelope import ENVELOPE_SCHEMA
from eventlog.errors import IntegrityError
from eventlog.parts import Part, fsync_dir
from eventlog.values import empty_envelope

MAGIC = b"LLSTREAM1\n"
END = b"LLSE"
TRAILER = struct.Struct("<QI4s")  # footer length, footer CRC32, END
BLOCK_ROWS = 256  # rows decoded per block read: small enough to stay well under 1 ms
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")
_READ = pa.ipc.IpcReadOptions(use_threads=False)  # one small block: threads cost more


def stream_file_path(root: Path, part: Part) -> Path:
    """Where the stream file of a part lives: ``<lake>/streams/<date dir>/<name>.streams``."""
    return root / "streams" / part.path.parent.name / (part.path.stem + ".streams")


def write_stream_file(root: Path, part: Part, table: pa.Table) -> Path:
    """Write the stream file of a part from its events (temp file, fsync, rename)."""
    if table.num_rows != part.count:
        raise IntegrityError(f"part {part.name} has {table.num_rows} rows, not {part.count}")
    table = table.cast(ENVELOPE_SCHEMA)
    order = pc.sort_indices(table, [("stream_id", "ascending"), ("position", "ascending")])
    table = table.take(order)
    keys = table.column("stream_id")
    blocks: list[list[object]] = []
    path = stream_file_path(root, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC)
        offset = len(MAGIC)
        for start in range(0, table.num_rows, BLOCK_ROWS):
            block = table.slice(start, BLOCK_ROWS)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, ENVELOPE_SCHEMA, options=_IPC) as writer:
                writer.write_table(block)
            data = sink.getvalue().to_pybytes()
            fh.write(data)
            first = keys[start].as_py()
            last = keys[start + block.num_rows - 1].as_py()
            blocks.append([offset, len(data), zlib.crc32(data), first, last])
            offset += len(data)
        footer = json.dumps(
            {
                "part": part.name,
                "first": part.first,
                "last": part.last,
                "sha256": part.sha256,
                "blocks": blocks,
            }
        ).encode()
        fh.write(footer)
        fh.write(TRAILER.pack(len(footer), zlib.crc32(footer), END))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)
    return path


def remove_stream_files(root: Path, names: list[str]) -> None:
    """Delete the stream files of parts (by catalog name), e.g. parts compaction replaced."""
    for name in names:
        date_dir, _, file_name = name.partition("/")
        (root / "streams" / date_dir / (Path(file_name).stem + ".streams")).unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class _Footer:
    stamp: tuple[int, int]  # (size, mtime) of the file when read
    firsts: list[str]
    lasts: list[str]
    blocks: list[tuple[int, int, int]]  # offset, length, CRC32


class StreamFiles:
    """The stream files of one lake, as one log handle reads them (footers cached)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._footers: dict[str, _Footer | None] = {}
        self._paths: dict[str, Path] = {}

    def has(self, part: Part) -> bool:
        """Whether a stream file made from exactly this part's bytes is present."""
        return self._footer(part, stream_file_path(self.root, part)) is not None

    def take(self, part: Part, stream_id: str, positions: list[int]) -> pa.Table | None:
        """One stream's rows at ``positions`` (all in ``part``), or None without a file."""
        path = self._paths.get(part.name)
        if path is None:
            path = self._paths[part.name] = stream_file_path(self.root, part)
        footer = self._footer(part, path)
        if footer is None:
            return None
        # blocks are in key order: the first whose last key reaches the stream, onwards
        at = bisect.bisect_left(footer.lasts, stream_id)
        chosen = []
        while at < len(footer.firsts) and footer.firsts[at] <= stream_id:
            chosen.append(footer.blocks[at])
            at += 1
        tables = []
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            for offset, length, crc in chosen:
                data = os.pread(fd, length, offset)
                if len(data) != length or zlib.crc32(data) != crc:
                    raise IntegrityError(
                        f"stream file {path} is damaged (a block's CRC32 differs); it is "
                        "derived: delete it and run 'ledgerlake compact' to write it again"
                    )
                block = pa.ipc.open_stream(data, options=_READ).read_all()
                # rows are in key order: the stream is one slice (no compute kernel, no threads)
                keys = block.column("stream_id").to_pylist()
                lo = bisect.bisect_left(keys, stream_id)
                tables.append(block.slice(lo, bisect.bisect_right(keys, stream_id, lo) - lo))
        finally:
            os.close(fd)
        table = tables[0] if len(tables) == 1 else pa.concat_tables([empty_envelope(), *tables])
        got = table.column("position").to_pylist()  # the stream's rows, in position order
        lo = bisect.bisect_left(got, positions[0])  # after_version: only the later ones
        table = table.slice(lo, len(positions))
        if got[lo : lo + len(positions)] != positions:
            raise IntegrityError(
                f"stream file {path} does not hold the positions the stream index gives for "
                f"{stream_id!r}; it is derived: delete it and run 'ledgerlake compact'"
            )
        return table

    def _footer(self, part: Part, path: Path) -> _Footer | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            self._footers.pop(part.name, None)
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        cached = self._footers.get(part.name)
        if cached is not None and cached.stamp == stamp:
            return cached
        footer = _read_footer(path, part, stamp)
        self._footers[part.name] = footer
        return footer


def _read_footer(path: Path, part: Part, stamp: tuple[int, int]) -> _Footer | None:
    """The footer of a stream file, None when it was made from other bytes than ``part``."""
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC))
        size = stamp[0]
        if head != MAGIC or size < len(MAGIC) + TRAILER.size:
            raise IntegrityError(f"stream file {path} is not a stream file; delete it")
        fh.seek(size - TRAILER.size)
        length, crc, end = TRAILER.unpack(fh.read(TRAILER.size))
        if end != END or length > size:
            raise IntegrityError(f"stream file {path} is truncated or damaged; delete it")
        fh.seek(size - TRAILER.size - length)
        raw = fh.read(length)
    if zlib.crc32(raw) != crc:
        raise IntegrityError(f"stream file {path} has a damaged footer; delete it")
    doc = json.loads(raw)
    if (doc["part"], doc["first"], doc["last"], doc["sha256"]) != (
        part.name,
        part.first,
        part.last,
        part.sha256,
    ):
        return None  # made from another part of that name: not this part's copy
    blocks = doc["blocks"]
    return _Footer(
        stamp,
        [b[3] for b in blocks],
        [b[4] for b in blocks],
        [(b[0], b[1], b[2]) for b in blocks],
    )


def check_stream_file(root: Path, part: Part, table: pa.Table) -> list[str]:
    """Problems with a part's stream file, given the part's checked events (``verify``).

    No file, or one made from other bytes, is no problem (the part is read instead). A
    file that is this part's must pass every CRC and hold exactly the part's events.
    """
    path = stream_file_path(root, part)
    if not path.is_file():
        return []
    try:
        footer = _read_footer(path, part, (path.stat().st_size, 0))
        if footer is None:
            return []
        blocks = []
        with open(path, "rb") as fh:
            for offset, length, crc in footer.blocks:
                fh.seek(offset)
                data = fh.read(length)
                if zlib.crc32(data) != crc:
                    return [f"stream file {path} is damaged (a block's CRC32 differs); {_AGAIN}"]
                blocks.append(pa.ipc.open_stream(data, options=_READ).read_all())
    except (IntegrityError, OSError, ValueError, pa.ArrowException) as exc:
        return [f"stream file {path} cannot be read ({exc}); {_AGAIN}"]
    got = pa.concat_tables([empty_envelope(), *blocks])
    order = pc.sort_indices(table, [("stream_id", "ascending"), ("position", "ascending")])
    if not got.equals(table.cast(ENVELOPE_SCHEMA).take(order)):
        return [f"stream file {path} does not hold exactly its part's events; {_AGAIN}"]
    return []


_AGAIN = "it is derived: delete it and run 'ledgerlake compact' to write it again"
