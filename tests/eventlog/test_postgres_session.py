"""The PostgreSQL tail's pipelined writes: read-your-writes inside a transaction, and a
queued write that fails at COMMIT commits nothing and leaves the tail usable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from eventlog.errors import StorageError
from eventlog.tails.postgres import PostgresTail
from tests.support.postgres import PostgresServer


@pytest.fixture
def tail(postgres: PostgresServer) -> Iterator[PostgresTail]:
    tail = PostgresTail(postgres.url(), f"session_{uuid.uuid4().hex[:8]}")
    yield tail
    tail.close()


def test_a_read_inside_the_transaction_sees_the_queued_writes(tail: PostgresTail) -> None:
    with tail.write():
        tail.insert_commands([("cmd-1", "o-1", 1, 2)])
        tail.set_metas({"head": 2})
        assert tail.command("cmd-1") == ("o-1", 1, 2)
        assert tail.meta("head") == 2
        tail.insert_commands([("cmd-2", "o-2", 3, 3)])
    assert tail.command("cmd-2") == ("o-2", 3, 3)
    assert tail.metas()["head"] == 2


def test_a_queued_write_failing_at_commit_commits_nothing(tail: PostgresTail) -> None:
    with tail.write():
        tail.insert_commands([("cmd-1", "o-1", 1, 1)])
        tail.set_metas({"head": 1})
    with pytest.raises(StorageError, match="the transaction failed"), tail.write():
        tail.set_metas({"head": 5})
        tail.insert_commands([("cmd-2", "o-2", 2, 2), ("cmd-1", "o-1", 3, 3)])  # duplicate key
        tail.upsert_streams([("o-2", "order", 1, None, 0)])
    assert tail.metas()["head"] == 1
    assert tail.command("cmd-2") is None and tail.stream_row("o-2") is None
    with tail.write():  # the connection is usable again
        tail.set_metas({"head": 2})
    assert tail.meta("head") == 2
