"""EventLog: the append-only log of one lake, composed of a tail and part storage.

The log knows no domain: its event registry and default stream type are given to it
(``eventlog.orders.open_order_log`` gives the Order domain's). It composes

- a tail (``eventlog.tails``): the commit, the writer lock, counters, stream heads,
  command ids, the index and the catalog of live parts;
- part storage (``eventlog.storage``): immutable Parquet parts in ``<lake>/events/``, or
  in object storage (``eventlog.objectstore``) when ``lake.toml`` says ``parts = "s3://..."``;
- the commit of appends (``eventlog.commit``) and of bulk appends
  (``eventlog.bulk_append``), the lazily caught-up heads and index (``eventlog.heads``),
  and maintenance: seal, compact, repair (``eventlog.maintenance``) and ``verify``.

Longer than the other modules on purpose: ``EventLog`` is the package's one facade, so
every public operation is here with its docstring; the work happens in the modules
above, and most methods here are a few lines that delegate.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlog import reads
from eventlog.codec import EventRegistry
from eventlog.commit import Decoded, Row, as_stored
from eventlog.envelope import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    to_micros,
)
from eventlog.errors import IntegrityError, InvalidInputError, LakeNotFoundError, StorageError
from eventlog.heads import LaggingHeads
from eventlog.lake import default_lake, has_tail, open_parts, open_tail, read_config
from eventlog.maintenance import Maintenance
from eventlog.parts import Part
from eventlog.shred import open_shredder
from eventlog.storage import PartStore
from eventlog.streamfiles import StreamFiles
from eventlog.tails import Tail, TailRow
from eventlog.values import (
    AppendRequest,
    AppendResult,
    LakeInfo,
    VerifyReport,
    empty_envelope,
    tail_table,
)

__all__ = [
    "AppendRequest",
    "AppendResult",
    "EventLog",
    "LakeInfo",
    "VerifyReport",
    "default_lake",
    "tail_table",
]

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    """A random (version 4) UUID as text; what ``str(uuid.uuid4())`` gives, in half the time."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# the first hex digit of a version-4 UUID's fourth group carries the variant bits 10xx
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


class EventLog:
    """The append-only event log of a lake: a tail plus ``<lake>/events/``."""

    def __init__(
        self,
        root: Path,
        *,
        registry: EventRegistry,
        stream_type: str | None = None,
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
        tail: Tail | None = None,
    ) -> None:
        if not isinstance(registry, EventRegistry):
            raise InvalidInputError("an EventLog needs the EventRegistry of its event types")
        self.root = root
        self.registry = registry
        self._stream_type = stream_type
        self.clock = clock
        self.id_factory = id_factory
        self.seal_max_events = seal_max_events
        self.seal_max_age = seal_max_age
        self.bulk_threshold = bulk_threshold
        self.seal_on_close = seal_on_close
        self.bulk_heads_lag = bulk_heads_lag
        if bulk_part_rows < 1:
            raise InvalidInputError(f"bulk_part_rows must be at least 1, got {bulk_part_rows}")
        self.bulk_part_rows = bulk_part_rows
        self.read_only = read_only
        self.replaced_grace = replaced_grace
        # the last committed tail rows with their decoded (payload, metadata): read back free
        self._recent: dict[int, tuple[TailRow, Decoded]] = {}
        self.store: PartStore = open_parts(root, read_config(root))
        self.events_dir = self.store.events_dir
        self.inflight_dir = self.store.inflight_dir
        self.stream_files = StreamFiles(root)  # parts clustered by stream, for read_stream
        self.tail = tail if tail is not None else open_tail(root, read_only=read_only, check=check)
        if not read_only:
            try:
                self.store.create()
            except OSError as exc:
                self.tail.close()
                raise StorageError(f"cannot create {self.store.describe()}: {exc}") from None
        self.heads = LaggingHeads(self.tail, self._read_locked, self._write, bulk_heads_lag)
        self.shredder = open_shredder(registry, self.tail, read_only=read_only)
        self.maintenance = Maintenance(self)
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

        ``registry`` (the event types) is required; ``stream_type`` is the default stream
        type of requests that name none. ``read_only=True`` opens it for reading alone:
        nothing on disk changes, no repair runs (commands that only read use this).
        """
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"the lake path {path} is a file; a lake is a directory")
        if not create or options.get("read_only"):
            if not has_tail(path) and not (path / "events").exists():
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
        if meta["sealed_head"] > 0 and not self.tail.live_parts():
            raise IntegrityError(
                f"the lake's catalog lists no parts but its sealed head is {meta['sealed_head']}: "
                "a lake made before the part catalog existed (or a damaged tail); run "
                "'ledgerlake repair' once to adopt its parts after checking their content"
            )
        if meta["head"] == 0 and self.store.list_files():
            raise IntegrityError(
                f"the tail of {self.root} is empty but events/ holds part files; the tail may "
                "have been lost or replaced: restore it from a backup, or run "
                "'ledgerlake repair' to rebuild it from the parts"
            )

    def close(self) -> None:
        """Seal the tail (when configured to) and close the tail's connection."""
        try:
            if self.seal_on_close:
                self.seal()
        finally:
            self.tail.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def default_stream_type(self) -> str:
        """The stream type of requests that name none: given, or the registry's only one."""
        if self._stream_type is not None:
            return self._stream_type
        kinds = sorted({self.registry.spec(t).stream_type for t in self.registry.event_types})
        if len(kinds) != 1:
            raise InvalidInputError(
                f"the registry holds stream types {kinds}; name the stream type of the append"
            )
        self._stream_type = kinds[0]
        return kinds[0]

    def stream_type_of(self, req: AppendRequest) -> str:
        """A request's stream type (the log's default when it names none)."""
        return req.stream_type if req.stream_type is not None else self.default_stream_type()

    # ------------------------------------------------------------------ commit protocol
    @contextmanager
    def _write(self, *, scan: bool = False) -> Iterator[None]:
        """The writer lock (one tail write transaction), repairing a dead writer's leftovers.

        A writer that publishes parts first leaves a marker in ``events/_inflight/`` naming
        the positions it publishes, and removes it after the tail commits. A marker seen
        while holding the lock belongs to a writer that no longer holds it: it committed
        (harmless) or died between publishing and committing, and then the files it left
        uncommitted are removed before anyone assigns the positions they hold. On object
        storage a commit does not look (``commit_markers``: new objects never collide with
        a dead writer's); ``scan`` (a writer's repair) always does.
        """
        self.store.begin()
        stale: list[Path] = []
        committed = False
        try:
            with self.tail.write():
                stale = self.store.markers() if scan else self.store.commit_markers()
                if stale:
                    self._repair_locked()
                yield
            committed = True
        finally:
            self.store.finish(stale, committed)

    def snapshot(self) -> AbstractContextManager[None]:
        """A consistent read of the tail: every read inside sees one committed state."""
        return self.tail.snapshot()

    def _repair(self) -> None:
        """Clean what a dead writer left (see docs/format.md); only writers call this."""
        cutoff = to_micros(self.clock()) - self.replaced_grace // timedelta(microseconds=1)
        stale_replaced = any(at <= cutoff for _, at in self.tail.replaced_parts())
        if not (self.store.markers() or self.store.temp_files() or stale_replaced):
            return
        with self._write(scan=True):
            self._repair_locked()

    def _repair_locked(self) -> list[str]:
        """Repair under the writer lock (``eventlog.maintenance.repair_locked``)."""
        from eventlog.maintenance import repair_locked

        self.store.forget_cached()
        return repair_locked(self)

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
            self.heads.ensure()
        stored = self.tail.stream_versions([stream_id]).get(stream_id, 0)
        return self.heads.version_with_lag(stream_id, stored)

    def stream_state(self, stream_id: str) -> tuple[int, dict[str, Any] | None, int]:
        """(version, stored write-model state or None, version that state reflects)."""
        import json

        version, state, state_version = self.stream_state_text(stream_id)
        opened = self.shredder.open_state(stream_id, json.loads(state)) if state else None
        return version, opened, state_version

    def stream_state_text(self, stream_id: str) -> tuple[int, str | None, int]:
        """``stream_state`` with the state as its stored JSON text (not decoded)."""
        head, heads_head, row = self.tail.stream_row_and_heads(stream_id)
        if heads_head < head and self.read_only:
            version = self.heads.version_with_lag(stream_id, row[0] if row else 0)
            if version == 0:
                return 0, None, 0
            return (version, row[1], row[2]) if row else (version, None, 0)
        if heads_head < head:  # bulk appends left the heads behind: fold them in first
            self.heads.ensure()
            row = self.tail.stream_row(stream_id)
        if row is None:
            return 0, None, 0
        return row

    def stream_states_text(
        self, stream_ids: Sequence[str]
    ) -> dict[str, tuple[int, str | None, int]]:
        """``stream_state_text`` of many streams of a writer, in one query (absent: left out)."""
        meta = self.tail.metas()
        if meta["heads_head"] < meta["head"]:  # bulk appends left the heads behind
            self.heads.ensure()
        return self.tail.stream_rows(stream_ids)

    def command(self, command_id: str) -> tuple[str, int, int] | None:
        """(stream_id, first, last position) of a processed command id, or None."""
        return self.tail.command(command_id)

    # ------------------------------------------------------------------ append
    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion = ANY,
        stream_type: str | None = None,
        command_id: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> AppendResult:
        """Append events to one stream if it is at ``expected_version``; durable on return."""
        req = AppendRequest(stream_id, events, expected_version, stream_type, command_id, state)
        return self.append_many([req])[0]

    def append_many(
        self,
        requests: Sequence[AppendRequest],
        *,
        remember: bool = True,
        rows: Sequence[list[Row]] | None = None,
    ) -> list[AppendResult]:
        """Append to several streams in one atomic commit: all requests or none.

        ``remember`` keeps the (at most 1,000) new events in memory, decoded, so that
        ``events_at`` right after costs nothing (``handle`` reads them back). ``rows``
        (from ``eventlog.commit.decided_rows``, one list per request) replace the
        requests' events: a command handler's events, checked and encoded already.
        """
        from eventlog.commit import append_many

        return append_many(self, requests, remember=remember, rows=rows)

    def remember(self, rows: list[TailRow], decoded: list[Any] | None) -> None:
        """Keep just-committed rows (immutable now) so reading them back costs nothing."""
        if decoded is None or len(rows) > 1000:
            self._recent = {}
            return
        self._recent = {
            row[0]: (row, (as_stored(payload), as_stored(metadata)))
            for row, (payload, metadata) in zip(rows, decoded, strict=True)
        }

    def append_batch(
        self,
        table: pa.Table,
        *,
        expected_versions: dict[str, ExpectedVersion] | None = None,
        command_id: str | None = None,
    ) -> AppendResult:
        """Bulk append: an Arrow table of events, validated column-wise, becomes parts.

        See ``eventlog.bulk_append``; it lands whole or not at all.
        """
        from eventlog.bulk_append import append_batch

        return append_batch(self, table, expected_versions=expected_versions, command_id=command_id)

    # ------------------------------------------------------------------ seal, compact, verify
    def seal(self) -> int:
        """Move every tail event into Parquet parts; returns the new sealed head."""
        with self._write():
            self.maintenance.seal_locked()
            return self.tail.meta("sealed_head")

    def compact(self) -> list[Path]:
        """Merge each date partition's live parts into one covering part; returns new parts.

        Runs under the writer lock (appends wait for it). The merged part and the
        replacement of the old ones commit in one catalog transaction; the old files are
        removed once ``replaced_grace`` has passed, so readers mid-scan keep working.
        Each source part's bytes are checked first: compaction never blesses damage, and
        never changes an event.
        """
        return self.maintenance.compact()

    def verify(self) -> VerifyReport:
        """Check the log's content on disk (see ``eventlog.verify``); never writes."""
        from eventlog.verify import verify_log

        return verify_log(self)

    # ------------------------------------------------------------------ parts
    def _live_parts(self) -> list[Part]:
        """The live parts as the catalog lists them (never a directory listing)."""
        return [self.store.part(row) for row in self.tail.live_parts()]

    def check_part(self, part: Part) -> Path:
        """A live part's path once its bytes match the catalog (size and SHA-256).

        Each part is hashed once per handle (again if its size or mtime changed): bulk
        readers and the projections call this before they trust a file.
        """
        return self.store.check(part)

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
        return self.tail.replaced_parts()

    def info(self) -> LakeInfo:
        """Heads, parts, partitions and bytes of the lake."""
        live = self._live_parts()
        count, _ = self.tail.tail_stats()
        streams = self.tail.stream_count()
        meta = self.tail.metas()
        if meta["heads_head"] < meta["head"]:  # bulk appends not folded into the heads yet
            lagging = self.heads.rows_after(meta["heads_head"], meta["head"])
            new_ids = pc.unique(lagging.column("stream_id")).to_pylist()
            streams += len(new_ids) - len(self.tail.stream_versions(new_ids))
        return LakeInfo(
            head=meta["head"],
            sealed_head=meta["sealed_head"],
            tail_events=count,
            parts=len(live),
            partitions=sorted({p.date for p in live}),
            part_bytes=sum(p.size for p in live),
            tail_bytes=self.tail.tail_bytes(),
            streams=int(streams),
        )

    # ------------------------------------------------------------------ read
    def _read_locked(
        self, after: int, until: int, columns: list[str] | None = None
    ) -> Iterator[pa.Table]:
        sealed = self.tail.meta("sealed_head")
        yield from self.store.read_parts(self._live_parts, after, min(until, sealed), columns)
        if until > sealed:
            table = tail_table(self.tail.tail_rows(max(after, sealed), until))
            yield table.select(columns) if columns else table

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
        one tail snapshot, so no event is seen twice or missed while a seal runs.
        """
        return reads.read(self, after=after, until=until, event_types=event_types, columns=columns)

    def read_all(self, **kwargs: Any) -> pa.Table:
        """``read`` concatenated into one table."""
        tables = list(self.read(**kwargs))
        if not tables:
            return empty_envelope()
        return pa.concat_tables(tables)

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> pa.Table:
        """One stream's events after a version, in version order, via the stream index."""
        return reads.read_stream(self, stream_id, after_version=after_version)

    def events_at(self, positions: Sequence[int]) -> list[RecordedEvent]:
        """The recorded events at the given positions, in position order."""
        return reads.events_at(self, positions)

    def subscribe(
        self,
        *,
        after: int = 0,
        poll_interval: float = 0.2,
        stop: Callable[[], bool] | None = None,
        idle_timeout: float | None = None,
    ) -> Iterator[pa.Table]:
        """Catch-up subscription: past events after ``after``, then new ones as they commit.

        Never skips a position (see ``eventlog.reads.subscribe``). Ends when ``stop()``
        returns true or nothing new arrived for ``idle_timeout`` s.
        """
        return reads.subscribe(
            self, after=after, poll_interval=poll_interval, stop=stop, idle_timeout=idle_timeout
        )
