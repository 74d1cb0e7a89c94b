"""The append commit: requests checked before the lock, then one tail transaction.

1. Before the lock: stream ids, expected versions, event types, payloads, times and
   metadata are checked and encoded (a rejected request writes nothing).
2. Under the writer lock (``EventLog._write``): command ids and client event ids are
   looked up (a repeat returns the original result), every expected version is checked,
   positions, versions and one ``recorded_at`` are assigned, and the rows, stream heads,
   states, command ids and counters are written; the tail commits. Large appends go
   straight to a part instead (see ``eventlog.maintenance.write_bulk``).

A little over 400 lines on purpose: the commit's steps read top to bottom in one module,
and splitting them would put the writer lock's invariants in two places.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventlog.codec import check_depth, dumps
from eventlog.encrypt import encrypt_requests
from eventlog.envelope import (
    ANY,
    NO_STREAM,
    NewEvent,
    RecordedEvent,
    from_micros,
    to_micros,
    utc,
    validate_expected_version,
    validate_stream_id,
)
from eventlog.errors import ConcurrencyError, DuplicateEventError, InvalidInputError
from eventlog.tails import TailRow, event_hash
from eventlog.values import AppendRequest, AppendResult

if TYPE_CHECKING:
    from eventlog.log import EventLog


@dataclass(slots=True)
class Row:
    """One event of a request, checked and encoded, before its position is known."""

    event_id: str
    event_type: str
    schema_version: int
    occurred_at: int
    payload: str
    metadata: str
    client_id: bool
    command_id: str | None
    decoded: tuple[dict[str, Any], dict[str, Any]]  # payload and metadata, as dicts


_SCALARS = (str, int, float, bool, type(None))
Decoded = tuple[dict[str, Any] | None, dict[str, Any] | None]


def as_stored(value: dict[str, Any]) -> dict[str, Any] | None:
    """What ``json.loads(dumps(value))`` gives, cheaply: a key-sorted copy of a flat object.

    None when a value nests (the stored text is decoded instead).
    """
    if not all(isinstance(v, _SCALARS) for v in value.values()):
        return None
    return {k: value[k] for k in sorted(value)}


def record_from_row(row: TailRow, decoded: Decoded = (None, None)) -> RecordedEvent:
    """A tail row as a RecordedEvent (decoded dicts, when given, are copied, not parsed)."""
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


def prepare(log: EventLog, req: AppendRequest) -> list[Row]:
    """Check and encode one request's events (before the lock; raises on bad input).

    The events of one command usually share their metadata object and time: each is
    checked and encoded once per run of events that share it, not once per event.
    """
    check_request(req)
    if not req.events:
        return []
    stream_type = log.stream_type_of(req)
    registry = log.registry
    rows = []
    last_meta: tuple[object, dict[str, Any], str] = (None, {}, "")
    last_time: tuple[datetime | None, int] = (None, 0)
    for ev in req.events:
        if not isinstance(ev, NewEvent):
            raise InvalidInputError(f"expected NewEvent values, got {type(ev).__name__}")
        spec = registry.spec(ev.event_type)
        if spec.stream_type != stream_type:
            raise InvalidInputError(
                f"{ev.event_type} belongs to stream type {spec.stream_type!r}, not {stream_type!r}"
            )
        payload = registry.validate(ev.event_type, ev.payload, ev.schema_version)
        if ev.occurred_at is None:
            occurred = to_micros(log.clock())
        elif ev.occurred_at is last_time[0]:
            occurred = last_time[1]
        else:
            occurred = to_micros(utc(ev.occurred_at))
            last_time = (ev.occurred_at, occurred)
        if ev.metadata is last_meta[0]:  # the same object (one command's events share it)
            metadata, metadata_text = last_meta[1], last_meta[2]
        else:
            metadata = _checked_metadata(ev.metadata, req.command_id)
            metadata_text = dumps(metadata)
            last_meta = (ev.metadata, metadata, metadata_text)
        if ev.event_id is not None:
            try:
                uuid.UUID(ev.event_id)
            except (ValueError, AttributeError, TypeError):
                raise InvalidInputError(f"event_id {ev.event_id!r} is not a UUID") from None
        command_id = metadata.get("command_id")
        rows.append(
            Row(
                event_id=ev.event_id or log.id_factory(),
                event_type=ev.event_type,
                schema_version=spec.schema_version,
                occurred_at=occurred,
                payload=dumps(payload),
                metadata=metadata_text,
                client_id=ev.event_id is not None,
                command_id=str(command_id) if command_id else None,
                decoded=(payload, metadata),
            )
        )
    return rows


def check_request(req: AppendRequest) -> None:
    """Check a request's stream id and expected version (bad input raises)."""
    validate_stream_id(req.stream_id)
    validate_expected_version(req.expected_version)


def decided_rows(
    log: EventLog,
    stream_type: str,
    payloads: Sequence[Any],
    at: datetime | None,
    metadata: dict[str, Any],
) -> list[Row]:
    """The rows ``prepare`` makes of one command's events, straight from its payload objects.

    A command handler gives the payload dataclasses it decided (each checked once by exact
    types, then encoded once) and one metadata dict for all of them, made for this command
    and kept as it is (checked and encoded once), instead of a ``NewEvent`` per event.
    """
    registry = log.registry
    if any(isinstance(v, dict | list) for v in metadata.values()):
        check_depth(metadata, "metadata")
    checked = metadata  # the handler's own dict, made for this command: no copy needed
    metadata_text = dumps(checked)
    command_id = checked.get("command_id")
    command_id = str(command_id) if command_id else None
    occurred = to_micros(utc(at)) if at is not None else None
    rows = []
    for payload in payloads:
        spec, data = registry.payload_of(payload)
        if spec.stream_type != stream_type:
            raise InvalidInputError(
                f"{spec.name} belongs to stream type {spec.stream_type!r}, not {stream_type!r}"
            )
        rows.append(
            Row(
                event_id=log.id_factory(),
                event_type=spec.name,
                schema_version=spec.schema_version,
                occurred_at=occurred if occurred is not None else to_micros(log.clock()),
                payload=dumps(data),
                metadata=metadata_text,
                client_id=False,
                command_id=command_id,
                decoded=(data, checked),
            )
        )
    return rows


def _checked_metadata(given: object, command_id: str | None) -> dict[str, Any]:
    """An event's metadata, checked, as a copy with the request's command id added."""
    if not isinstance(given, dict):
        raise InvalidInputError("metadata must be a JSON object")
    metadata = dict(given)
    if any(isinstance(v, dict | list) for v in metadata.values()):
        check_depth(metadata, "metadata")
    if command_id and "command_id" not in metadata:
        metadata["command_id"] = command_id
    return metadata


def command_id_of(req: AppendRequest, rows: list[Row]) -> str | None:
    """The request's command id: given, or carried in its first event's metadata."""
    if req.command_id:
        return req.command_id
    return rows[0].command_id if rows else None


def check_version(stream_id: str, expected: object, current: int) -> None:
    """Raise ConcurrencyError unless the stream is where the writer expects it."""
    if expected == ANY:
        return
    wanted = 0 if expected == NO_STREAM else expected
    if current != wanted:
        raise ConcurrencyError(stream_id, expected, current)


def result_for(log: EventLog, stream_id: str, first: int, last: int) -> AppendResult:
    """The result of an append already in the log (an idempotent repeat)."""
    known = log.events_at([first, last])
    return AppendResult(
        stream_id,
        first,
        last,
        known[0].version,
        known[-1].version,
        known[-1].recorded_at,
        duplicate=True,
    )


def already_done(log: EventLog, req: AppendRequest, rows: list[Row]) -> AppendResult | None:
    """The original result when this request repeats a command id or its event ids."""
    cid = command_id_of(req, rows)
    if cid:
        hit = log.tail.command(cid)
        if hit is not None:
            return result_for(log, hit[0], hit[1], hit[2])
    if rows and all(r.client_id for r in rows):
        positions = [log.tail.position_of_event(r.event_id) for r in rows]
        if all(p is not None for p in positions):
            known = log.events_at([p for p in positions if p is not None])
            same = [(e.event_id, e.stream_id, e.event_type) for e in known] == [
                (r.event_id, req.stream_id, r.event_type) for r in rows
            ]
            if same:
                return result_for(log, req.stream_id, known[0].position, known[-1].position)
    return None


def append_many(
    log: EventLog,
    requests: Sequence[AppendRequest],
    *,
    remember: bool = True,
    rows: Sequence[list[Row]] | None = None,
) -> list[AppendResult]:
    """``EventLog.append_many``: all requests in one commit, or none.

    ``rows``, one list per request, are its events already made by ``decided_rows``
    (the requests' own ``events`` are then not read).
    """
    if rows is None:
        prepared = [prepare(log, req) for req in requests]
    else:
        for sid in {req.stream_id for req in requests}:  # a batch's streams, once each
            validate_stream_id(sid)
        for req in requests:
            validate_expected_version(req.expected_version)
        prepared = list(rows)
    total = sum(len(rows) for rows in prepared)
    if total == 0:
        raise InvalidInputError("nothing to append: every request has an empty event list")
    encrypt_requests(log, [req.stream_id for req in requests], prepared)
    try:
        return _append_locked(log, requests, prepared, total, remember)
    except BaseException:
        log.shredder.drop_pending()  # bindings not written: look them up again next time
        raise


def _append_locked(
    log: EventLog,
    requests: Sequence[AppendRequest],
    prepared: list[list[Row]],
    total: int,
    remember: bool,
) -> list[AppendResult]:
    tail = log.tail
    with log._write():
        results: list[AppendResult | None] = [None] * len(requests)
        streams = [r.stream_id for r in requests]
        meta, versions = tail.metas_and_versions(streams)
        head = meta["head"]
        own_ids = any(row.client_id for rows in prepared for row in rows)
        if own_ids:
            log.heads.catch_up_index()
            meta = tail.metas()
        if meta["heads_head"] < meta["head"]:
            log.heads.catch_up(meta)
            versions = tail.stream_versions(streams)
        stored_versions = dict(versions)
        seen_ids: set[str] = set()
        seen_commands: set[str] = set()
        todo: list[int] = []
        cids = [
            command_id_of(req, req_rows) for req, req_rows in zip(requests, prepared, strict=True)
        ]
        for i, (req, req_rows) in enumerate(zip(requests, prepared, strict=True)):
            cid = cids[i]
            # only a command id or the writer's own event ids can make it a repeat
            done = already_done(log, req, req_rows) if cid or own_ids else None
            if done is not None:
                results[i] = done
                continue
            if cid is not None:
                if cid in seen_commands:
                    raise DuplicateEventError(f"command id {cid!r} appears twice in one append")
                seen_commands.add(cid)
            for row in req_rows:
                if row.event_id in seen_ids:
                    raise DuplicateEventError(f"event id {row.event_id} appears twice")
                seen_ids.add(row.event_id)
                if row.client_id:
                    pos = tail.position_of_event(row.event_id)
                    if pos is not None:
                        raise DuplicateEventError(
                            f"event id {row.event_id} is already in the log at position {pos}"
                        )
            current = versions.get(req.stream_id, 0)
            check_version(req.stream_id, req.expected_version, current)
            versions[req.stream_id] = current + len(req_rows)
            todo.append(i)
        if not todo:
            return [r for r in results if r is not None]
        now = to_micros(log.clock())
        recorded = max(now, meta["last_recorded_at"])
        recorded_at = from_micros(recorded)
        stypes = [log.stream_type_of(req) for req in requests]
        new_rows: list[TailRow] = []
        new_decoded: list[tuple[dict[str, Any], dict[str, Any]]] = []
        versions = stored_versions
        position = head
        for i in todo:
            req = requests[i]
            stype = stypes[i]
            first_pos, first_ver = position + 1, versions.get(req.stream_id, 0) + 1
            version = first_ver - 1
            for row in prepared[i]:
                position += 1
                version += 1
                new_rows.append(
                    (
                        position,
                        stype,
                        req.stream_id,
                        version,
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
            versions[req.stream_id] = version
            results[i] = AppendResult(
                req.stream_id, first_pos, position, first_ver, version, recorded_at
            )
        updates = {"head": position, "heads_head": position, "last_recorded_at": recorded}
        if total >= log.bulk_threshold:
            log.maintenance.seal_locked()
            log.maintenance.write_bulk(new_rows)
        else:
            tail.insert_tail(new_rows)
            # Event ids the log generated need no index entry now: only an append that
            # brings its own ids asks the index, and it catches the index up first.
            # Skipping it keeps a random B-tree page out of every command's commit.
            if meta["index_head"] == head:
                tail.insert_index(
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
            head_row = heads.setdefault(req.stream_id, [stypes[i], 0, None, 0])
            head_row[1] = res.last_version
            if req.state is not None:
                head_row[2], head_row[3] = req.state, res.last_version
        shredder = log.shredder
        tail.upsert_streams(
            [
                (
                    sid,
                    stype,
                    version,
                    dumps(shredder.seal_state(sid, state)) if state is not None else None,
                    state_version,
                )
                for sid, (stype, version, state, state_version) in heads.items()
            ]
        )
        if shredder.enabled:
            shredder.bind_pending()
        commands = []
        for i in todo:
            req, res = requests[i], results[i]
            assert res is not None
            cid = cids[i]
            if cid:
                commands.append((cid, req.stream_id, res.first_position, res.last_position))
        tail.insert_commands(commands)
        tail.set_metas(updates)
        must_seal = log.maintenance.must_seal(
            position - meta["sealed_head"], meta["sealed_head"], now
        )
    # committed rows are immutable: keep the last ones so handle() reads them back free,
    # and the tail's rows for the seal
    log.remember(new_rows, new_decoded if remember else None)
    if total < log.bulk_threshold:
        log.maintenance.keep_unsealed(new_rows)
    if must_seal:
        log.seal()
    return [r for r in results if r is not None]
