"""The JSON API of ``ledgerlake serve`` (docs/serve.md): commands, events, states, search."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from eventlog.envelope import parse_time, validate_stream_id
from eventlog.errors import InvalidInputError
from eventlog.orders.events import ORDER_EVENT_TYPES
from pipelines.serve_lake import (
    ServedLake,
    parse_command,
    sse_lines,
    with_idempotency_key,
)
from projections.search import MAX_K, validate_query

router = APIRouter(prefix="/api")

MAX_EVENTS = 10_000
MAX_POSITION = 2**62  # positions and versions are int64 in the log
FOLLOW_POLL_S = 0.2
FOLLOW_PAGE = 1_000
FOLLOW_KEEPALIVE_S = 15.0

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Becomes the command id: a repeated request returns the first result.",
        max_length=200,
    ),
]
Time = Annotated[str | None, Query(description="ISO 8601 with an offset, e.g. 2026-01-20T12:00Z")]
COMMAND_EXAMPLE = {
    "command": "AddItem",
    "order_id": "ord-1",
    "sku": "MUG-BLUE",
    "product_name": "Blue Mug",
    "quantity": 2,
    "unit_price_cents": 1250,
}
EVENTS_EXAMPLE = [
    {
        "stream_id": "ord-1",
        "type": "CustomerNoteAdded",
        "data": {"author": "customer", "note": "Please leave it at the door."},
        "expected_version": 3,
    }
]


def served_lake(request: Request) -> ServedLake:
    """The lake the app was made for."""
    lake = request.app.state.lake
    assert isinstance(lake, ServedLake)
    return lake


def query_time(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 query parameter with an offset, as UTC; None when absent."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None


@router.get("/health", summary="The server is up; the log's head position.")
def health(request: Request) -> dict[str, Any]:
    """Liveness and the head of the log."""
    return {"status": "ok", "head": served_lake(request).head()}


@router.post(
    "/commands",
    status_code=201,
    summary="Decide an Order command and record its events (the JSON of `ledgerlake handle`).",
    responses={200: {"description": "A repeated command id, or a command that changes nothing"}},
)
def post_command(
    request: Request,
    command: Annotated[dict[str, Any], Body(examples=[COMMAND_EXAMPLE])],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """201 with the new events; 200 for a repeat (same command id) or a no-op command."""
    parsed = parse_command(command, idempotency_key, datetime.now(UTC))
    result = served_lake(request).handle(parsed)
    body = {
        "order_id": result.stream_id,
        "duplicate": result.duplicate,
        "events": [e.to_json() for e in result.events],
    }
    status = 201 if result.events and not result.duplicate else 200
    return JSONResponse(body, status_code=status)


@router.post(
    "/events",
    status_code=201,
    summary="Append events atomically, with expected versions (the lines of `ledgerlake append`).",
)
def post_events(
    request: Request,
    events: Annotated[list[dict[str, Any]], Body(examples=[EVENTS_EXAMPLE], max_length=MAX_EVENTS)],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """All the events commit together or none does; consecutive events of a stream form one
    request, and an ``expected_version`` is checked just before its event."""
    from eventlog.orders.events import order_registry
    from pipelines.cli_log import parse_append_lines

    lines = [json.dumps(e) for e in events]
    requests = with_idempotency_key(parse_append_lines(lines, order_registry()), idempotency_key)
    out = served_lake(request).append(requests)
    return JSONResponse(out, status_code=201 if out["appended"] else 200)


@router.get("/streams/{stream_id}/events", summary="One stream's events, in version order.")
def stream_events(
    request: Request,
    stream_id: str,
    after_version: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
) -> dict[str, Any]:
    """The stream's events after ``after_version`` (empty for an unknown stream)."""
    records = served_lake(request).stream(stream_id, after_version)
    return {"stream_id": stream_id, "events": [r.to_json() for r in records]}


def _types(event_type: list[str] | None) -> list[str] | None:
    for t in event_type or []:
        if t not in ORDER_EVENT_TYPES:
            raise InvalidInputError(
                f"unknown event type {t!r}; expected one of {', '.join(ORDER_EVENT_TYPES)}"
            )
    return event_type or None


@router.get("/events", summary="The log from a position, in order.")
def read_events(
    request: Request,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Only events with position > after.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 1_000,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
) -> dict[str, Any]:
    """Up to ``limit`` events after ``after``; ``next_after`` continues the read."""
    records, head = served_lake(request).events(after, limit, _types(event_type))
    next_after = records[-1].position if records else after
    return {"events": [r.to_json() for r in records], "next_after": next_after, "head": head}


@router.get(
    "/events/follow",
    summary="A live follow of the log as server-sent events (id = position).",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def follow_events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
    idle_timeout: Annotated[
        float | None, Query(gt=0, le=86_400, description="End after this many idle seconds.")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Past events after ``after`` (or the Last-Event-ID a reconnecting client sends), then
    new ones as they commit; a comment line every 15 s keeps proxies from closing it."""
    lake = served_lake(request)
    types = _types(event_type)
    cursor = after
    if last_event_id is not None:
        if not last_event_id.isdigit() or int(last_event_id) > MAX_POSITION:
            raise InvalidInputError(f"Last-Event-ID must be a position, got {last_event_id!r}")
        cursor = int(last_event_id)

    async def stream() -> Any:
        nonlocal cursor
        loop = asyncio.get_running_loop()
        idle_since = quiet_since = loop.time()
        while not await request.is_disconnected():
            records, head = await run_in_threadpool(lake.events, cursor, FOLLOW_PAGE, types)
            if records:
                yield sse_lines(records)
            last = records[-1].position if records else 0
            # a short page read everything up to the head: skip the other types' events too
            moved = last if len(records) == FOLLOW_PAGE else max(head, last)
            if moved > cursor:
                cursor = moved  # past events of other types too: nothing to re-read
                idle_since = quiet_since = loop.time()
                if records:
                    continue
            now = loop.time()
            if idle_timeout is not None and now - idle_since >= idle_timeout:
                return
            if now - quiet_since >= FOLLOW_KEEPALIVE_S:
                quiet_since = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(FOLLOW_POLL_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


@router.get("/orders/{order_id}/state", summary="An order's state as of T, as known at K.")
def order_state(
    request: Request, order_id: str, as_of: Time = None, known_at: Time = None
) -> dict[str, Any]:
    """The fold of the order's events with occurred_at <= T (and recorded_at <= K);
    ``state`` is null when the order did not exist then. 404 for an unknown order."""
    validate_stream_id(order_id)
    at, known = query_time(as_of, "as_of"), query_time(known_at, "known_at")
    state = served_lake(request).state(order_id, at, known)
    return {
        "order_id": order_id,
        "as_of": at.isoformat() if at else None,
        "known_at": known.isoformat() if known else None,
        "state": state,
    }


@router.get("/search", summary="Semantic search over event sentences or order stories.")
def search_api(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2_000, description="Plain words.")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    level: Annotated[str, Query(pattern="^(events|orders)$")] = "events",
    event_type: Annotated[str | None, Query(alias="type")] = None,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    since: Time = None,
    until: Time = None,
    known_at: Time = None,
    hybrid: bool = False,
) -> dict[str, Any]:
    """The CLI's ``search``: every filter, hybrid (vector + full text), and known-at."""
    t_since, t_until = query_time(since, "since"), query_time(until, "until")
    t_known = query_time(known_at, "known_at")
    if customer is not None and any(ord(c) < 32 for c in customer):
        raise InvalidInputError("customer must not contain control characters")
    filters: dict[str, Any] = {
        "k": k,
        "level": level,
        "event_type": event_type,
        "since": t_since,
        "until": t_until,
        "known_at": t_known,
    }
    validate_query(q, **filters)
    hits = served_lake(request).search(q, customer=customer, hybrid=hybrid, **filters)
    return {"query": q, "hits": [h.to_json() for h in hits]}
