"""The server's lake: group commit of concurrent commands, and state folded from the log."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eventlog.errors import RuleError
from pipelines.serve_lake import ServedLake, parse_command
from tests.support.served import build_served_lake

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def create(order_id: str) -> dict[str, Any]:
    return {
        "command": "CreateOrder",
        "order_id": order_id,
        "customer_id": "c-1",
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "channel": "web",
    }


def note(order_id: str, i: int) -> dict[str, Any]:
    return {"command": "AddCustomerNote", "order_id": order_id, "author": "a", "note": f"n{i}"}


def test_concurrent_commands_commit_together_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    served = ServedLake(build_served_lake(tmp_path / "lake", vectors=False))
    try:
        for n in range(4):
            served.handle(parse_command(create(f"o-{n}"), None, NOW))
        start = served.head()
        answers: dict[tuple[int, int], Any] = {}
        errors: list[BaseException] = []

        def client(n: int) -> None:
            for i in range(25):
                try:
                    cid = f"k-{n}-{i}"
                    answers[n, i] = served.handle(parse_command(note(f"o-{n}", i), cid, NOW))
                except BaseException as exc:  # collected: a thread's failure must fail the test
                    errors.append(exc)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert served.head() == start + 100
        for (n, i), result in answers.items():
            assert result.stream_id == f"o-{n}" and len(result.events) == 1
            assert result.events[0].payload["note"] == f"n{i}"
            assert result.events[0].metadata["command_id"] == f"k-{n}-{i}"
        for n in range(4):
            versions = [r.version for r in served.stream(f"o-{n}")]
            assert versions == list(range(1, 27))
        # a repeated key returns the first answer and appends nothing
        again = served.handle(parse_command(note("o-0", 0), "k-0-0", NOW))
        assert again.duplicate and again.events == answers[0, 0].events
        assert served.head() == start + 100
    finally:
        served.close()


def test_a_rule_error_fails_only_its_own_command(tmp_path: Path) -> None:
    served = ServedLake(build_served_lake(tmp_path / "lake", vectors=False))
    try:
        served.handle(parse_command(create("o-1"), None, NOW))
        before = served.head()
        refund = {"command": "IssueRefund", "order_id": "o-1", "amount_cents": 5, "reason": "x"}
        with pytest.raises(RuleError):
            served.handle(parse_command(refund, None, NOW))
        assert served.head() == before
        assert len(served.handle(parse_command(note("o-1", 1), None, NOW)).events) == 1
    finally:
        served.close()
