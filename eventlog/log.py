"""EventLog: the append-only log of one lake, over a SQLite tail and Parquet parts."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventlog import catalog
from eventlog.bulk import (
    check_metadata,
    check_payloads,
    check_stream_ids,
    json_string_array,
    number_versions,
    uuid4_array,
)
from eventlog.codec import EventRegistry, check_depth, dumps
from eventlog.envelope import (
    ANY,
    COLUMNS,
    ENVELOPE_SCHEMA,
    NO_STREAM,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    from_micros,
    records_from_batch,
    to_micros,
    utc,
    validate_expected_version,
    validate_stream_id,
)
from eventlog.errors import (
    ConcurrencyError,
    DuplicateEventError,
    IntegrityError,
    InvalidInputError,
    LakeNotFoundError,
    StorageError,
)
from eventlog.parts import (
    Part,
    file_sha256,
    fsync_dir,
    list_parts,
    publish_part,
    read_part,
    stage_part,
    temp_files,
    write_part,
)
from eventlog.tail import (
    BUMP_STREAM,
    INSERT_COMMAND,
    INSERT_TAIL,
    SELECT_TAIL_AT,
    UPSERT_STREAM,
    Tail,
    event_hash,
)

Clock = Callable[[], datetime]
STATE_CACHE = 10_000  # write-model states a log handle keeps in memory
_READERS = max(2, os.cpu_count() or 1)  # threads that read parts at scattered positions


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    """A random (version 4) UUID as text; what ``str(uuid.uuid4())`` gives, in half the time."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# the first hex digit of a version-4 UUID's fourth group carries the variant bits 10xx
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """Events for one stream, with the version the writer expects it to be at.

    ``state`` (a JSON object) is the write-model state after these events; the log
    stores it beside the stream head so the next command needs no replay.
    """

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: ExpectedVersion = ANY
    stream_type: str = "order"
    command_id: str | None = None
    state: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where one request's events landed; ``duplicate`` when it was an idempotent repeat."""

    stream_id: str
    first_position: int
    last_position: int
    first_version: int
    last_version: int
    recorded_at: datetime | None
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream_id": self.stream_id,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` found: ``ok`` when the log keeps every invariant."""

    ok: bool
    head: int
    sealed_head: int
    events: int
    parts: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "head": self.head,
            "sealed_head": self.sealed_head,
            "events": self.events,
            "parts": self.parts,
            "problems": self.problems,
            "warnings": self.warnings,
        }


@dataclass(frozen=True, slots=True)
class LakeInfo:
    """Size and shape of a lake."""

    head: int
    sealed_head: int
    tail_events: int
    parts: int
    partitions: list[str]
    part_bytes: int
    tail_bytes: int
    streams: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "head": self.head,
            "sealed_head": self.sealed_head,
            "tail_events": self.tail_events,
            "parts": self.parts,
            "partitions": self.partitions,
            "part_bytes": self.part_bytes,
            "tail_bytes": self.tail_bytes,
            "streams": self.streams,
        }


@dataclass(slots=True)
class _Row:
    stream_type: str
    stream_id: str
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: int
    payload: str
    metadata: str
    client_id: bool
    command_id: str | None
    decoded: tuple[dict[str, Any], dict[str, Any]]  # payload and metadata, as dicts


def tail_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Tail rows (as SQLite returns them) as an envelope table."""
    return _tail_table(rows)


def _tail_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = []
    for name, values in zip(COLUMNS, cols, strict=True):
        typ = ENVELOPE_SCHEMA.field(name).type
        if name in ("occurred_at", "recorded_at"):
            arrays.append(pa.array(values, pa.int64()).cast(typ))
        elif pa.types.is_dictionary(typ):
            arrays.append(pa.array(values, pa.string()).dictionary_encode().cast(typ))
        else:
            arrays.append(pa.array(values, typ))
    return pa.Table.from_arrays(arrays, schema=ENVELOPE_SCHEMA)


_SCALARS = (str, int, float, bool, type(None))
_Decoded = tuple[dict[str, Any] | None, dict[str, Any] | None]


def _as_stored(value: dict[str, Any]) -> dict[str, Any] | None:
    """What ``json.loads(dumps(value))`` gives, cheaply: a key-sorted copy of a flat object.

    None when a value nests (the stored text is decoded instead).
    """
    if not all(isinstance(v, _SCALARS) for v in value.values()):
        return None
    return {k: value[k] for k in sorted(value)}


def _record_from_row(row: tuple[Any, ...], decoded: _Decoded = (None, None)) -> RecordedEvent:
    # copies of the cached dicts: a caller may change what it is given
    payload = dict(decoded[0]) if decoded[0] is not None else json.loads(row[9])
    metadata = dict(decoded[1]) if decoded[1] is not None else json.loads(row[10])
    return RecordedEvent(
        position=row[0],
        stream_type=row[1],
        stream_id=row[2],
        version=row[3],
        event_id=row[4],
        event_type=row[5],
        schema_version=row[6],
        occurred_at=from_micros(row[7]),
        recorded_at=from_micros(row[8]),
        payload=payload,
        metadata=metadata,
    )


def _max_per_stream(rows: pa.Table) -> pa.Table:
    """(stream_id, version): the highest version of each stream among ``rows``."""
    grouped = rows.group_by(["stream_id"], use_threads=False).aggregate([("version", "max")])
    return grouped.rename_columns(["stream_id", "version"])


def _open_part(path: Path, meta: pq.FileMetaData | None = None) -> pq.ParquetFile:
    """A part file for reading, its pages' checksums verified; damage is an IntegrityError."""
    try:
        return pq.ParquetFile(path, metadata=meta, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            raise IntegrityError(f"part file {path} is missing") from None
        raise IntegrityError(f"part {path} cannot be read: {exc}") from None


def _date_of(micros: int) -> str:
    return from_micros(micros).date().isoformat()


class EventLog:
    """The append-only event log of a lake: ``<lake>/tail.sqlite`` plus ``<lake>/events/``."""

    def __init__(
        self,
        root: Path,
        *,
        registry: EventRegistry | None = None,
        clock: Clock = _now,
        id_factory: Callable[[], str] = _new_id,
        seal_max_events: int = 10_000,
        seal_max_age: timedelta = timedelta(minutes=5),
        bulk_threshold: int = 5_000,
        seal_on_close: bool = True,
        bulk_heads_lag: int = 2_000_000,
        bulk_part_rows: int = 50_000,
        read_only: bool = False,
        replaced_grace: timedelta = timedelta(minutes=10),
        check: bool = True,
    ) -> None:
        if registry is None:
            from eventlog.orders.events import order_registry

            registry = order_registry()
        self.root = root
        self.events_dir = root / "events"
        self.registry = registry
        self.clock = clock
        self.id_factory = id_factory
        self.seal_max_events = seal_max_events
        self.seal_max_age = seal_max_age
        self._seal_age_us = seal_max_age // timedelta(microseconds=1)
        self.bulk_threshold = bulk_threshold
        self.seal_on_close = seal_on_close
        self.bulk_heads_lag = bulk_heads_lag
        if bulk_part_rows < 1:
            raise InvalidInputError(f"bulk_part_rows must be at least 1, got {bulk_part_rows}")
        self.bulk_part_rows = bulk_part_rows
        self._footers: dict[Path, pq.FileMetaData] = {}
        self.inflight_dir = self.events_dir / "_inflight"
        self._marker: Path | None = None
        self._marker_span = (0, 0)
        self._published = False
        # the last committed tail rows with their decoded (payload, metadata): read back free
        self._recent: dict[int, tuple[tuple[Any, ...], _Decoded]] = {}
        self._oldest_tail: tuple[int, int] = (-1, 0)
        # stream id -> (decider, version, state): handle() skips decoding a state it decided
        self._states: dict[str, tuple[object, int, Any]] = {}  # (sealed_head, recorded_at after it)
        # (heads_head, upto, per-stream version maxima of (heads_head, upto]): _stale_heads
        self._stale: tuple[int, int, pa.Table] | None = None
        self.read_only = read_only
        self.replaced_grace = replaced_grace
        # parts whose bytes this handle checked against the catalog: (size, mtime) when checked
        self._checked: dict[str, tuple[int, int]] = {}
        tail_path = root / "tail.sqlite"
        if check and not tail_path.exists() and list_parts(self.events_dir):
            raise IntegrityError(
                f"{tail_path} is missing but {self.events_dir} holds part files; the tail may "
                "have held acknowledged events: restore it from a backup, or run "
                "'ledgerlake repair' to rebuild it from the parts"
            )
        if not read_only:
            try:
                self.events_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {self.events_dir}: {exc}") from None
        self.tail = Tail(tail_path, read_only=read_only)
        try:
            if check:
                self._check_catalog()
            if not read_only:
                self._repair()
        except BaseException:
            self.tail.close()
            raise

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, root: str | Path, *, create: bool = True, **options: Any) -> EventLog:
        """Open a lake's log, creating the lake when ``create`` is true.

        ``read_only=True`` opens it for reading alone: nothing on disk changes, no
        repair runs (commands that only read use this).
        """
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"the lake path {path} is a file; a lake is a directory")
        if not create or options.get("read_only"):
            if not (path / "tail.sqlite").exists() and not (path / "events").exists():
                raise LakeNotFoundError(
                    f"no lake at {path}; create one with 'ledgerlake generate' or "
                    "'ledgerlake append'"
                )
        else:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the lake directory {path}: {exc}") from None
        return cls(path, **options)

    @classmethod
    def open_read_only(cls, root: str | Path, **options: Any) -> EventLog:
        """Open an existing lake's log for reading alone (the one way readers open it)."""
        return cls.open(root, create=False, read_only=True, seal_on_close=False, **options)

    def _check_catalog(self) -> None:
        """Refuse a tail that does not match its parts, rather than take it for a fresh one."""
        meta = self.tail.metas()
        live = catalog.live_parts(self.tail.conn, self.events_dir) if self.tail.has_catalog else []
        if meta["sealed_head"] > 0 and not live:
            raise IntegrityError(
                f"the lake's catalog lists no parts but its sealed head is {meta['sealed_head']}: "
                "a lake made before the part catalog existed (or a damaged tail); run "
                "'ledgerlake repair' once to adopt its parts after checking their content"
            )
        if meta["head"] == 0 and list_parts(self.events_dir):
            raise IntegrityError(
                f"the tail of {self.root} is empty but events/ holds part files; the tail may "
                "have been lost or replaced: restore it from a backup, or run "
                "'ledgerlake repair' to rebuild it from the parts"
            )

    def close(self) -> None:
        """Seal the tail (when configured to) and close the SQLite connection."""
        try:
            if self.seal_on_close:
                self.seal()
        finally:
            self.tail.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commit protocol
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The writer lock (one SQLite write transaction), repairing a dead writer's leftovers.

        A writer that publishes parts first leaves a marker in ``events/_inflight/`` naming
        the positions it publishes, and removes it after its SQLite commit. A marker seen
        while holding the lock belongs to a writer that no longer holds it: it committed
        (harmless) or died between publishing and committing, and then the files it left
        uncommitted are removed before anyone assigns the positions they hold.
        """
        self._published = False
        stale: list[Path] = []
        try:
            with self.tail.write() as conn:
                stale = self._markers()
                if stale:
                    self._repair_locked(conn)
                yield conn
        except BaseException:
            # Rolled back before any part was published: the marker has nothing to guard.
            # After a publish it stays, and the next writer removes the uncommitted files.
            if not self._published and self._marker is not None:
                self._marker.unlink(missing_ok=True)
            self._marker = None
            raise
        for marker in stale:
            marker.unlink(missing_ok=True)
        if self._marker is not None:
            self._marker.unlink(missing_ok=True)
            self._marker = None

    def _markers(self) -> list[Path]:
        try:
            names = os.listdir(self.inflight_dir)  # noqa: PTH208 (every commit looks: cheap)
        except FileNotFoundError:
            return []
        return [self.inflight_dir / name for name in names]

    def _mark_inflight(self, span: tuple[int, int]) -> None:
        """Leave an in-flight marker naming the positions about to be published (durably).

        It is removed after the commit; one transaction's marker grows to cover every span
        it publishes. A marker found by a writer holding the lock belongs to a writer that
        died: the files it published in that span and never committed to the catalog are
        its leftovers (their events are still in the tail, or belonged to an append that was
        never acknowledged), and repair removes them.
        """
        if self._marker is not None:
            lo, hi = self._marker_span
            if lo <= span[0] and span[1] <= hi:
                return
            span = (min(lo, span[0]), max(hi, span[1]))
        else:
            self.inflight_dir.mkdir(parents=True, exist_ok=True)
            self._marker = self.inflight_dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        with open(self._marker, "w") as fh:
            fh.write(f"{span[0]} {span[1]}\n")
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(self.inflight_dir)
        self._marker_span = span

    def _publish(self, date: str, table: pa.Table) -> Part:
        """Publish a part inside a write transaction, leaving an in-flight marker first.

        The caller records it in the catalog in the same transaction.
        """
        positions = table.column("position")
        self._mark_inflight((positions[0].as_py(), positions[-1].as_py()))
        part = write_part(self.events_dir, date, table)
        self._published = True
        return part

    def _repair(self) -> None:
        """Clean what a dead writer left (see docs/format.md); only writers call this."""
        cutoff = to_micros(self.clock()) - self.replaced_grace // timedelta(microseconds=1)
        stale_replaced = any(at <= cutoff for _, at in catalog.replaced_parts(self.tail.conn))
        if not (self._markers() or temp_files(self.events_dir) or stale_replaced):
            return
        with self._write() as conn:
            self._repair_locked(conn)

    def _repair_locked(self, conn: sqlite3.Connection) -> list[str]:
        """Repair under the writer lock; returns what it removed (and why).

        Removes temp files (no writer of this lake is mid-write while we hold the lock),
        the files a dead writer published in its marked span but never committed, and
        the files of parts compaction replaced more than ``replaced_grace`` ago. Never a
        catalogued live part, never a file because of its name.
        """
        from eventlog.maintenance import repair_locked

        self._footers.clear()
        return repair_locked(self, conn)

    # ------------------------------------------------------------------ heads
    def head(self) -> int:
        """The last committed position (0 for an empty log)."""
        return self.tail.meta("head")

    def sealed_head(self) -> int:
        """The last position that lives in a Parquet part."""
        return self.tail.meta("sealed_head")

    def stream_version(self, stream_id: str) -> int:
        """The current version of a stream (0 when it does not exist)."""
        if not self.read_only:
            self._ensure_heads()
        return self._version_with_lag(
            stream_id, self.tail.stream_versions([stream_id]).get(stream_id, 0)
        )

    def _version_with_lag(self, stream_id: str, stored: int) -> int:
        """A stored head raised to what bulk appends added since (readers do not write it)."""
        meta = self.tail.metas()
        if meta["heads_head"] >= meta["head"]:
            return stored
        stale = self._stale_heads(meta["heads_head"], meta["head"])
        mine = stale.filter(pc.equal(stale.column("stream_id"), stream_id))
        return int(max([stored, *mine.column("version").to_pylist()]))

    def stream_state(self, stream_id: str) -> tuple[int, dict[str, Any] | None, int]:
        """(version, stored write-model state or None, version that state reflects)."""
        version, state, state_version = self.stream_state_text(stream_id)
        return version, (json.loads(state) if state else None), state_version

    def stream_state_text(self, stream_id: str) -> tuple[int, str | None, int]:
        """``stream_state`` with the state as its stored JSON text (not decoded)."""
        head, heads_head, row = self.tail.stream_row_and_heads(stream_id)
        if heads_head < head and self.read_only:
            version = self._version_with_lag(stream_id, row[0] if row else 0)
            if version == 0:
                return 0, None, 0
            return (version, row[1], row[2]) if row else (version, None, 0)
        if heads_head < head:  # bulk appends left the heads behind: fold them in first
            self._ensure_heads()
            row = self.tail.stream_row(stream_id)
        if row is None:
            return 0, None, 0
        return row

    def cached_state(self, key: object, stream_id: str, version: int) -> Any | None:
        """A write-model state this handle stored for ``stream_id`` at ``version``, if any."""
        known = self.known_state(key, stream_id)
        return known[1] if known is not None and known[0] == version else None

    def known_state(self, key: object, stream_id: str) -> tuple[int, Any] | None:
        """(version, state) this handle last stored for a stream, whatever the tail says now."""
        hit = self._states.get(stream_id)
        return (hit[1], hit[2]) if hit is not None and hit[0] is key else None

    def forget_state(self, stream_id: str) -> None:
        """Drop a kept state (another writer moved the stream past it)."""
        self._states.pop(stream_id, None)

    def cache_state(self, key: object, stream_id: str, version: int, state: Any) -> None:
        """Keep a decided state (at most ``STATE_CACHE`` streams, the oldest go first)."""
        self._states.pop(stream_id, None)
        self._states[stream_id] = (key, version, state)
        if len(self._states) > STATE_CACHE:
            del self._states[next(iter(self._states))]

    # ------------------------------------------------------------------ append
    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion = ANY,
        stream_type: str = "order",
        command_id: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> AppendResult:
        """Append events to one stream if it is at ``expected_version``; durable on return."""
        req = AppendRequest(stream_id, events, expected_version, stream_type, command_id, state)
        return self.append_many([req])[0]

    def append_many(
        self, requests: Sequence[AppendRequest], *, remember: bool = True
    ) -> list[AppendResult]:
        """Append to several streams in one atomic commit: all requests or none.

        ``remember`` keeps the (at most 1,000) new events in memory, decoded, so that
        ``events_at`` right after costs nothing (``handle`` reads them back).
        """
        prepared = [self._prepare(req) for req in requests]
        total = sum(len(rows) for rows in prepared)
        if total == 0:
            raise InvalidInputError("nothing to append: every request has an empty event list")
        with self._write() as conn:
            results: list[AppendResult | None] = [None] * len(requests)
            streams = [r.stream_id for r in requests]
            meta, versions = self.tail.metas_and_versions(streams)
            head = meta["head"]
            own_ids = any(row.client_id for rows in prepared for row in rows)
            if own_ids:
                self._catch_up_index()
                meta = self.tail.metas()
            if meta["heads_head"] < meta["head"]:
                self._catch_up_heads(meta)
                versions = self.tail.stream_versions(streams)
            stored_versions = dict(versions)
            seen_ids: set[str] = set()
            seen_commands: set[str] = set()
            todo: list[int] = []
            for i, (req, rows) in enumerate(zip(requests, prepared, strict=True)):
                done = self._already_done(req, rows)
                if done is not None:
                    results[i] = done
                    continue
                cid = self._command_id(req, rows)
                if cid is not None:
                    if cid in seen_commands:
                        raise DuplicateEventError(f"command id {cid!r} appears twice in one append")
                    seen_commands.add(cid)
                for row in rows:
                    if row.event_id in seen_ids:
                        raise DuplicateEventError(f"event id {row.event_id} appears twice")
                    seen_ids.add(row.event_id)
                    if row.client_id:
                        pos = self.tail.position_of_event(row.event_id)
                        if pos is not None:
                            raise DuplicateEventError(
                                f"event id {row.event_id} is already in the log at position {pos}"
                            )
                current = versions.get(req.stream_id, 0)
                self._check_version(req, current)
                versions[req.stream_id] = current + len(rows)
                todo.append(i)
            if not todo:
                return [r for r in results if r is not None]
            now = to_micros(self.clock())
            recorded = max(now, meta["last_recorded_at"])
            new_rows: list[tuple[Any, ...]] = []
            new_decoded: list[tuple[dict[str, Any], dict[str, Any]]] = []
            versions = stored_versions
            position = head
            for i in todo:
                req, rows = requests[i], prepared[i]
                first_pos, first_ver = position + 1, versions.get(req.stream_id, 0) + 1
                for row in rows:
                    position += 1
                    versions[req.stream_id] = versions.get(req.stream_id, 0) + 1
                    new_rows.append(
                        (
                            position,
                            req.stream_type,
                            req.stream_id,
                            versions[req.stream_id],
                            row.event_id,
                            row.event_type,
                            row.schema_version,
                            row.occurred_at,
                            recorded,
                            row.payload,
                            row.metadata,
                        )
                    )
                    new_decoded.append(row.decoded)
                results[i] = AppendResult(
                    req.stream_id,
                    first_pos,
                    position,
                    first_ver,
                    versions[req.stream_id],
                    from_micros(recorded),
                )
            updates = {"head": position, "heads_head": position, "last_recorded_at": recorded}
            if total >= self.bulk_threshold:
                self._seal_locked(conn)
                self._write_bulk(conn, new_rows)
            else:
                if len(new_rows) == 1:
                    conn.execute(INSERT_TAIL, new_rows[0])
                else:
                    conn.executemany(INSERT_TAIL, new_rows)
                # Event ids the log generated need no index entry now: only an append that
                # brings its own ids asks the index, and it catches the index up first.
                # Skipping it keeps a random B-tree page out of every command's commit.
                if meta["index_head"] == head:
                    self.tail.insert_index(
                        [(r[2], r[3], r[0]) for r in new_rows],
                        [(event_hash(r[4]), r[0]) for r in new_rows] if own_ids else [],
                    )
                    updates["index_head"] = position
                    if own_ids:
                        updates["ids_head"] = position
            # one head per stream: its last version, and the last state given with it
            heads: dict[str, list[Any]] = {}
            for i in todo:
                req, res = requests[i], results[i]
                assert res is not None
                head_row = heads.setdefault(req.stream_id, [req.stream_type, 0, None, 0])
                head_row[1] = res.last_version
                if req.state is not None:
                    head_row[2], head_row[3] = req.state, res.last_version
            for sid, (stype, version, state, state_version) in heads.items():
                state_json = dumps(state) if state is not None else None
                conn.execute(UPSERT_STREAM, (sid, stype, version, state_json, state_version))
            for i in todo:
                req, res = requests[i], results[i]
                assert res is not None
                cid = self._command_id(req, prepared[i])
                if cid:
                    conn.execute(
                        INSERT_COMMAND, (cid, req.stream_id, res.first_position, res.last_position)
                    )
            self.tail.set_metas(updates)
            must_seal = self._must_seal(position - meta["sealed_head"], meta["sealed_head"], now)
        # committed rows are immutable: keep the last ones so handle() reads them back free
        self._recent = (
            {
                row[0]: (row, (_as_stored(payload), _as_stored(metadata)))
                for row, (payload, metadata) in zip(new_rows, new_decoded, strict=True)
            }
            if remember and len(new_rows) <= 1000
            else {}
        )
        if must_seal:
            self.seal()
        return [r for r in results if r is not None]

    def append_batch(
        self,
        table: pa.Table,
        *,
        expected_versions: dict[str, ExpectedVersion] | None = None,
        command_id: str | None = None,
    ) -> AppendResult:
        """Bulk append: an Arrow table of events, validated column-wise, becomes parts.

        Columns: ``stream_id``, ``event_type``, ``payload`` (JSON text) and optionally
        ``stream_type`` (default ``order``), ``occurred_at`` (UTC timestamp, default now),
        ``metadata`` (JSON text) and ``event_id``. Row order is commit order. The tail is
        sealed first, then the batch is written straight to parts of at most
        ``bulk_part_rows`` events under the writer lock; it lands whole or not at all.
        """
        table, codes, uniques = self._prepare_batch(table)
        n = table.num_rows
        # Payloads are parsed against their schemas on a second thread from the start
        # (pyarrow releases the GIL); the part is only published once they all fit.
        parts = -(-n // self.bulk_part_rows)
        with ThreadPoolExecutor(max_workers=2 + min(parts, os.cpu_count() or 1)) as pool:
            checking = pool.submit(self._check_batch_payloads, table)
            new_ids = None if "event_id" in table.column_names else pool.submit(uuid4_array, n)
            result = self._append_batch_locked(
                pool, checking, new_ids, table, codes, uniques, expected_versions, command_id
            )
        return result

    def _append_batch_locked(
        self,
        pool: ThreadPoolExecutor,
        checking: Future[None],
        new_ids: Future[pa.Array] | None,
        table: pa.Table,
        codes: np.ndarray,
        uniques: pa.Array,
        expected_versions: dict[str, ExpectedVersion] | None,
        command_id: str | None,
    ) -> AppendResult:
        n = table.num_rows
        with self._write() as conn:
            if command_id and (hit := self.tail.command(command_id)) is not None:
                return self._result_for(hit[0], hit[1], hit[2])
            if new_ids is None:
                self._catch_up_index()
                ids = table.column("event_id").to_pylist()
                if len(set(ids)) != len(ids):
                    raise DuplicateEventError("the batch holds the same event id twice")
                for eid in ids:
                    if (pos := self.tail.position_of_event(eid)) is not None:
                        raise DuplicateEventError(f"event id {eid} is already in the log at {pos}")
            base = self._bulk_base(uniques)
            for sid, expected in (expected_versions or {}).items():
                validate_expected_version(expected)
                at = pc.index(uniques, sid).as_py()
                current = base[at] if at >= 0 else self._bulk_base(pa.array([sid]))[0]
                self._check_version(AppendRequest(sid, [], expected), int(current))
            versions = number_versions(codes, base)
            event_ids = table.column("event_id") if new_ids is None else new_ids.result()
            head = self.tail.meta("head")
            recorded = max(to_micros(self.clock()), self.tail.meta("last_recorded_at"))
            meta_col = (
                table.column("metadata")
                if "metadata" in table.column_names
                else pa.repeat(pa.scalar("{}"), n)
            )
            if command_id:
                meta_col = pa.array(
                    [
                        dumps({**json.loads(m), "command_id": command_id})
                        for m in meta_col.to_pylist()
                    ],
                    pa.string(),
                )
            etypes = table.column("event_type").cast(pa.string())
            type_names = pc.unique(etypes).to_pylist()
            per_type = np.array(
                [self.registry.spec(t).schema_version for t in type_names], dtype=np.int16
            )
            type_codes = pc.index_in(etypes, pa.array(type_names, pa.string()))
            schema_versions = pa.array(per_type[type_codes.to_numpy(zero_copy_only=False)])
            out = pa.Table.from_arrays(
                [
                    pa.array(np.arange(head + 1, head + n + 1, dtype=np.int64)),
                    table.column("stream_type").cast(pa.string()).dictionary_encode(),
                    table.column("stream_id"),
                    pa.array(versions),
                    event_ids,
                    table.column("event_type").cast(pa.string()).dictionary_encode(),
                    schema_versions,
                    table.column("occurred_at"),
                    pa.array(np.full(n, recorded, dtype=np.int64)).cast(pa.timestamp("us", "UTC")),
                    table.column("payload"),
                    meta_col,
                ],
                names=list(COLUMNS),
            )
            self._seal_locked(conn)
            # Several things overlap here (pyarrow releases the GIL): encoding and fsyncing
            # the parts under temp names, a part of at most ``bulk_part_rows`` rows per
            # thread, and parsing every payload against its schema. Only when the payloads
            # are valid are the parts published, in order; a bad payload leaves nothing but
            # temp files that are deleted at once (or by the next writer's repair after a
            # crash). The in-flight marker names the batch's positions, so that a crash
            # between two publishes is undone rather than adopted: a batch lands whole or
            # not at all. Stream heads are not written per stream here: they lag behind
            # (``heads_head``) until the next writer or reader that needs them catches up.
            self._mark_inflight((head + 1, head + n))
            date = _date_of(recorded)
            size = -(-n // -(-n // self.bulk_part_rows))  # even parts, none over the limit
            stagings = [
                pool.submit(stage_part, self.events_dir, date, out.slice(lo, size))
                for lo in range(0, n, size)
            ]
            heads = base + np.bincount(codes, minlength=len(uniques))
            merging = pool.submit(self._stale_after, head, head + n, uniques, heads)
            try:
                checking.result()
                staged = [staging.result() for staging in stagings]
            except BaseException:
                for staging in stagings:
                    with contextlib.suppress(Exception):
                        staging.result().tmp.unlink(missing_ok=True)
                raise
            self._published = True
            for part in staged:
                catalog.add_part(conn, publish_part(part))
            self.tail.set_metas(
                {"sealed_head": head + n, "head": head + n, "last_recorded_at": recorded}
            )
            if command_id:
                conn.execute(
                    "INSERT INTO commands VALUES (?, ?, ?, ?)",
                    (command_id, uniques[0].as_py(), head + 1, head + n),
                )
        self._stale = merging.result()
        return AppendResult(
            uniques[0].as_py() if len(uniques) == 1 else "*",
            head + 1,
            head + n,
            int(versions.min()),
            int(versions.max()),
            from_micros(recorded),
        )

    def _check_batch_payloads(self, table: pa.Table) -> None:
        """Parse every payload of a bulk table against its event type's schema."""
        etype = table.column("event_type").cast(pa.string())
        kinds = pc.unique(etype).to_pylist()
        for e in kinds:
            payloads = table.column("payload")
            if len(kinds) > 1:
                payloads = payloads.filter(pc.equal(etype, e))
            check_payloads(self.registry, self.registry.spec(e), payloads)

    def _prepare_batch(self, table: pa.Table) -> tuple[pa.Table, np.ndarray, pa.Array]:
        """Validate a bulk table column-wise; returns it normalized, with stream codes."""
        if not isinstance(table, pa.Table):
            raise InvalidInputError(f"expected a pyarrow Table, got {type(table).__name__}")
        missing = [c for c in ("stream_id", "event_type", "payload") if c not in table.column_names]
        if missing:
            raise InvalidInputError(f"bulk table lacks columns {', '.join(missing)}")
        if table.num_rows == 0:
            raise InvalidInputError("nothing to append: the table is empty")
        table = table.combine_chunks()
        n = table.num_rows
        sid = table.column("stream_id").cast(pa.string())
        if sid.null_count:
            raise InvalidInputError("stream_id has null values")
        encoded = sid.dictionary_encode().combine_chunks()
        check_stream_ids(encoded.dictionary)
        given_types = "stream_type" in table.column_names
        if not given_types:
            table = table.append_column("stream_type", pa.repeat(pa.scalar("order"), n))
        if "occurred_at" not in table.column_names:
            now = pa.scalar(to_micros(self.clock()), pa.int64()).cast(pa.timestamp("us", "UTC"))
            table = table.append_column("occurred_at", pa.repeat(now, n))
        occ = table.column("occurred_at")
        if not pa.types.is_timestamp(occ.type) or occ.type.tz is None:
            raise InvalidInputError(
                f"occurred_at must be a timezone-aware timestamp column, got {occ.type}"
            )
        occ = occ.cast(pa.timestamp("us", "UTC"))
        if occ.null_count:
            raise InvalidInputError("occurred_at has null values")
        table = table.set_column(table.schema.get_field_index("occurred_at"), "occurred_at", occ)
        etype = table.column("event_type").cast(pa.string())
        if given_types:
            stype = table.column("stream_type").cast(pa.string())
            pairs = pa.table({"e": etype, "s": stype}).group_by(["e", "s"]).aggregate([])
            found = zip(pairs.column("e").to_pylist(), pairs.column("s").to_pylist(), strict=True)
        else:  # every row is of the default stream type
            found = zip(pc.unique(etype).to_pylist(), itertools.repeat("order"))
        for e, st in found:
            spec = self.registry.spec(e)
            if spec.stream_type != st:
                raise InvalidInputError(
                    f"{e} belongs to stream type {spec.stream_type!r}, not {st!r}"
                )
        if table.column("payload").null_count:
            raise InvalidInputError("payload has null values; a JSON object per event expected")
        if "metadata" in table.column_names:
            check_metadata(table.column("metadata"))
        if "event_id" in table.column_names:
            for eid in table.column("event_id").to_pylist():
                try:
                    uuid.UUID(eid)
                except (ValueError, AttributeError, TypeError):
                    raise InvalidInputError(f"event_id {eid!r} is not a UUID") from None
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return table, codes, encoded.dictionary

    def _prepare(self, req: AppendRequest) -> list[_Row]:
        validate_stream_id(req.stream_id)
        validate_expected_version(req.expected_version)
        if not req.events:
            return []
        rows = []
        for ev in req.events:
            if not isinstance(ev, NewEvent):
                raise InvalidInputError(f"expected NewEvent values, got {type(ev).__name__}")
            spec = self.registry.spec(ev.event_type)
            if spec.stream_type != req.stream_type:
                raise InvalidInputError(
                    f"{ev.event_type} belongs to stream type {spec.stream_type!r}, "
                    f"not {req.stream_type!r}"
                )
            payload = self.registry.validate(ev.event_type, ev.payload, ev.schema_version)
            occurred = utc(ev.occurred_at) if ev.occurred_at is not None else self.clock()
            if not isinstance(ev.metadata, dict):
                raise InvalidInputError("metadata must be a JSON object")
            metadata = dict(ev.metadata)
            if any(isinstance(v, dict | list) for v in metadata.values()):
                check_depth(metadata, "metadata")
            if req.command_id and "command_id" not in metadata:
                metadata["command_id"] = req.command_id
            if ev.event_id is not None:
                try:
                    uuid.UUID(ev.event_id)
                except (ValueError, AttributeError, TypeError):
                    raise InvalidInputError(f"event_id {ev.event_id!r} is not a UUID") from None
            rows.append(
                _Row(
                    stream_type=req.stream_type,
                    stream_id=req.stream_id,
                    event_id=ev.event_id or self.id_factory(),
                    event_type=ev.event_type,
                    schema_version=spec.schema_version,
                    occurred_at=to_micros(occurred),
                    payload=dumps(payload),
                    metadata=dumps(metadata),
                    client_id=ev.event_id is not None,
                    command_id=str(metadata["command_id"]) if metadata.get("command_id") else None,
                    decoded=(payload, metadata),
                )
            )
        return rows

    @staticmethod
    def _command_id(req: AppendRequest, rows: list[_Row]) -> str | None:
        if req.command_id:
            return req.command_id
        return rows[0].command_id if rows else None

    def _already_done(self, req: AppendRequest, rows: list[_Row]) -> AppendResult | None:
        """The original result when this request repeats a command id or its event ids."""
        cid = self._command_id(req, rows)
        if cid:
            hit = self.tail.command(cid)
            if hit is not None:
                return self._result_for(hit[0], hit[1], hit[2])
        if rows and all(r.client_id for r in rows):
            positions = [self.tail.position_of_event(r.event_id) for r in rows]
            if all(p is not None for p in positions):
                known = self._events_at([p for p in positions if p is not None])
                same = [(e.event_id, e.stream_id, e.event_type) for e in known] == [
                    (r.event_id, req.stream_id, r.event_type) for r in rows
                ]
                if same:
                    return self._result_for(req.stream_id, known[0].position, known[-1].position)
        return None

    def _result_for(self, stream_id: str, first: int, last: int) -> AppendResult:
        known = self._events_at([first, last])
        return AppendResult(
            stream_id,
            first,
            last,
            known[0].version,
            known[-1].version,
            known[-1].recorded_at,
            duplicate=True,
        )

    @staticmethod
    def _check_version(req: AppendRequest, current: int) -> None:
        expected = req.expected_version
        if expected == ANY:
            return
        wanted = 0 if expected == NO_STREAM else expected
        if current != wanted:
            raise ConcurrencyError(req.stream_id, expected, current)

    def _write_bulk(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Write a large append straight to a part, under the writer lock."""
        table = _tail_table(rows)
        catalog.add_part(conn, self._publish(_date_of(rows[0][8]), table))
        self.tail.set_meta("sealed_head", rows[-1][0])

    # ------------------------------------------------------------------ seal
    def seal(self) -> int:
        """Move every tail event into Parquet parts; returns the new sealed head."""
        with self._write() as conn:
            self._seal_locked(conn)
            return self.tail.meta("sealed_head")

    def _must_seal(self, tail_events: int, sealed_head: int, now: int) -> bool:
        """True when the tail holds ``seal_max_events`` or its oldest row is too old."""
        if tail_events <= 0:
            return False
        if tail_events >= self.seal_max_events:
            return True
        # the oldest tail row is the one after the sealed head; its recorded_at never changes
        if self._oldest_tail[0] == sealed_head:
            oldest: int | None = self._oldest_tail[1]
        else:
            oldest = self.tail.oldest_tail_recorded_at()
            if oldest is not None:
                self._oldest_tail = (sealed_head, oldest)
        if oldest is None:
            return False
        return now - oldest >= self._seal_age_us

    def _seal_locked(self, conn: Any) -> None:
        sealed = self.tail.meta("sealed_head")
        rows = self.tail.tail_rows(sealed)
        if not rows:
            return
        by_date: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_date[_date_of(row[8])].append(row)
        for date in sorted(by_date, key=lambda d: by_date[d][0][0]):
            date_rows = by_date[date]
            catalog.add_part(conn, self._publish(date, _tail_table(date_rows)))
            conn.execute("DELETE FROM tail WHERE position <= ?", (date_rows[-1][0],))
            self.tail.set_meta("sealed_head", date_rows[-1][0])
        if catalog.replaced_parts(conn):  # files compaction replaced: gone after the grace
            self._repair_locked(conn)

    # ------------------------------------------------------------------ index
    def _stale_head_rows(self, start: int, head: int) -> pa.Table:
        """(stream_id, stream_type, version) of the events in (start, head], all in parts."""
        tables = list(self._read_locked(start, head, ["stream_id", "stream_type", "version"]))
        if not tables:
            return pa.table({"stream_id": [], "stream_type": [], "version": []})
        return pa.concat_tables(tables)

    def _catch_up_heads(self, meta: dict[str, int] | None = None) -> None:
        """Bring the stream heads up to the log head (inside a write transaction).

        Only bulk appends leave them behind; the events they skipped are all in parts,
        so the heads are their per-stream maxima, upserted in key order.
        """
        meta = meta or self.tail.metas()
        start, head = meta["heads_head"], meta["head"]
        if start >= head:
            return
        self._bump_heads(self._stale_head_rows(start, head))
        self.tail.set_meta("heads_head", head)

    def _bump_heads(self, rows: pa.Table) -> None:
        """Raise each stream's head to the highest version in ``rows`` (key order)."""
        types = rows.column("stream_type").cast(pa.string())
        rows = pa.table(
            {
                "stream_id": rows.column("stream_id"),
                "stream_type": types,
                "version": rows.column("version"),
            }
        )
        grouped = rows.group_by(["stream_id"], use_threads=False).aggregate(
            [("version", "max"), ("stream_type", "first")]
        )
        self.tail.conn.executemany(
            BUMP_STREAM,
            sorted(
                zip(
                    grouped.column("stream_id").to_pylist(),
                    grouped.column("stream_type_first").to_pylist(),
                    grouped.column("version_max").to_pylist(),
                    strict=True,
                )
            ),
        )

    def _ensure_heads(self) -> None:
        meta = self.tail.metas()
        if meta["heads_head"] < meta["head"]:
            with self._write():
                self._catch_up_heads()

    def _bulk_base(self, uniques: pa.Array) -> np.ndarray:
        """Current versions of a bulk batch's distinct streams (aligned with ``uniques``).

        Stored heads, raised to the maxima of the events bulk appends have not folded into
        them yet; vectorized, since a batch may touch a hundred thousand streams.
        """
        meta = self.tail.metas()
        if meta["head"] - meta["heads_head"] > self.bulk_heads_lag:
            self._catch_up_heads(meta)
            meta = self.tail.metas()
        base = np.zeros(len(uniques), dtype=np.int64)
        ids, versions = (
            self.tail.stream_versions_arrow(json_string_array(uniques))
            if self.tail.has_streams()
            else ([], [])
        )
        if ids:
            at = pc.index_in(pa.array(ids, pa.string()), uniques).to_numpy(zero_copy_only=False)
            base[at.astype(np.int64)] = versions
        if meta["heads_head"] < meta["head"]:
            stale = self._stale_heads(meta["heads_head"], meta["head"])
            codes = pc.index_in(stale.column("stream_id"), uniques)
            mine = pc.is_valid(codes)
            at = codes.filter(mine).to_numpy(zero_copy_only=False).astype(np.int64)
            ver = stale.column("version").filter(mine).to_numpy().astype(np.int64)
            base[at] = np.maximum(base[at], ver)  # stale rows are one per stream
        return base

    def _stale_heads(self, start: int, head: int) -> pa.Table:
        """Per-stream version maxima of the events in (start, head] (see ``heads_head``).

        Kept in memory between bulk appends: positions at or below the cached range's end
        never change, so only the events appended since (by anyone) are read from parts.
        """
        cached = self._stale
        if cached is not None and cached[0] == start and cached[1] <= head:
            lo, table = cached[1], cached[2]
        else:
            lo, table = start, None
        if lo < head:
            rows = self._stale_head_rows(lo, head)
            fresh = pa.table(
                {
                    "stream_id": rows.column("stream_id").cast(pa.string()),
                    "version": rows.column("version").cast(pa.int64()),
                }
            )
            table = _max_per_stream(fresh if table is None else pa.concat_tables([table, fresh]))
        if table is None:
            empty = {"stream_id": pa.array([], pa.string()), "version": pa.array([], pa.int64())}
            table = _max_per_stream(pa.table(empty))
        self._stale = (start, head, table)
        return table

    def _stale_after(
        self, before: int, after: int, uniques: pa.Array, heads: np.ndarray
    ) -> tuple[int, int, pa.Table] | None:
        """The cache once a bulk append of (before, after] commits (None: not current).

        The batch's streams ``uniques`` then stand at ``heads``.
        """
        cached = self._stale
        if cached is None or cached[1] != before:
            return None
        mine = pa.table({"stream_id": uniques.cast(pa.string()), "version": pa.array(heads)})
        # the batch's heads are the new maxima of its streams: they replace older entries
        older = cached[2].filter(pc.invert(pc.is_in(cached[2].column("stream_id"), uniques)))
        return (cached[0], after, pa.concat_tables([older, mine]).combine_chunks())

    def _catch_up_index(self, *, ids: bool = True) -> None:
        """Index stream positions beyond ``index_head`` and, with ``ids``, event ids beyond
        ``ids_head`` (inside a write transaction)."""
        meta = self.tail.metas()
        head = meta["head"]
        stream_from = meta["index_head"]
        ids_from = meta["ids_head"] if ids else head
        start = min(stream_from, ids_from)
        if start >= head:
            return
        # Insert in key order: B-tree appends instead of random page splits (10x faster
        # for a million rows than inserting in position order).
        tables = list(
            self._read_locked(start, head, ["position", "stream_id", "version", "event_id"])
        )
        rows = pa.concat_tables(tables) if tables else None
        streams: list[tuple[str, int, int]] = []
        hashes: list[tuple[int, int]] = []
        if rows is not None and stream_from < head:
            mine = rows.filter(pc.greater(rows.column("position"), stream_from))
            by_stream = mine.take(
                pc.sort_indices(mine, [("stream_id", "ascending"), ("version", "ascending")])
            )
            streams = list(
                zip(
                    by_stream.column("stream_id").to_pylist(),
                    by_stream.column("version").to_pylist(),
                    by_stream.column("position").to_pylist(),
                    strict=True,
                )
            )
        if rows is not None and ids_from < head:
            mine = rows.filter(pc.greater(rows.column("position"), ids_from))
            keys = np.fromiter(
                map(event_hash, mine.column("event_id").to_pylist()), np.int64, mine.num_rows
            )
            order = np.argsort(keys, kind="stable")
            hashes = list(
                zip(
                    keys[order].tolist(),
                    mine.column("position").to_numpy()[order].tolist(),
                    strict=True,
                )
            )
        self.tail.insert_index(streams, hashes, replace=True)
        updates = {"index_head": head}
        if ids:
            updates["ids_head"] = head
        self.tail.set_metas(updates)

    def _ensure_index(self) -> None:
        """The stream index current (readers of streams need no event-id index)."""
        if self.tail.meta("index_head") < self.tail.meta("head"):
            with self._write():
                self._catch_up_index(ids=False)

    # ------------------------------------------------------------------ read
    def _live_parts(self) -> list[Part]:
        """The live parts as the catalog lists them (never a directory listing)."""
        return catalog.live_parts(self.tail.conn, self.events_dir)

    def check_part(self, part: Part) -> Path:
        """A live part's path once its bytes match the catalog (size and SHA-256).

        Each part is hashed once per handle (again if its size or mtime changed): bulk
        readers and the projections call this before they trust a file.
        """
        try:
            st = part.path.stat()
        except FileNotFoundError:
            raise IntegrityError(
                f"part {part.name} (positions {part.first}..{part.last}) is in the catalog but "
                "its file is missing; restore it from a backup"
            ) from None
        stamp = (st.st_size, st.st_mtime_ns)
        if self._checked.get(part.name) == stamp:
            return part.path
        if st.st_size != part.size or file_sha256(part.path) != part.sha256:
            raise IntegrityError(
                f"part {part.name} (positions {part.first}..{part.last}) does not match its "
                "catalog entry (size or SHA-256 differ): the file was damaged or replaced; "
                "restore it from a backup"
            )
        self._checked[part.name] = stamp
        return part.path

    def _read_locked(
        self, after: int, until: int, columns: list[str] | None = None
    ) -> Iterator[pa.Table]:
        sealed = self.tail.meta("sealed_head")
        yield from self._read_parts(after, min(until, sealed), columns)
        if until > sealed:
            table = _tail_table(self.tail.tail_rows(max(after, sealed), until))
            yield table.select(columns) if columns else table

    def _read_parts(
        self, after: int, until: int, columns: list[str] | None = None
    ) -> Iterator[pa.Table]:
        """Read sealed positions (after, until] from the live parts, re-listing on a race."""
        cursor = after
        while cursor < until:
            parts = [p for p in self._live_parts() if p.last > cursor and p.first <= until]
            if not parts:
                raise IntegrityError(f"no part holds position {cursor + 1}")
            try:
                for part in parts:
                    if part.first > cursor + 1:
                        raise IntegrityError(f"no part holds position {cursor + 1}")
                    table = self._read_range(part, cursor, until, columns)
                    cursor = min(part.last, until)
                    yield table
                    if cursor >= until:
                        break
            except IntegrityError:
                # compaction replaced (and removed) the part while we read: list again;
                # a part that is still live is really missing or damaged
                if any(p.name == part.name for p in self._live_parts()):
                    raise

    def _read_range(
        self, part: Part, after: int, until: int, columns: list[str] | None
    ) -> pa.Table:
        cols = list(columns) if columns else list(COLUMNS)
        if "position" not in cols:
            cols = ["position", *cols]
        pf = _open_part(self.check_part(part))
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
        mask = pc.and_(pc.greater(pos, after), pc.less_equal(pos, until))
        table = table.filter(mask)
        if table.num_rows != min(part.last, until) - max(after, part.first - 1):
            raise IntegrityError(f"part {part.name} does not hold the positions its catalog says")
        return table.select(columns) if columns else table

    def read(
        self,
        *,
        after: int = 0,
        until: int | None = None,
        event_types: Sequence[str] | None = None,
        columns: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """The events with position in (after, until], in order, as Arrow tables.

        Parts and tail are read as one log: the sealed head and the tail rows come from
        one SQLite snapshot, so no event is seen twice or missed while a seal runs.
        """
        if after < 0:
            raise InvalidInputError(f"after must be >= 0, got {after}")
        if event_types:
            for t in event_types:
                self.registry.spec(t)
        with self.tail.snapshot():
            sealed = self.tail.meta("sealed_head")
            head = self.tail.meta("head")
            stop = head if until is None else min(until, head)
            tail_table = (
                _tail_table(self.tail.tail_rows(max(after, sealed), stop))
                if stop > sealed
                else None
            )
        wanted = sorted(set(event_types)) if event_types else None
        read_cols = columns
        if columns and wanted is not None and "event_type" not in columns:
            read_cols = [*columns, "event_type"]
        for table in self._read_parts(after, min(stop, sealed), read_cols):
            yield self._filter_types(table, wanted, columns)
        if tail_table is not None:
            t = tail_table.select(read_cols) if read_cols else tail_table
            yield self._filter_types(t, wanted, columns)

    @staticmethod
    def _filter_types(
        table: pa.Table, wanted: list[str] | None, columns: list[str] | None
    ) -> pa.Table:
        if wanted is not None:
            types = table.column("event_type").cast(pa.string())
            table = table.filter(pc.is_in(types, pa.array(wanted, pa.string())))
        return table.select(columns) if columns else table

    def read_all(self, **kwargs: Any) -> pa.Table:
        """``read`` concatenated into one table."""
        tables = list(self.read(**kwargs))
        if not tables:
            return ENVELOPE_SCHEMA.empty_table()
        return pa.concat_tables(tables)

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> pa.Table:
        """One stream's events after a version, in version order, via the stream index."""
        validate_stream_id(stream_id)
        if not self.read_only:
            self._ensure_index()
        with self.tail.snapshot():
            positions = self.tail.stream_positions(stream_id, after_version)
            meta = self.tail.metas()
            if meta["index_head"] < meta["head"]:  # a reader may not index: scan the rest
                rows = pa.concat_tables(
                    list(
                        self._read_locked(
                            meta["index_head"], meta["head"], ["position", "stream_id", "version"]
                        )
                    )
                )
                mine = pc.and_(
                    pc.equal(rows.column("stream_id").cast(pa.string()), stream_id),
                    pc.greater(rows.column("version"), after_version),
                )
                positions += rows.column("position").filter(mine).to_pylist()
        return self._table_at(positions)

    def _table_at(self, positions: list[int]) -> pa.Table:
        if not positions:
            return ENVELOPE_SCHEMA.empty_table()
        with self.tail.snapshot():
            sealed = self.tail.meta("sealed_head")
            tail_pos = [p for p in positions if p > sealed]
            keep = set(tail_pos)
            rows = (
                [
                    r
                    for r in self.tail.conn.execute(SELECT_TAIL_AT, (tail_pos[0], tail_pos[-1]))
                    if r[0] in keep
                ]
                if tail_pos
                else []
            )
        tables = []
        part_pos = [p for p in positions if p <= sealed]
        if part_pos:
            tables.extend(self._take_from_parts(part_pos))
        tables.append(_tail_table(rows))
        table = pa.concat_tables(tables)
        order = pc.sort_indices(table, [("position", "ascending")])
        return table.take(order)

    def _take_from_parts(self, positions: list[int]) -> list[pa.Table]:
        for _ in range(3):
            by_part: dict[Part, list[int]] = defaultdict(list)
            try:
                live = self._live_parts()
                out = []
                for p in positions:
                    part = next((x for x in live if x.first <= p <= x.last), None)
                    if part is None:
                        raise IntegrityError(f"no part holds position {p}")
                    by_part[part].append(p)
                if len(by_part) > 1:  # pyarrow decodes without the GIL: parts in parallel
                    with ThreadPoolExecutor(max_workers=min(len(by_part), _READERS)) as pool:
                        return list(pool.map(lambda item: self._take_rows(*item), by_part.items()))
                for part, pos in by_part.items():
                    out.append(self._take_rows(part, pos))
                return out
            except IntegrityError:
                # a part compaction replaced and removed while we read: list again; a part
                # that is still live is really missing or damaged
                self._footers.clear()
                if {p.name for p in by_part} <= {p.name for p in self._live_parts()}:
                    raise
        raise IntegrityError("parts kept disappearing while reading; is compaction looping?")

    def _take_rows(self, part: Part, positions: list[int]) -> pa.Table:
        meta = self._footers.get(part.path)
        if meta is None:
            meta = _open_part(part.path).metadata
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
        pf = _open_part(part.path, meta)
        tables = []
        try:
            for g, rows in sorted(wanted.items()):
                rg = pf.read_row_group(g)
                tables.append(rg.take(pa.array(rows)))
            table = pa.concat_tables(tables).cast(ENVELOPE_SCHEMA)
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(f"part {part.name} cannot be read: {exc}") from None
        if table.column("position").to_pylist() != sorted(positions):
            raise IntegrityError(f"part {part.name} does not hold the positions its catalog says")
        return table

    def _events_at(self, positions: list[int]) -> list[RecordedEvent]:
        wanted = sorted(set(positions))
        if not wanted:
            return []
        if all(p in self._recent for p in wanted):
            return [_record_from_row(*self._recent[p]) for p in wanted]
        with self.tail.snapshot():
            if wanted[0] > self.tail.meta("sealed_head"):
                # only tail rows: build the records straight from SQLite (the handle path)
                rows = self.tail.conn.execute(SELECT_TAIL_AT, (wanted[0], wanted[-1])).fetchall()
                keep = set(wanted)
                return [_record_from_row(r) for r in rows if r[0] in keep]
        return records_from_batch(self._table_at(wanted))

    def events_at(self, positions: Sequence[int]) -> list[RecordedEvent]:
        """The recorded events at the given positions, in position order."""
        return self._events_at(list(positions))

    def subscribe(
        self,
        *,
        after: int = 0,
        poll_interval: float = 0.2,
        stop: Callable[[], bool] | None = None,
        idle_timeout: float | None = None,
    ) -> Iterator[pa.Table]:
        """Catch-up subscription: past events after ``after``, then new ones as they commit.

        Ends when ``stop()`` returns true or nothing new arrived for ``idle_timeout`` s.
        """
        cursor = after
        idle_since = time.monotonic()
        while stop is None or not stop():
            got = False
            for table in self.read(after=cursor):
                if table.num_rows:
                    got = True
                    cursor = table.column("position")[-1].as_py()
                    yield table
            if got:
                idle_since = time.monotonic()
                continue
            if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                return
            time.sleep(poll_interval)

    # ------------------------------------------------------------------ verify, info, compact
    def verify(self) -> VerifyReport:
        """Check the log's content on disk (see ``eventlog.verify``); never writes."""
        from eventlog.verify import verify_log

        return verify_log(self)

    def info(self) -> LakeInfo:
        """Heads, parts, partitions and bytes of the lake."""
        live = self._live_parts()
        count, _ = self.tail.tail_stats()
        tail_bytes = sum(f.stat().st_size for f in self.root.glob("tail.sqlite*") if f.is_file())
        streams = self.tail.conn.execute("SELECT count(*) FROM streams").fetchone()[0]
        meta = self.tail.metas()
        if meta["heads_head"] < meta["head"]:  # bulk appends not folded into the heads yet
            lagging = self._stale_head_rows(meta["heads_head"], meta["head"])
            new_ids = pc.unique(lagging.column("stream_id")).to_pylist()
            streams += len(new_ids) - len(self.tail.stream_versions(new_ids))
        return LakeInfo(
            head=self.head(),
            sealed_head=self.sealed_head(),
            tail_events=count,
            parts=len(live),
            partitions=sorted({p.date for p in live}),
            part_bytes=sum(p.size for p in live),
            tail_bytes=tail_bytes,
            streams=int(streams),
        )

    def live_parts(self, *, check: bool = False) -> list[Path]:
        """Paths of the live parts, in position order (for readers like DuckDB).

        ``check`` first compares each file's bytes with the catalog (``check_part``).
        """
        parts = self._live_parts()
        return [self.check_part(p) if check else p.path for p in parts]

    def parts(self) -> list[Part]:
        """The live parts with their ranges, sizes and hashes, as the catalog lists them."""
        return self._live_parts()

    def replaced(self) -> list[tuple[str, int]]:
        """(name, replaced_at µs) of the parts compaction replaced whose files may remain."""
        return catalog.replaced_parts(self.tail.conn)

    def compact(self) -> list[Path]:
        """Merge each date partition's live parts into one covering part; returns new parts.

        Runs under the writer lock (appends wait for it). The merged part and the
        replacement of the old ones commit in one catalog transaction; the old files are
        removed once ``replaced_grace`` has passed, so readers mid-scan keep working.
        Each source part's bytes are checked first: compaction never blesses damage, and
        never changes an event.
        """
        made: list[Path] = []
        with self._write() as conn:
            live = self._live_parts()
            by_date: dict[str, list[Part]] = defaultdict(list)
            for part in live:
                by_date[part.date].append(part)
            for date, parts in sorted(by_date.items()):
                runs = _consecutive_runs(parts)
                for run in runs:
                    if len(run) < 2:
                        continue
                    for part in run:
                        self.check_part(part)
                    table = pa.concat_tables([read_part(p) for p in run])
                    merged = self._publish(date, table)
                    catalog.replace_parts(conn, run, merged, to_micros(self.clock()))
                    made.append(merged.path)
        self._footers.clear()
        if made and self.replaced_grace <= timedelta(0):
            self._repair()
        return made


def _consecutive_runs(parts: list[Part]) -> list[list[Part]]:
    runs: list[list[Part]] = []
    for part in sorted(parts):
        if runs and runs[-1][-1].last + 1 == part.first:
            runs[-1].append(part)
        else:
            runs.append([part])
    return runs


def default_lake(explicit: str | os.PathLike[str] | None, env: dict[str, str]) -> Path:
    """The lake path: explicit argument, else LEDGERLAKE_HOME, else ./lake."""
    if explicit:
        return Path(explicit)
    return Path(env.get("LEDGERLAKE_HOME") or "lake")
