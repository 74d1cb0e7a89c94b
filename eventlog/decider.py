"""The Decider: a pure decide/evolve pair, and ``handle``, the shell that runs it on the log."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eventlog.envelope import ANY, ExpectedVersion, NewEvent, RecordedEvent, records_from_batch
from eventlog.errors import ConcurrencyError, LedgerLakeError

if TYPE_CHECKING:
    from eventlog.log import AppendResult, EventLog

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Decider(Generic[C, E, S]):
    """``decide(command, state) -> events`` and ``evolve(state, event) -> state``, both pure.

    ``state_to_json``/``state_from_json`` let the log keep the write-model state in
    its stream index so a command never replays the stream; ``initial_for`` gives the
    empty state of a named stream; ``command_time`` reads the clock off a command.
    """

    decide: Callable[[C, S], list[E]]
    evolve: Callable[[S, E], S]
    initial_state: S
    stream_type: str
    state_to_json: Callable[[S], dict[str, Any]]
    state_from_json: Callable[[dict[str, Any]], S]
    initial_for: Callable[[str], S] | None = None
    command_time: Callable[[C], datetime | None] = field(default=lambda _c: getattr(_c, "at", None))

    def initial(self, stream_id: str) -> S:
        """The state of a stream before its first event."""
        return self.initial_for(stream_id) if self.initial_for else self.initial_state


def fold(decider: Decider[Any, E, S], events: Iterable[E], state: S | None = None) -> S:
    """Evolve the initial (or a given) state through events, in the given order."""
    current = decider.initial_state if state is None else state
    for event in events:
        current = decider.evolve(current, event)
    return current


@dataclass(frozen=True, slots=True)
class HandleResult(Generic[S]):
    """What a command did: the events it recorded (none for an idempotent repeat)."""

    stream_id: str
    events: list[RecordedEvent]
    state: S | None
    append: AppendResult | None = None
    duplicate: bool = False
    error: LedgerLakeError | None = None


def load_state(log: EventLog, decider: Decider[Any, Any, S], stream_id: str) -> tuple[int, S]:
    """(version, state) of a stream from the stream index, folding only unseen events."""
    version, text, state_version = log.stream_state_text(stream_id)
    cached = log.cached_state(decider, stream_id, version)
    if cached is not None:  # this handle decided it: the same state, already decoded
        return version, cached
    if text is None:
        state, state_version = decider.initial(stream_id), 0
    else:
        state = decider.state_from_json(json.loads(text))
    if version > state_version:
        table = log.read_stream(stream_id, after_version=state_version)
        for rec in records_from_batch(table):
            payload = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
            state = decider.evolve(state, payload)
    return version, state


_PAYLOAD_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _payload_dict(event: Any) -> dict[str, Any]:
    """A flat payload dataclass as a dict (``dataclasses.asdict`` deep-copies; too slow here)."""
    names = _PAYLOAD_FIELDS.get(type(event))
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(event))
        _PAYLOAD_FIELDS[type(event)] = names
    return {name: getattr(event, name) for name in names}


def _to_new_events(
    log: EventLog, events: Sequence[Any], at: datetime | None, metadata: Mapping[str, Any]
) -> list[NewEvent]:
    out = []
    for ev in events:
        spec = log.registry.spec_for(ev)
        out.append(NewEvent(spec.name, _payload_dict(ev), occurred_at=at, metadata=dict(metadata)))
    return out


def handle(
    log: EventLog,
    decider: Decider[C, Any, S],
    stream_id: str,
    command: C,
    *,
    command_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    retries: int = 3,
) -> HandleResult[S]:
    """Load the state, decide, append with the version it was decided on.

    A repeated ``command_id`` returns the original events; a concurrent writer makes
    it decide again (up to ``retries`` times) unless ``expected_version`` is given.
    """
    return handle_many(
        log,
        decider,
        [(stream_id, command)],
        command_ids=[command_id],
        metadata=metadata,
        expected_version=expected_version,
        retries=retries,
        raise_errors=True,
    )[0]


def handle_many(
    log: EventLog,
    decider: Decider[C, Any, S],
    commands: Sequence[tuple[str, C]],
    *,
    command_ids: Sequence[str | None] | None = None,
    metadata: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    retries: int = 3,
    raise_errors: bool = False,
    read_back: bool = True,
) -> list[HandleResult[S]]:
    """Group commit: decide many commands and append all their events in one commit.

    Each command sees the state left by earlier commands of the batch on the same
    stream. A business rule error fails only its own command (``result.error``)
    unless ``raise_errors`` is set.
    """
    from eventlog.log import AppendRequest

    ids = list(command_ids) if command_ids is not None else [None] * len(commands)
    # A state this log handle decided itself is used without asking the tail whether the
    # stream moved since: the append checks the version anyway, and should another writer
    # have moved it, the conflict sends this call round again with states read afresh
    # (a round that does not count against ``retries``). A caller's own expected
    # version is checked against the state it was decided on, so then every state is read.
    trust_cache = expected_version is None
    attempt = 0
    while True:
        guessed: set[str] = set()
        results: list[HandleResult[S] | None] = [None] * len(commands)
        states: dict[str, tuple[int, S]] = {}
        pending: list[tuple[int, AppendRequest]] = []
        pending_streams: set[str] = set()
        for i, (stream_id, command) in enumerate(commands):
            cid = ids[i]
            if cid is not None:
                hit = log.tail.command(cid)
                if hit is not None:
                    events = log.events_at(range(hit[1], hit[2] + 1))
                    results[i] = HandleResult(stream_id, events, None, duplicate=True)
                    continue
            if stream_id not in states:
                known = log.known_state(decider, stream_id) if trust_cache else None
                if known is not None:
                    states[stream_id] = known
                    guessed.add(stream_id)
                else:
                    states[stream_id] = load_state(log, decider, stream_id)
            version, state = states[stream_id]
            try:
                new = decider.decide(command, state)
            except LedgerLakeError as exc:
                if raise_errors:
                    raise
                results[i] = HandleResult(stream_id, [], state, error=exc)
                continue
            if not new:
                results[i] = HandleResult(stream_id, [], state)
                continue
            after = fold(decider, new, state)
            meta = dict(metadata or {})
            if cid is not None:
                meta["command_id"] = cid
            meta.setdefault("command", type(command).__name__)
            first_in_batch = stream_id not in pending_streams
            pending_streams.add(stream_id)
            expected: ExpectedVersion = version if first_in_batch else ANY
            if expected_version is not None and first_in_batch:
                expected = expected_version
            pending.append(
                (
                    i,
                    AppendRequest(
                        stream_id,
                        _to_new_events(log, new, decider.command_time(command), meta),
                        expected_version=expected,
                        stream_type=decider.stream_type,
                        command_id=cid,
                    ),
                )
            )
            states[stream_id] = (version + len(new), after)
        if not pending:
            return [r for r in results if r is not None]
        # the stored write-model state is the one after a stream's last command of the batch
        last: dict[str, int] = {req.stream_id: k for k, (_, req) in enumerate(pending)}
        for sid, k in last.items():
            i, req = pending[k]
            state_json = decider.state_to_json(states[sid][1])
            pending[k] = (
                i,
                AppendRequest(
                    req.stream_id,
                    req.events,
                    req.expected_version,
                    req.stream_type,
                    req.command_id,
                    state_json,
                ),
            )
        try:
            appended = log.append_many([req for _, req in pending], remember=read_back)
        except ConcurrencyError:
            if guessed:  # a kept state was behind another writer: read them all again
                for sid in guessed:
                    log.forget_state(sid)
                trust_cache = False
                continue
            if expected_version is not None or attempt == retries:
                raise
            attempt += 1
            continue
        for (_, req), res in zip(pending, appended, strict=True):
            version, state = states[req.stream_id]
            if not res.duplicate and res.last_version == version:
                log.cache_state(decider, req.stream_id, version, state)
        for (i, req), res in zip(pending, appended, strict=True):
            events = (
                log.events_at(range(res.first_position, res.last_position + 1)) if read_back else []
            )
            results[i] = HandleResult(
                req.stream_id,
                events,
                states[req.stream_id][1],
                append=res,
                duplicate=res.duplicate,
            )
        return [r for r in results if r is not None]
