"""Vector projections in LanceDB: rows, incremental encoding, idempotent replay, model switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from eventlog.envelope import records_from_batch
from eventlog.errors import InvalidInputError
from eventlog.handler import handle
from eventlog.log import EventLog
from eventlog.orders.commands import AddCustomerNote, AddItem, CreateOrder
from eventlog.orders.decider import ORDER_DECIDER
from eventlog.orders.generate import generate
from projections.embeddings import HashingEmbedder
from projections.narratives import OrderFacts, add_fact, narrate, order_story
from projections.vector_store import (
    EVENT_NARRATIVES,
    ORDER_STORIES,
    VectorStore,
    VectorStoreMissingError,
    vectors_dir,
)
from projections.vectors import catch_up_vectors, rebuild_vectors, vector_lag

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def new_order(
    log: EventLog, order_id: str, customer: str = "c-new", note: str | None = None
) -> None:
    """Create an order with one item (and a note) through the real command handler."""
    handle(
        log,
        ORDER_DECIDER,
        order_id,
        CreateOrder(
            order_id=order_id,
            at=AT,
            customer_id=customer,
            customer_name="Nora Quist",
            customer_email="nora@example.com",
            currency="EUR",
            channel="web",
        ),
    )
    handle(
        log,
        ORDER_DECIDER,
        order_id,
        AddItem(
            order_id=order_id,
            at=AT,
            sku="LAMP-1",
            product_name="Desk Lamp",
            quantity=1,
            unit_price_cents=3999,
        ),
    )
    if note:
        add_note(log, order_id, note)


def add_note(log: EventLog, order_id: str, note: str, at: datetime = AT) -> None:
    """Write a customer note on an order."""
    handle(
        log,
        ORDER_DECIDER,
        order_id,
        AddCustomerNote(order_id=order_id, at=at, author="customer", note=note),
    )


def rows(lake: Path, name: str, key: str) -> list[dict[str, Any]]:
    """The aliased table's rows, sorted by key, vectors as lists."""
    store = VectorStore(lake, create=False)
    alias = store.require(name)
    table = store.open_table(alias.table).to_arrow()
    return sorted(table.to_pylist(), key=lambda r: r[key])


@pytest.fixture
def small(log: EventLog) -> EventLog:
    """A log with 25 generated orders."""
    generate(log, orders=25, days=5, seed=11)
    return log


def reference(log: EventLog) -> tuple[dict[int, str], dict[str, str]]:
    """Narratives per position and stories per order from a plain fold of the log."""
    facts: dict[str, OrderFacts] = {}
    texts: dict[int, str] = {}
    for rec in records_from_batch(log.read_all()):
        event = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
        before = facts.get(rec.stream_id, OrderFacts.initial(rec.stream_id))
        texts[rec.position] = narrate(event, before)
        facts[rec.stream_id] = add_fact(before, event)
    return texts, {oid: order_story(f) for oid, f in facts.items()}


def test_catch_up_writes_one_row_per_event_and_per_order(lake: Path, small: EventLog) -> None:
    emb = HashingEmbedder(32)
    reports = catch_up_vectors(small, VectorStore(lake), embedder=emb)
    head = small.head()
    assert [r.name for r in reports] == [EVENT_NARRATIVES, ORDER_STORIES]
    assert all(r.to_position == head and r.lag_events == 0 for r in reports)
    texts, stories = reference(small)
    events = rows(lake, EVENT_NARRATIVES, "position")
    assert [r["position"] for r in events] == list(range(1, head + 1))
    assert {r["position"]: r["text"] for r in events} == texts
    assert {r["model"] for r in events} == {"hashing-32"}
    assert len(events[0]["vector"]) == 32
    orders = rows(lake, ORDER_STORIES, "order_id")
    assert {r["order_id"]: r["text"] for r in orders} == stories
    first = events[0]
    assert first["customer_id"] and first["occurred_at"].tzinfo is not None
    assert emb.texts == head + len(stories)  # one chunk: each text encoded once
    alias = VectorStore(lake).require(EVENT_NARRATIVES)
    assert (alias.model, alias.dimension) == ("hashing-32", 32)


def test_incremental_catch_up_encodes_only_new_events_and_touched_stories(
    lake: Path, small: EventLog
) -> None:
    catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32))
    before = small.head()
    touched = sorted({r["order_id"] for r in rows(lake, ORDER_STORIES, "order_id")})[:2]
    add_note(small, touched[0], "please deliver after six")
    add_note(small, touched[1], "the lamp shade is dented")
    new_order(small, "o-fresh", note="gift for my aunt")
    new_events = small.head() - before
    assert new_events == 5

    emb = HashingEmbedder(32)
    events_report, stories_report = catch_up_vectors(small, VectorStore(lake), embedder=emb)
    assert events_report.events_applied == new_events
    assert events_report.extra["encoded"] == new_events
    assert stories_report.extra["encoded"] == 3  # two touched orders and the new one
    assert emb.texts == new_events + 3
    assert emb.calls <= 2
    texts, stories = reference(small)
    assert {r["position"]: r["text"] for r in rows(lake, EVENT_NARRATIVES, "position")} == texts
    assert {r["order_id"]: r["text"] for r in rows(lake, ORDER_STORIES, "order_id")} == stories

    again = HashingEmbedder(32)
    catch_up_vectors(small, VectorStore(lake), embedder=again)
    assert again.texts == 0


def test_replay_after_a_lost_checkpoint_leaves_the_same_rows(lake: Path, small: EventLog) -> None:
    catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32), chunk_events=40)
    first_events = rows(lake, EVENT_NARRATIVES, "position")
    first_stories = rows(lake, ORDER_STORIES, "order_id")
    # a crash between the data write and the checkpoint: the checkpoints are gone
    for path in vectors_dir(lake).glob("checkpoint.*.json"):
        path.unlink()
    emb = HashingEmbedder(32)
    catch_up_vectors(small, VectorStore(lake), embedder=emb, chunk_events=40)
    catch_up_vectors(small, VectorStore(lake), embedder=emb)
    assert rows(lake, EVENT_NARRATIVES, "position") == first_events
    assert rows(lake, ORDER_STORIES, "order_id") == first_stories
    assert emb.texts == 0  # texts unchanged: nothing re-encoded


def test_catch_up_in_small_batches_equals_a_rebuild(lake: Path, small: EventLog) -> None:
    catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32), chunk_events=7)
    batched = (rows(lake, EVENT_NARRATIVES, "position"), rows(lake, ORDER_STORIES, "order_id"))
    reports = rebuild_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32))
    assert all(r.rebuilt for r in reports)
    rebuilt = (rows(lake, EVENT_NARRATIVES, "position"), rows(lake, ORDER_STORIES, "order_id"))
    assert batched == rebuilt
    store = VectorStore(lake)
    assert store.require(EVENT_NARRATIVES).table.endswith("__v2")
    assert "event_narratives__hashing_32__v1" not in store.table_names()


def test_switching_models_builds_a_new_table_beside_the_old_then_switches(
    lake: Path, small: EventLog
) -> None:
    catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32))
    store = VectorStore(lake)
    old = store.require(EVENT_NARRATIVES)
    catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(48))
    new = store.require(EVENT_NARRATIVES)
    assert (new.model, new.dimension) == ("hashing-48", 48)
    assert new.table != old.table
    assert old.table in store.table_names()  # kept beside, to switch back without re-encoding
    assert len(rows(lake, EVENT_NARRATIVES, "position")[0]["vector"]) == 48
    back = HashingEmbedder(32)
    catch_up_vectors(small, VectorStore(lake), embedder=back)
    assert store.require(EVENT_NARRATIVES).table == old.table
    assert back.texts == 0


def test_vector_index_and_full_text_index_are_built(lake: Path, small: EventLog) -> None:
    reports = catch_up_vectors(
        small, VectorStore(lake), embedder=HashingEmbedder(32), index_threshold=50
    )
    assert set(reports[0].extra["indexes"]) == {"fts", "vector"}
    store = VectorStore(lake)
    tbl = store.open_table(store.require(EVENT_NARRATIVES).table)
    kinds = {i.index_type for i in tbl.list_indices()}
    assert "FTS" in kinds and any(k.upper().startswith("IVF") for k in kinds)


def test_lag_and_missing_store(lake: Path, small: EventLog) -> None:
    assert vector_lag(small, VectorStore(lake)) == {
        EVENT_NARRATIVES: small.head(),
        ORDER_STORIES: small.head(),
    }
    with pytest.raises(VectorStoreMissingError, match="ledgerlake embed"):
        VectorStore(lake, create=False)
    catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32), names=[ORDER_STORIES])
    new_order(small, "o-late")
    assert vector_lag(small, VectorStore(lake)) == {
        EVENT_NARRATIVES: small.head(),
        ORDER_STORIES: 2,
    }
    with pytest.raises(InvalidInputError, match="unknown vector projection"):
        catch_up_vectors(small, VectorStore(lake), embedder=HashingEmbedder(32), names=["nope"])


def test_event_rows_keep_times_and_ids(lake: Path, log: EventLog) -> None:
    new_order(log, "o-1", customer="c-9", note="ring twice")
    later = AT + timedelta(days=2)
    add_note(log, "o-1", "second note", at=later)
    catch_up_vectors(log, VectorStore(lake), embedder=HashingEmbedder(16))
    got = rows(lake, EVENT_NARRATIVES, "position")
    table = log.read_all()
    assert [r["event_id"] for r in got] == table.column("event_id").to_pylist()
    assert [r["event_type"] for r in got] == [
        "OrderCreated",
        "ItemAdded",
        "CustomerNoteAdded",
        "CustomerNoteAdded",
    ]
    assert got[-1]["occurred_at"] == later
    assert {r["customer_id"] for r in got} == {"c-9"}
    story = rows(lake, ORDER_STORIES, "order_id")[0]
    assert story["first_occurred_at"] == AT and story["last_occurred_at"] == later
    assert story["last_position"] == 4 and story["status"] == "open"
    assert isinstance(pa.scalar(story["recorded_at"]).type, pa.TimestampType)


def test_a_vector_table_missing_behind_its_checkpoint_is_detected_and_rebuilt(
    lake: Path, small: EventLog
) -> None:
    import shutil

    from eventlog.errors import IntegrityError
    from projections.search import search

    emb = HashingEmbedder(32)
    catch_up_vectors(small, VectorStore(lake), embedder=emb)
    want = rows(lake, EVENT_NARRATIVES, "position")
    table = VectorStore(lake, create=False).require(EVENT_NARRATIVES).table
    shutil.rmtree(vectors_dir(lake) / f"{table}.lance")
    # search says so (exit 1) instead of answering with nothing
    with pytest.raises(IntegrityError, match=f"vector table {table} is missing"):
        search(lake, "a parcel", embedder=emb, level="events")
    reports = {r.name: r for r in catch_up_vectors(small, VectorStore(lake), embedder=emb)}
    events = reports[EVENT_NARRATIVES]
    assert events.rebuilt and events.events_applied == small.head()
    assert events.extra["recovered"] == "table missing behind its checkpoint: rebuilt"
    assert not reports[ORDER_STORIES].rebuilt
    assert rows(lake, EVENT_NARRATIVES, "position") == want
