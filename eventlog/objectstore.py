"""Part storage on an S3-compatible object store (S3, MinIO, R2, GCS's S3 API).

A lake made with ``ledgerlake init --parts s3://bucket/prefix`` keeps its parts under
``s3://bucket/prefix/events/date=YYYY-MM-DD/`` instead of ``<lake>/events/``. The catalog
in the tail still says which parts are live; this store never lists the bucket on the
read path (only ``verify`` and repair list, to find what the catalog lacks).

Publishing never overwrites: every object gets a name that cannot collide,
``<first:020d>-<last:020d>-<32 hex random>.parquet``, and becomes part of the log when
its catalog row commits, as on a local disk. A sealer that dies before that commit
leaves an object nobody reads (it is not in the catalog) and a marker under
``events/_inflight/``; since the next publish of the same positions gets another name,
commits do not look for markers (no listing per commit): the next writer that opens the
lake, or ``ledgerlake repair``, removes what the markers name.

The endpoint and region come from ``lake.toml`` (``parts_endpoint``, ``parts_region``)
or the usual AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``); credentials only from
the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``) or the AWS SDK's own chain, read when the lake is opened: never
written into the lake.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from eventlog.envelope import ENVELOPE_SCHEMA
from eventlog.errors import IntegrityError, StorageError
from eventlog.parts import (
    DATE_DIR,
    HASH_CHUNK,
    WRITE_OPTIONS,
    Part,
    StagedPart,
    _HashingFile,
    mismatched_part,
)
from eventlog.s3 import Connection, ObjectLocation, filesystem, storage_error
from eventlog.storage import PartStore

_BACKGROUND = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ledgerlake-marker")
OBJECT_PART = re.compile(r"^(\d{20})-(\d{20})-[0-9a-f]{32}\.parquet$")


class ObjectPartStore(PartStore):
    """The parts of one lake under ``s3://bucket/prefix/events/``."""

    local = False

    def __init__(self, location: ObjectLocation, conn: Connection) -> None:
        super().__init__(Path("/nonexistent-object-store"))  # no local path is ever used
        self.location = location
        self.conn = conn  # for clients beside pyarrow (Polars, LanceDB); never written anywhere
        self.fs = filesystem(conn)
        self.base = f"{location.base}/events"
        self.events_dir = PurePosixPath(self.base)  # type: ignore[assignment]
        self.inflight_dir = PurePosixPath(self.base, "_inflight")  # type: ignore[assignment]
        self._checked_names: set[str] = set()
        self._marker_put: Future[None] | None = None
        self._marker: PurePosixPath | None = None  # this transaction's one marker object
        self._marker_span = (0, 0)
        self._last: tuple[str, bytes] | None = None  # the part sha256_of just downloaded

    def describe(self) -> str:
        """Where the parts are, for messages."""
        return f"s3://{self.base}"

    def create(self) -> None:
        """Nothing to make (object stores have no directories)."""

    def check_bucket(self) -> None:
        """Refuse a bucket that does not exist or cannot be reached (exit 5)."""
        try:
            info = self.fs.get_file_info(self.location.bucket)
        except (OSError, pa.ArrowException) as exc:
            raise storage_error(f"open bucket {self.location.bucket}", exc) from None
        if info.type == pafs.FileType.NotFound:
            raise StorageError(
                f"bucket {self.location.bucket} does not exist at the endpoint; create it first"
            )

    def part(self, row: tuple[str, int, int, str, int, str]) -> Part:
        """The part a catalog row describes."""
        name, first, last, date, size, sha = row
        return Part(first, last, date, PurePosixPath(self.base, name), size, sha)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- publishing
    def commit_markers(self) -> list[Path]:
        """None: a dead writer's object never collides with a new name, so commits do not
        list the bucket; writers opening the lake and ``repair`` look instead."""
        return []

    def markers(self) -> list[Path]:
        """The in-flight markers present now (one listing)."""
        sel = pafs.FileSelector(str(self.inflight_dir), allow_not_found=True)
        try:
            infos = self.fs.get_file_info(sel)
        except (OSError, pa.ArrowException) as exc:
            raise storage_error("list the in-flight markers", exc) from None
        return [PurePosixPath(i.path) for i in infos if i.type == pafs.FileType.File]  # type: ignore[misc]

    def marker_spans(self) -> list[tuple[int, int]]:
        """The position spans the markers present now name."""
        spans = []
        for marker in self.markers():
            try:
                with self.fs.open_input_stream(str(marker)) as fh:
                    text = fh.read().decode().split()
            except FileNotFoundError:
                continue
            if len(text) == 2 and all(t.isdigit() for t in text):
                spans.append((int(text[0]), int(text[1])))
        return spans

    def mark_inflight(self, span: tuple[int, int]) -> None:
        """Leave a marker object naming the positions about to be published.

        The PUT runs in the background while the parts are encoded; ``stage`` waits for
        it before any part object is uploaded (the marker always exists first). Widening
        rewrites the one object: a PUT replaces it whole, never truncated first.
        """
        if self._marker is not None:
            lo, hi = self._marker_span
            if lo <= span[0] and span[1] <= hi:
                return
            span = (min(lo, span[0]), max(hi, span[1]))
            self._marker_written()  # one PUT at a time per marker
        else:
            self._marker = PurePosixPath(self.inflight_dir, f"{os.getpid()}-{uuid.uuid4().hex}")
        key, body = str(self._marker), f"{span[0]} {span[1]}\n".encode()
        self._marker_put = _BACKGROUND.submit(self._put, key, body)
        self._marker_span = span

    def _put(self, key: str, body: bytes) -> None:
        with self.fs.open_output_stream(key) as fh:
            fh.write(body)

    def _marker_written(self) -> None:
        """Wait for the marker's PUT (any number of threads may); a refused one is a
        StorageError."""
        put = self._marker_put
        if put is not None:
            try:
                put.result()
            except (OSError, pa.ArrowException) as exc:
                raise storage_error("write an in-flight marker", exc) from None

    def stage(self, date: str, table: pa.Table) -> StagedPart:
        """Upload a part under its final, unique name (invisible: not in the catalog)."""
        positions = table.column("position")
        first, last = positions[0].as_py(), positions[-1].as_py()
        if last - first + 1 != table.num_rows:
            raise IntegrityError(f"part {first}..{last} has {table.num_rows} rows; not dense")
        name = f"{first:020d}-{last:020d}-{uuid.uuid4().hex}.parquet"
        path = PurePosixPath(self.base, f"date={date}", name)
        buffer = pa.BufferOutputStream()  # encoded while the marker's PUT is in flight
        sink = _HashingFile(buffer)
        pq.write_table(table.cast(ENVELOPE_SCHEMA), sink, **WRITE_OPTIONS)
        self._marker_written()
        try:
            self._put(str(path), buffer.getvalue().to_pybytes())
        except (OSError, pa.ArrowException) as exc:
            raise storage_error(f"publish part {first}..{last}", exc) from None
        part = Part(first, last, date, path, sink.size, sink.digest.hexdigest())  # type: ignore[arg-type]
        return StagedPart(path, part)  # type: ignore[arg-type]

    def publish_staged(self, staged: StagedPart) -> Part:
        """The object is in place already: publishing is the catalog commit that follows."""
        self.published = True
        return staged.part

    def discard(self, staged: StagedPart) -> None:
        """Delete an uploaded part that will not be published."""
        self._delete([str(staged.tmp)])

    def finish(self, stale: list[Path], committed: bool) -> None:
        """After the transaction: drop this transaction's marker (see ``PartStore.finish``)."""
        # a marker never written: nothing to remove, and nothing was uploaded after it
        with contextlib.suppress(StorageError):
            self._marker_written()
        self._marker_put = None
        if committed:
            self._delete([str(m) for m in stale])
        if self._marker is not None and (committed or not self.published):
            # a marker left behind only makes the next writer look: harmless
            with contextlib.suppress(StorageError):
                self._delete([str(self._marker)])
        self._marker = None

    def remove_markers(self, markers: list[Path]) -> None:
        """Delete markers (after repair)."""
        self._delete([str(m) for m in markers])

    # ---------------------------------------------------------------- listing, removing
    def list_files(self) -> list[Part]:
        """Every object named like a part (repair and ``verify`` only: one listing)."""
        sel = pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(sel)
        except (OSError, pa.ArrowException) as exc:
            raise storage_error(f"list {self.describe()}", exc) from None
        parts = []
        for info in infos:
            path = PurePosixPath(info.path)
            m, d = OBJECT_PART.match(path.name), DATE_DIR.match(path.parent.name)
            if info.type == pafs.FileType.File and m and d and str(path.parent.parent) == self.base:
                parts.append(Part(int(m.group(1)), int(m.group(2)), d.group(1), path))  # type: ignore[arg-type]
        return sorted(parts)

    def temp_files(self) -> list[Path]:
        """None: an object appears whole or not at all."""
        return []

    def remove(self, paths: list[Path]) -> None:
        """Delete objects (repair only)."""
        self._delete([str(p) for p in paths])
        self._footers.clear()

    def remove_names(self, names: list[str]) -> None:
        """Delete parts by their catalog names (repair only)."""
        self.remove([PurePosixPath(self.base, n) for n in names])  # type: ignore[misc]

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.fs.delete_file(key)
            except FileNotFoundError:
                pass
            except (OSError, pa.ArrowException) as exc:
                raise storage_error(f"delete {key}", exc) from None

    def size_of(self, part: Part) -> int | None:
        """The size of a part's object, None when it is missing."""
        try:
            info = self.fs.get_file_info(str(part.path))
        except (OSError, pa.ArrowException) as exc:
            raise storage_error(f"look up {part.name}", exc) from None
        return None if info.type == pafs.FileType.NotFound else int(info.size)

    def sha256_of(self, part: Part) -> str:
        """The SHA-256 of a part's object (downloaded; kept for the next download of it)."""
        data = self._fetch(part)
        self._last = (str(part.path), data)
        return hashlib.sha256(data).hexdigest()

    def age_s(self, part: Part) -> float:
        """Seconds since the object was written."""
        import time

        info = self.fs.get_file_info(str(part.path))
        return time.time() - info.mtime.timestamp() if info.mtime else 0.0

    # ---------------------------------------------------------------- reading
    def _download(self, part: Part) -> bytes:
        last, self._last = self._last, None
        if last is not None and last[0] == str(part.path):
            return last[1]  # verify hashes a part, then decodes it: one download
        return self._fetch(part)

    def _fetch(self, part: Part) -> bytes:
        try:
            with self.fs.open_input_stream(str(part.path)) as fh:
                chunks = []
                while chunk := fh.read(HASH_CHUNK * 8):
                    chunks.append(chunk)
                return b"".join(chunks)
        except FileNotFoundError:
            raise IntegrityError(
                f"part {part.name} (positions {part.first}..{part.last}) is in the catalog but "
                f"its object is missing from {self.describe()}; restore it from a backup"
            ) from None
        except (OSError, pa.ArrowException) as exc:
            raise storage_error(f"read part {part.name}", exc) from None

    def _checked_bytes(self, part: Part) -> bytes:
        """A live part's bytes, checked against the catalog (size and SHA-256)."""
        data = self._download(part)
        if part.name not in self._checked_names:
            if len(data) != part.size or hashlib.sha256(data).hexdigest() != part.sha256:
                raise mismatched_part(part, "object")
            self._checked_names.add(part.name)  # objects are never overwritten: once is enough
        return data

    def check(self, part: Part) -> Path:
        """A live part's path once its bytes match the catalog (downloaded once per handle)."""
        if part.name not in self._checked_names:
            self._checked_bytes(part)
        return part.path

    def read_whole(self, part: Part, columns: list[str] | None = None) -> pa.Table:
        """A whole part with the envelope schema (no catalog check)."""
        return _decode(part, pq.ParquetFile(pa.BufferReader(self._download(part))), columns)

    def read_checked(self, part: Part, columns: list[str] | None = None) -> pa.Table:
        """A whole live part once its bytes match the catalog (one download)."""
        pf = self._open_checked(part)
        return _decode(part, pf, columns)

    def _open_checked(self, part: Part) -> pq.ParquetFile:
        data = self._checked_bytes(part)
        return pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)

    def _open_random(self, part: Part, meta: pq.FileMetaData | None = None) -> pq.ParquetFile:
        try:
            source = self.fs.open_input_file(str(part.path))
            return pq.ParquetFile(source, metadata=meta, page_checksum_verification=True)
        except FileNotFoundError:
            raise IntegrityError(f"part {part.name} is missing from {self.describe()}") from None
        except (OSError, pa.ArrowException) as exc:
            raise storage_error(f"read part {part.name}", exc) from None


def _decode(part: Part, pf: pq.ParquetFile, columns: list[str] | None) -> pa.Table:
    try:
        return pf.read(columns=columns).cast(
            pa.schema([ENVELOPE_SCHEMA.field(c) for c in (columns or ENVELOPE_SCHEMA.names)])
        )
    except (OSError, pa.ArrowException) as exc:
        raise IntegrityError(f"part {part.name} cannot be read: {exc}") from None
