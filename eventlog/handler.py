"""The command handler: load the state, decide, append with the version it was decided on.

A ``CommandHandler`` runs one decider on one log. It owns the write-model state cache
(the states it decided, 10,000 streams at most, so a command on a stream it handled
needs no read) and the command-id look-ups (a repeated command id returns the original
events). The log stores nothing of the decider: it is given events, the expected
version, the command id and the state's JSON to keep beside the stream head.

``handle`` and ``handle_many`` are the one-off forms (a handler used once, no cache).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from eventlog.commit import Row, decided_rows
from eventlog.decider import Decider, HandleResult, fold
from eventlog.envelope import ANY, ExpectedVersion, records_from_batch
from eventlog.errors import ConcurrencyError, LedgerLakeError
from eventlog.log import EventLog
from eventlog.values import AppendRequest

C = TypeVar("C")
S = TypeVar("S")

STATE_CACHE = 10_000  # write-model states a handler keeps in memory


class CommandHandler(Generic[C, S]):
    """Runs ``decider`` on ``log``, keeping the states it decided (see the module docstring)."""

    def __init__(self, log: EventLog, decider: Decider[C, Any, S]) -> None:
        self.log = log
        self.decider = decider
        self._states: dict[str, tuple[int, S]] = {}  # stream id -> (version, state)

    # ---------------------------------------------------------------- states
    def load(self, stream_id: str) -> tuple[int, S]:
        """(version, state) of a stream: kept, or stored and folded up to the head."""
        version, text, state_version = self.log.stream_state_text(stream_id)
        return self._state_from(stream_id, version, text, state_version)

    def _load_many(self, stream_ids: list[str], states: dict[str, tuple[int, S]]) -> None:
        """``load`` of many streams, their stored rows read in one query."""
        if len(stream_ids) < 2 or self.log.read_only:
            for sid in stream_ids:
                states[sid] = self.load(sid)
            return
        stored = self.log.stream_states_text(stream_ids)
        for sid in stream_ids:
            version, text, state_version = stored.get(sid, (0, None, 0))
            states[sid] = self._state_from(sid, version, text, state_version)

    def _state_from(
        self, stream_id: str, version: int, text: str | None, state_version: int
    ) -> tuple[int, S]:
        log, decider = self.log, self.decider
        kept = self._states.get(stream_id)
        if kept is not None and kept[0] == version:  # decided here: the same state, decoded
            return kept
        if text is None:
            state, state_version = decider.initial(stream_id), 0
        else:
            state = decider.state_from_json(log.shredder.open_state(stream_id, json.loads(text)))
        if version > state_version:
            table = log.read_stream(stream_id, after_version=state_version)
            for rec in records_from_batch(table):
                payload = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
                state = decider.evolve(state, payload)
        return version, state

    def _keep(self, stream_id: str, version: int, state: S) -> None:
        self._states.pop(stream_id, None)
        self._states[stream_id] = (version, state)
        if len(self._states) > STATE_CACHE:
            del self._states[next(iter(self._states))]

    # ---------------------------------------------------------------- commands
    def handle(
        self,
        stream_id: str,
        command: C,
        *,
        command_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        retries: int = 3,
    ) -> HandleResult[S]:
        """Decide one command and append its events; a business "no" raises.

        A repeated ``command_id`` returns the original events; a concurrent writer makes
        it decide again (up to ``retries`` times) unless ``expected_version`` is given.
        """
        return self.handle_many(
            [(stream_id, command)],
            command_ids=[command_id],
            metadata=metadata,
            expected_version=expected_version,
            retries=retries,
            raise_errors=True,
        )[0]

    def handle_many(
        self,
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
        log, decider = self.log, self.decider
        ids = list(command_ids) if command_ids is not None else [None] * len(commands)
        # A state this handler decided itself is used without asking the tail whether the
        # stream moved since: the append checks the version anyway, and should another
        # writer have moved it, the conflict sends this call round again with states read
        # afresh (a round that does not count against ``retries``). A caller's own
        # expected version is checked against the state it was decided on, so then every
        # state is read.
        trust_kept = expected_version is None
        attempt = 0
        while True:
            guessed: set[str] = set()
            results: list[HandleResult[S] | None] = [None] * len(commands)
            states: dict[str, tuple[int, S]] = {}
            to_load: list[str] = []
            for stream_id, _ in commands:
                if stream_id in states or stream_id in to_load:
                    continue
                kept = self._states.get(stream_id) if trust_kept else None
                if kept is not None:
                    states[stream_id] = kept
                    guessed.add(stream_id)
                else:
                    to_load.append(stream_id)
            self._load_many(to_load, states)
            # (command index, stream id, events, expected version, command id)
            decided: list[tuple[int, str, list[Row], ExpectedVersion, str | None]] = []
            pending_streams: set[str] = set()
            for i, (stream_id, command) in enumerate(commands):
                cid = ids[i]
                if cid is not None:
                    hit = log.command(cid)
                    if hit is not None:
                        events = log.events_at(range(hit[1], hit[2] + 1))
                        results[i] = HandleResult(stream_id, events, None, duplicate=True)
                        continue
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
                rows = decided_rows(
                    log, decider.stream_type, new, decider.command_time(command), meta
                )
                decided.append((i, stream_id, rows, expected, cid))
                states[stream_id] = (version + len(new), after)
            if not decided:
                return [r for r in results if r is not None]
            # the stored write-model state is the one after a stream's last command of the batch
            last = {sid: k for k, (_, sid, _, _, _) in enumerate(decided)}
            requests = [
                AppendRequest(
                    sid,
                    (),  # the events are the rows below
                    expected,
                    decider.stream_type,
                    command_id=cid,
                    state=decider.state_to_json(states[sid][1]) if last[sid] == k else None,
                )
                for k, (_, sid, _, expected, cid) in enumerate(decided)
            ]
            try:
                appended = log.append_many(
                    requests, remember=read_back, rows=[rows for _, _, rows, _, _ in decided]
                )
            except ConcurrencyError:
                if guessed:  # a kept state was behind another writer: read them all again
                    for sid in guessed:
                        self._states.pop(sid, None)
                    trust_kept = False
                    continue
                if expected_version is not None or attempt == retries:
                    raise
                attempt += 1
                continue
            for req, res in zip(requests, appended, strict=True):
                version, state = states[req.stream_id]
                if not res.duplicate and res.last_version == version:
                    self._keep(req.stream_id, version, state)
            for (i, *_), req, res in zip(decided, requests, appended, strict=True):
                events = (
                    log.events_at(range(res.first_position, res.last_position + 1))
                    if read_back
                    else []
                )
                results[i] = HandleResult(
                    req.stream_id,
                    events,
                    states[req.stream_id][1],
                    append=res,
                    duplicate=res.duplicate,
                )
            return [r for r in results if r is not None]


def load_state(log: EventLog, decider: Decider[Any, Any, S], stream_id: str) -> tuple[int, S]:
    """(version, state) of a stream from its stored state, folding only unseen events."""
    return CommandHandler(log, decider).load(stream_id)


def handle(
    log: EventLog,
    decider: Decider[C, Any, S],
    stream_id: str,
    command: C,
    **options: Any,
) -> HandleResult[S]:
    """One command, once (``CommandHandler.handle`` with a handler used once)."""
    return CommandHandler(log, decider).handle(stream_id, command, **options)


def handle_many(
    log: EventLog, decider: Decider[C, Any, S], commands: Sequence[tuple[str, C]], **options: Any
) -> list[HandleResult[S]]:
    """Group commit, once (``CommandHandler.handle_many`` with a handler used once)."""
    return CommandHandler(log, decider).handle_many(commands, **options)
