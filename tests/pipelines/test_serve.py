"""`ledgerlake serve` through its HTTP client: every endpoint, its errors, and nothing
written on a rejected request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from eventlog.errors import IntegrityError, InvalidInputError, RuleError
from eventlog.orders.log import reading
from pipelines.cli import app as cli_app
from pipelines.serve_app import ServeSettings, check_bind, create_app, status_for
from projections.search import search
from projections.temporal import state_as_of
from tests.support.served import build_served_lake, copy_lake

TOKEN = "s3cret-token-for-tests"
NEW_ORDER = {
    "command": "CreateOrder",
    "order_id": "ord-new-1",
    "customer_id": "c-9",
    "customer_name": "Grace Hopper",
    "customer_email": "grace@example.com",
    "currency": "EUR",
    "channel": "web",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_served_lake(tmp_path_factory.mktemp("served") / "lake", warehouse=True)


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Path:
    return copy_lake(template, tmp_path / "lake")


@pytest.fixture
def client(lake: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ServeSettings(lake, max_body_bytes=4_096))) as c:
        yield c


def head(client: TestClient) -> int:
    value = client.get("/api/health").json()["head"]
    assert isinstance(value, int)
    return value


def some_order(lake: Path, min_events: int = 5) -> str:
    with reading(lake) as log:
        table = log.read_all(columns=["stream_id", "version"])
    counts: dict[str, int] = {}
    for sid in table.column("stream_id").to_pylist():
        counts[sid] = counts.get(sid, 0) + 1
    return next(sid for sid in sorted(counts) if counts[sid] >= min_events)


def assert_error(response: Any, status: int, kind: str, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind
    assert message in body["message"]


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "head": head(client)}
    spec = client.get("/openapi.json").json()
    assert {"/api/commands", "/api/events", "/api/search", "/api/events/follow"} <= set(
        spec["paths"]
    )


def test_command_is_recorded_and_an_idempotency_key_repeat_returns_it(client: TestClient) -> None:
    before = head(client)
    key = {"Idempotency-Key": "create-ord-new-1"}
    first = client.post("/api/commands", json=NEW_ORDER, headers=key)
    assert first.status_code == 201, first.text
    events = first.json()["events"]
    assert [e["event_type"] for e in events] == ["OrderCreated"]
    assert events[0]["metadata"]["command_id"] == "create-ord-new-1"
    again = client.post("/api/commands", json=NEW_ORDER, headers=key)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["events"] == events
    assert head(client) == before + 1
    stream = client.get("/api/streams/ord-new-1/events").json()["events"]
    assert [e["position"] for e in stream] == [before + 1]


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        ({"command": "Explode", "order_id": "o"}, 400, "InvalidCommandError", "unknown command"),
        ({**NEW_ORDER, "extra": 1}, 400, "InvalidCommandError", "unknown fields extra"),
        ({**NEW_ORDER, "order_id": "a/b"}, 400, "InvalidStreamIdError", "must not contain"),
        ({**NEW_ORDER, "expected_version": -1}, 400, "InvalidInputError", "expected_version"),
        ([1, 2], 422, "InvalidRequest", "body"),
    ],
)
def test_bad_commands_are_rejected_and_write_nothing(
    client: TestClient, body: Any, status: int, kind: str, message: str
) -> None:
    before = head(client)
    assert_error(client.post("/api/commands", json=body), status, kind, message)
    assert head(client) == before


def test_business_rule_is_422_with_its_type_and_conflict_is_409(
    client: TestClient, lake: Path
) -> None:
    assert client.post("/api/commands", json=NEW_ORDER).status_code == 201
    before = head(client)
    refund = {"command": "IssueRefund", "order_id": "ord-new-1", "amount_cents": 100, "reason": "x"}
    response = client.post("/api/commands", json=refund)
    assert response.status_code == 422, response.text
    assert response.json()["exit_code"] == 4 and response.json()["error"] != "RuleError"
    stale = {**NEW_ORDER, "command": "AddCustomerNote", "expected_version": 0}
    for key in ("customer_id", "customer_name", "customer_email", "currency", "channel"):
        stale.pop(key)
    stale |= {"author": "customer", "note": "hello"}
    conflict = client.post("/api/commands", json=stale)
    assert_error(conflict, 409, "ConcurrencyError", "version 1")
    assert conflict.json()["actual"] == 1
    assert head(client) == before


def test_malformed_and_oversized_bodies(client: TestClient) -> None:
    before = head(client)
    bad = client.post(
        "/api/commands", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422 and bad.json()["message"]
    huge = {**NEW_ORDER, "customer_name": "x" * 10_000}
    assert_error(client.post("/api/commands", json=huge), 413, "BodyTooLarge", "4096 bytes")
    assert head(client) == before


def test_events_append_atomically_with_expected_versions(client: TestClient) -> None:
    assert client.post("/api/commands", json=NEW_ORDER).status_code == 201
    before = head(client)
    note = {"author": "support", "note": "Called the customer."}
    ok = [
        {"stream_id": "ord-new-1", "type": "CustomerNoteAdded", "data": note, "expected_version": 1}
    ]
    key = {"Idempotency-Key": "notes-1"}
    response = client.post("/api/events", json=ok, headers=key)
    assert response.status_code == 201, response.text
    assert response.json()["appended"] == 1 and response.json()["head"] == before + 1
    repeat = client.post("/api/events", json=ok, headers=key)
    assert repeat.status_code == 200 and repeat.json()["appended"] == 0
    mixed = [
        {"stream_id": "ord-other", "type": "CustomerNoteAdded", "data": note},
        {**ok[0], "expected_version": 1},  # stale: the stream is at 2 now
    ]
    assert_error(client.post("/api/events", json=mixed), 409, "ConcurrencyError", "version 2")
    wrong = [{"stream_id": "ord-new-1", "type": "CustomerNoteAdded", "data": {"note": 3}}]
    assert_error(client.post("/api/events", json=wrong), 400, "PayloadSchemaError", "line 1")
    assert_error(client.post("/api/events", json=[]), 400, "InvalidInputError", "no events")
    assert head(client) == before + 1


def test_read_the_log_from_a_position(client: TestClient) -> None:
    page = client.get("/api/events", params={"after": 10, "limit": 5}).json()
    assert [e["position"] for e in page["events"]] == [11, 12, 13, 14, 15]
    assert page["next_after"] == 15 and page["head"] == head(client)
    typed = client.get("/api/events", params={"type": "OrderCreated", "limit": 3}).json()
    assert {e["event_type"] for e in typed["events"]} == {"OrderCreated"}
    assert_error(client.get("/api/events", params={"type": "Nope"}), 400, "InvalidInputError", "")
    assert client.get("/api/events", params={"after": -1}).status_code == 422
    assert client.get("/api/streams/nope/events").json()["events"] == []


def test_follow_streams_server_sent_events(client: TestClient) -> None:
    last = head(client)
    with client.stream(
        "GET", "/api/events/follow", params={"after": last - 2, "idle_timeout": 0.3}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids == [last - 1, last]
    data = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [d["position"] for d in data] == ids
    with client.stream(
        "GET",
        "/api/events/follow",
        params={"idle_timeout": 0.3},
        headers={"Last-Event-ID": str(last - 1)},
    ) as response:
        text = "".join(response.iter_text())
    assert [line for line in text.splitlines() if line.startswith("id: ")] == [f"id: {last}"]
    bad = client.get("/api/events/follow", headers={"Last-Event-ID": "9" * 30})
    assert_error(bad, 400, "InvalidInputError", "Last-Event-ID")


def test_state_as_of_and_known_at_equals_the_warehouse(client: TestClient, lake: Path) -> None:
    order_id = some_order(lake)
    events = client.get(f"/api/streams/{order_id}/events").json()["events"]
    moments = sorted({e["occurred_at"] for e in events} | {e["recorded_at"] for e in events})
    first = datetime.fromisoformat(moments[0])
    for at in [first - timedelta(seconds=1), *map(datetime.fromisoformat, moments)]:
        for known in (None, at, at + timedelta(hours=1)):
            params = {"as_of": at.isoformat()} | ({"known_at": known.isoformat()} if known else {})
            got = client.get(f"/api/orders/{order_id}/state", params=params)
            assert got.status_code == 200, got.text
            assert got.json()["state"] == state_as_of(lake, order_id, at, known)
    assert client.get(f"/api/orders/{order_id}/state").json()["state"]["version"] == len(events)
    assert_error(client.get("/api/orders/ord-none/state"), 404, "UnknownOrderError", "unknown")
    bad = client.get(f"/api/orders/{order_id}/state", params={"as_of": "2026-01-01T00:00:00"})
    assert_error(bad, 400, "InvalidInputError", "no timezone")


def test_search_matches_the_in_process_call_with_every_filter(
    client: TestClient, lake: Path
) -> None:
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    cases: list[dict[str, Any]] = [
        {},
        {"level": "orders"},
        {"type": "CustomerNoteAdded", "since": t0.isoformat()},
        {"until": (t0 + timedelta(days=20)).isoformat(), "hybrid": "true"},
        {"known_at": (t0 + timedelta(days=10)).isoformat(), "level": "orders"},
        {"customer": "nobody"},
    ]
    for extra in cases:
        got = client.get("/api/search", params={"q": "parcel damaged", "k": 4, **extra})
        assert got.status_code == 200, got.text
        kwargs: dict[str, Any] = {
            "k": 4,
            "level": extra.get("level", "events"),
            "event_type": extra.get("type"),
            "customer": extra.get("customer"),
            "hybrid": "hybrid" in extra,
        }
        for name in ("since", "until", "known_at"):
            if name in extra:
                kwargs[name] = datetime.fromisoformat(extra[name])
        want = [h.to_json() for h in search(lake, "parcel damaged", **kwargs)]
        assert got.json()["hits"] == want
    assert client.get("/api/search", params={"q": "x", "customer": "nobody"}).json()["hits"] == []


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"q": " "}, 400, "query is empty"),
        ({"q": "x", "k": 0}, 422, "k"),
        ({"q": "x", "level": "nope"}, 422, "level"),
        ({"q": "x", "type": "Exploded"}, 400, "unknown event type"),
        ({"q": "x", "since": "yesterday"}, 400, "cannot parse time"),
        ({"q": "x", "level": "orders", "type": "OrderCreated"}, 400, "--type filters events"),
        ({"q": "x", "since": "2026-02-01T00:00Z", "until": "2026-01-01T00:00Z"}, 400, "after"),
    ],
)
def test_bad_search_input(
    client: TestClient, params: dict[str, Any], status: int, message: str
) -> None:
    response = client.get("/api/search", params=params)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]


def test_a_lake_without_vectors_says_how_to_build_them(tmp_path: Path) -> None:
    lake = build_served_lake(tmp_path / "lake", vectors=False)
    with TestClient(create_app(ServeSettings(lake))) as c:
        assert_error(
            c.get("/api/search", params={"q": "x"}), 400, "VectorStoreMissingError", "embed"
        )


def test_the_page_searches_and_shows_an_order(client: TestClient, lake: Path) -> None:
    page = client.get("/", params={"q": "parcel damaged", "k": 3})
    assert page.status_code == 200 and "<form id=search>" in page.text
    assert page.text.count("class=order>") == 3
    fragment = client.get("/results", params={"q": "refund", "type": "RefundIssued"}).text
    assert "RefundIssued" in fragment and "<html" not in fragment
    assert "unknown event type" in client.get("/results", params={"q": "x", "type": "No"}).text
    order_id = some_order(lake)
    order = client.get(f"/orders/{order_id}")
    assert order.status_code == 200 and "id=as-of" in order.text and "id=timeline" in order.text
    assert order.text.count("<tr data-occurred=") == len(
        client.get(f"/api/streams/{order_id}/events").json()["events"]
    )
    assert client.get("/orders/ord-none").status_code == 404


def test_the_page_escapes_what_it_is_given(client: TestClient) -> None:
    evil = "<script>alert(1)</script>"
    page = client.get("/", params={"q": evil, "customer": evil})
    assert page.status_code == 200 and evil not in page.text
    assert evil not in client.get(f"/orders/{evil}").text
    odd = "<img src=x onerror=alert(1)>"
    assert client.post("/api/commands", json={**NEW_ORDER, "order_id": odd}).status_code == 201
    order = client.get("/orders/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert order.status_code == 200 and odd not in order.text
    assert "&lt;img src=x" in order.text and '"\\u003cimg src=x' in order.text


def test_a_token_guards_every_endpoint(lake: Path) -> None:
    with TestClient(create_app(ServeSettings(lake, token=TOKEN))) as c:
        for path in ("/api/health", "/", "/openapi.json", "/orders/x"):
            denied = c.get(path)
            assert denied.status_code == 401 and denied.json()["message"]
        assert c.get("/api/health", headers={"Authorization": "Bearer nope"}).status_code == 401
        before = head_with(c)
        rejected = c.post("/api/commands", json=NEW_ORDER)
        assert rejected.status_code == 401 and head_with(c) == before
        assert c.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
        assert c.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200


def head_with(c: TestClient) -> int:
    value = c.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()["head"]
    assert isinstance(value, int)
    return value


def test_binding_beyond_loopback_needs_a_token(lake: Path) -> None:
    with pytest.raises(InvalidInputError, match="--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(InvalidInputError, match="16 characters"):
        check_bind("0.0.0.0", "short")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    result = CliRunner().invoke(cli_app, ["--lake", str(lake), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--token" in result.stderr
    missing = CliRunner().invoke(cli_app, ["--lake", str(lake / "none"), "serve"])
    assert missing.exit_code == 2 and "no lake" in missing.stderr


def test_exit_codes_map_to_statuses() -> None:
    assert status_for(InvalidInputError("x")) == 400
    assert status_for(RuleError("x")) == 422
    assert status_for(IntegrityError("x")) == 500
