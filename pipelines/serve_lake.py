"""What ``ledgerlake serve`` keeps warm: the open log, the vector tables and the query model.

Every use of the shared log goes through one lock: the SQLite connection is shared by
the server's threads, and the log serializes writers anyway. Order states are folded
from the log itself (the definition of "as of T as known at K" in docs/projections.md), so a command
posted to the server shows in the next state request without a projection run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventlog.decider import HandleResult, fold
from eventlog.envelope import RecordedEvent, records_from_batch, validate_stream_id
from eventlog.errors import InvalidInputError
from eventlog.handler import CommandHandler
from eventlog.log import AppendRequest, EventLog
from eventlog.orders.commands import command_from_json
from eventlog.orders.decider import ORDER_DECIDER, order_state_fields
from eventlog.orders.log import open_order_log
from projections.search import SearchHit, search
from projections.vector_store import EVENT_NARRATIVES, VectorStore, VectorStoreMissingError


class UnknownOrderError(InvalidInputError):
    """No event of this order is in the log."""


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A ``handle`` command as JSON, split into the command and its options."""

    command: Any
    command_id: str | None
    expected_version: int | None
    metadata: dict[str, Any] | None


def parse_command(obj: object, idempotency_key: str | None, now: datetime) -> CommandRequest:
    """The CLI's ``handle`` JSON (command, order_id, fields, command_id?, expected_version?)."""
    if not isinstance(obj, dict):
        raise InvalidInputError(f"a command must be a JSON object, got {type(obj).__name__}")
    data = dict(obj)
    command_id = data.pop("command_id", None)
    if command_id is not None and (not isinstance(command_id, str) or not command_id):
        raise InvalidInputError(f"command_id must be a non-empty string, got {command_id!r}")
    if idempotency_key is not None:
        if not idempotency_key or len(idempotency_key) > 200:
            raise InvalidInputError("the Idempotency-Key header must be 1 to 200 characters")
        if command_id is not None and command_id != idempotency_key:
            raise InvalidInputError("the Idempotency-Key header and command_id differ")
        command_id = idempotency_key
    expected = data.pop("expected_version", None)
    if expected is not None and (
        isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
    ):
        raise InvalidInputError(f"expected_version must be an integer >= 0, got {expected!r}")
    metadata = data.pop("metadata", None)
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInputError("metadata must be a JSON object")
    command = command_from_json(data, now=now)
    validate_stream_id(command.order_id)
    return CommandRequest(command, command_id, expected, metadata)


def with_idempotency_key(requests: list[AppendRequest], key: str | None) -> list[AppendRequest]:
    """Give each append request the command id ``<key>#<n>``: a retried POST appends nothing."""
    if key is None:
        return requests
    if not key or len(key) > 200:
        raise InvalidInputError("the Idempotency-Key header must be 1 to 200 characters")
    return [
        AppendRequest(r.stream_id, r.events, r.expected_version, r.stream_type, f"{key}#{n}")
        for n, r in enumerate(requests, start=1)
    ]


def _as_of_filter(
    records: Sequence[RecordedEvent], as_of: datetime, known_at: datetime | None
) -> list[RecordedEvent]:
    chosen = [
        r
        for r in records
        if r.occurred_at <= as_of and (known_at is None or r.recorded_at <= known_at)
    ]
    return sorted(chosen, key=lambda r: (r.occurred_at, r.version))


class ServedLake:
    """The lake behind the server: one open log, a lock, the vector store kept open."""

    def __init__(self, lake: Path) -> None:
        self.lake = Path(lake)
        self.log = open_order_log(self.lake, create=False, seal_on_close=False)
        # keeps the states it decided: a command on a known order needs no read
        self.handler = CommandHandler(self.log, ORDER_DECIDER)
        self.lock = threading.Lock()
        self._queue: list[tuple[CommandRequest, Future[HandleResult[Any]]]] = []
        self._queue_lock = threading.Lock()
        self._store: VectorStore | None = None

    def close(self) -> None:
        """Close the log (the tail is durable; closing never seals)."""
        with self.lock:
            self.log.close()

    @contextmanager
    def locked_log(self) -> Iterator[EventLog]:
        """The shared log, for one short use."""
        with self.lock:
            yield self.log

    def store(self) -> VectorStore:
        """The vector store, opened once it exists (raises, exit 2, while it does not)."""
        if self._store is None:
            self._store = VectorStore(self.lake, create=False, keep_open=True)
        return self._store

    def warm(self) -> bool:
        """Load the query model and open the tables now; False when there are no vectors."""
        try:
            store = self.store()
            if store.alias(EVENT_NARRATIVES) is None:
                return False
            search(self.lake, "warm up", k=1, store=store)
        except VectorStoreMissingError:
            return False
        return True

    # ------------------------------------------------------------------ writes
    def handle(self, request: CommandRequest) -> HandleResult[Any]:
        """Decide the command on the order's state and append its events.

        Group commit: commands that arrive while another commit runs wait in a queue, and
        the next thread to take the lock decides and appends all of them in one commit
        (one fsync). A command with its own expected version or metadata goes alone.
        """
        if request.expected_version is not None or request.metadata:
            with self.lock:
                return self.handler.handle(
                    request.command.order_id,
                    request.command,
                    command_id=request.command_id,
                    metadata=request.metadata,
                    expected_version=request.expected_version,
                )
        waiting: Future[HandleResult[Any]] = Future()
        with self._queue_lock:
            self._queue.append((request, waiting))
        with self.lock:
            if not waiting.done():
                self._commit_queued()
        result = waiting.result()
        if result.error is not None:
            raise result.error
        return result

    def _take_batch(self) -> list[tuple[CommandRequest, Future[HandleResult[Any]]]]:
        """The queued commands, one per command id (a repeated id waits for the next round)."""
        with self._queue_lock:
            batch, rest, ids = [], [], set()
            for item in self._queue:
                cid = item[0].command_id
                if cid is not None and cid in ids:
                    rest.append(item)
                    continue
                ids.add(cid)
                batch.append(item)
            self._queue = rest
        return batch

    def _commit_queued(self) -> None:
        batch = self._take_batch()
        try:
            results = self.handler.handle_many(
                [(r.command.order_id, r.command) for r, _ in batch],
                command_ids=[r.command_id for r, _ in batch],
            )
        except BaseException as exc:  # an integrity problem fails every command of the batch
            for _, waiting in batch:
                waiting.set_exception(exc)
            raise
        for (_, waiting), result in zip(batch, results, strict=True):
            waiting.set_result(result)

    def append(self, requests: list[AppendRequest]) -> dict[str, Any]:
        """Append raw events atomically (all requests or none), as ``ledgerlake append``."""
        with self.lock:
            results = self.log.append_many(requests)
            head = self.log.head()
        new = [r for r in results if not r.duplicate]
        return {
            "appended": sum(r.last_position - r.first_position + 1 for r in new),
            "first_position": min((r.first_position for r in new), default=None),
            "last_position": max((r.last_position for r in new), default=None),
            "head": head,
            "results": [r.to_json() for r in results],
        }

    # ------------------------------------------------------------------ reads
    def stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        """One stream's events after a version, in version order."""
        validate_stream_id(stream_id)
        with self.lock:
            return records_from_batch(self.log.read_stream(stream_id, after_version=after_version))

    def events(
        self, after: int, limit: int, types: list[str] | None = None
    ) -> tuple[list[RecordedEvent], int]:
        """Up to ``limit`` events with position > ``after`` (and of ``types``); the head."""
        out: list[RecordedEvent] = []
        with self.lock:
            head = self.log.head()
            for table in self.log.read(after=after, event_types=types):
                out.extend(records_from_batch(table.slice(0, limit - len(out))))
                if len(out) >= limit:
                    break
        return out, head

    def head(self) -> int:
        """The position of the newest event."""
        with self.lock:
            return self.log.head()

    def state(
        self, order_id: str, as_of: datetime | None, known_at: datetime | None
    ) -> dict[str, Any] | None:
        """The order's state as of T (as known at K), None if it did not exist then."""
        records = self.stream(order_id)
        if not records:
            raise UnknownOrderError(f"unknown order {order_id!r}: no event of it in the log")
        chosen = _as_of_filter(records, as_of or datetime.max.replace(tzinfo=UTC), known_at)
        if not chosen:
            return None
        registry = self.log.registry
        events = [registry.decode(r.event_type, r.schema_version, r.payload) for r in chosen]
        state = fold(ORDER_DECIDER, events, ORDER_DECIDER.initial(order_id))
        return order_state_fields(state)

    def search(self, query: str, **filters: Any) -> list[SearchHit]:
        """``projections.search.search`` on the open tables and the warm model."""
        return search(self.lake, query, store=self.store(), **filters)


def sse_lines(records: Sequence[RecordedEvent]) -> str:
    """Server-sent events: ``id`` is the position, ``event`` the type, ``data`` the JSON."""
    return "".join(
        f"id: {r.position}\nevent: {r.event_type}\ndata: "
        f"{json.dumps(r.to_json(), default=str, ensure_ascii=False)}\n\n"
        for r in records
    )
