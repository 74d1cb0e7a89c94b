"""Search: filters, known-at, bad input, and relevance with the real model (slow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventlog.errors import InvalidInputError
from eventlog.handler import handle
from eventlog.log import EventLog
from eventlog.orders.commands import AddCustomerNote, AddItem, CreateOrder
from eventlog.orders.decider import ORDER_DECIDER
from eventlog.orders.generate import generate
from eventlog.orders.log import open_order_log
from projections.embeddings import HashingEmbedder, SentenceTransformerEmbedder
from projections.search import search
from projections.vector_store import VectorStore, VectorStoreMissingError
from projections.vectors import catch_up_vectors

T0 = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)


class Clock:
    """A log clock the test sets by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def plant(log: EventLog, order_id: str, customer: str, note: str, at: datetime) -> None:
    """An order with one item and one customer note, through the real handlers."""
    for command in (
        CreateOrder(
            order_id=order_id,
            at=at,
            customer_id=customer,
            customer_name=f"Name {customer}",
            customer_email=f"{customer}@example.com",
            currency="EUR",
            channel="web",
        ),
        AddItem(
            order_id=order_id,
            at=at,
            sku="KIT-1",
            product_name="Kitchen Blender",
            quantity=1,
            unit_price_cents=8900,
        ),
        AddCustomerNote(order_id=order_id, at=at, author="customer", note=note),
    ):
        handle(log, ORDER_DECIDER, order_id, command)


@pytest.fixture
def timed(lake: Path) -> tuple[EventLog, Clock]:
    clock = Clock(T0)
    log = open_order_log(lake, clock=clock)
    yield log, clock
    log.close()


def test_filters_narrow_results(lake: Path, timed: tuple[EventLog, Clock]) -> None:
    log, clock = timed
    plant(log, "o-a", "c-a", "blue lamp broken", T0)
    clock.now = T0 + timedelta(days=3)
    plant(log, "o-b", "c-b", "blue lamp broken again", T0 + timedelta(days=3))
    emb = HashingEmbedder(32)
    catch_up_vectors(log, VectorStore(lake), embedder=emb)

    hits = search(lake, "blue lamp broken", k=10, embedder=emb)
    assert len(hits) == 6
    assert hits[0].event_type == "CustomerNoteAdded"
    assert hits == sorted(hits, key=lambda h: -h.score)
    notes = search(lake, "blue lamp broken", k=10, event_type="CustomerNoteAdded", embedder=emb)
    assert {h.order_id for h in notes} == {"o-a", "o-b"}
    assert {h.event_type for h in notes} == {"CustomerNoteAdded"}
    by_customer = search(lake, "lamp", customer="c-b", embedder=emb)
    assert {h.order_id for h in by_customer} == {"o-b"} and len(by_customer) == 3
    early = search(lake, "lamp", until=T0 + timedelta(days=1), embedder=emb)
    assert {h.order_id for h in early} == {"o-a"}
    late = search(lake, "lamp", since=T0 + timedelta(days=1), embedder=emb)
    assert {h.order_id for h in late} == {"o-b"}
    known = search(lake, "lamp", known_at=T0 + timedelta(hours=1), embedder=emb)
    assert {h.order_id for h in known} == {"o-a"}
    assert all(
        h.recorded_at is not None and h.recorded_at <= T0 + timedelta(hours=1) for h in known
    )
    orders = search(lake, "blue lamp", level="orders", embedder=emb)
    assert {h.order_id for h in orders} == {"o-a", "o-b"}
    assert search(lake, "lamp", level="orders", customer="c-a", embedder=emb)[0].order_id == "o-a"
    hybrid = search(lake, "broken", hybrid=True, event_type="CustomerNoteAdded", embedder=emb)
    assert {h.order_id for h in hybrid} == {"o-a", "o-b"}


def test_orders_known_at_never_show_what_was_recorded_later(
    lake: Path, timed: tuple[EventLog, Clock]
) -> None:
    log, clock = timed
    plant(log, "o-a", "c-a", "first note", T0)
    clock.now = T0 + timedelta(days=5)
    # back-dated: occurred on day 1, recorded on day 5
    handle(
        log,
        ORDER_DECIDER,
        "o-a",
        AddCustomerNote(
            order_id="o-a",
            at=T0 + timedelta(days=1),
            author="support",
            note="secret refund promise",
        ),
    )
    emb = HashingEmbedder(32)
    catch_up_vectors(log, VectorStore(lake), embedder=emb)
    now = search(lake, "secret refund promise", level="orders", embedder=emb)
    assert "secret refund promise" in now[0].text
    then = search(
        lake, "secret refund promise", level="orders", known_at=T0 + timedelta(days=2), embedder=emb
    )
    assert [h.order_id for h in then] == ["o-a"]
    assert "secret" not in then[0].text and "first note" in then[0].text
    assert then[0].recorded_at == T0


def test_filter_values_cannot_inject_sql(lake: Path, timed: tuple[EventLog, Clock]) -> None:
    log, _ = timed
    plant(log, "o-a", "c-a", "note", T0)
    plant(log, "o-q", "o'brien", "note", T0)
    emb = HashingEmbedder(32)
    catch_up_vectors(log, VectorStore(lake), embedder=emb)
    assert search(lake, "note", customer="x' OR '1'='1", embedder=emb) == []
    assert {h.order_id for h in search(lake, "note", customer="o'brien", embedder=emb)} == {"o-q"}
    with pytest.raises(InvalidInputError, match="control characters"):
        search(lake, "note", customer="a\nb", embedder=emb)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "query is empty"),
        ({"k": 0}, "k must be"),
        ({"k": -3}, "k must be"),
        ({"event_type": "OrderExploded"}, "unknown event type"),
        ({"level": "customers"}, "level must be"),
        (
            {"since": datetime(2026, 3, 1, tzinfo=UTC), "until": datetime(2026, 2, 1, tzinfo=UTC)},
            "after until",
        ),
        ({"known_at": datetime(2026, 3, 1)}, "timezone-aware"),
    ],
)
def test_bad_input_is_refused_before_anything_is_read(
    lake: Path, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"query": "lamp", **kwargs}
    query = args.pop("query")
    with pytest.raises(InvalidInputError, match=message):
        search(lake, str(query), **args)  # type: ignore[arg-type]


def test_missing_store_says_how_to_build_it(lake: Path) -> None:
    with pytest.raises(VectorStoreMissingError, match="ledgerlake embed"):
        search(lake, "lamp")


def test_query_embedder_must_match_the_stored_model(
    lake: Path, timed: tuple[EventLog, Clock]
) -> None:
    log, _ = timed
    plant(log, "o-a", "c-a", "note", T0)
    catch_up_vectors(log, VectorStore(lake), embedder=HashingEmbedder(32))
    with pytest.raises(InvalidInputError, match="hashing-32"):
        search(lake, "note", embedder=HashingEmbedder(16))
    assert search(lake, "note")  # the recorded model picks the query embedder


PLANTED = {
    "o-pond": (
        "c-pond",
        "The courier threw the box over my garden fence and it landed in the pond.",
        "delivery driver tossed my package into water",
    ),
    "o-gull": (
        "c-gull",
        "A seagull snatched the parcel from the doorstep and flew away with it.",
        "bird stole my shipment",
    ),
    "o-noise": (
        "c-noise",
        "This blender makes a horrible screeching sound and smells like burning plastic.",
        "appliance is extremely loud and gives off a scorched odour",
    ),
}


@pytest.mark.slow
def test_paraphrased_queries_find_planted_orders_with_the_real_model(
    log: EventLog, lake: Path
) -> None:
    generate(log, orders=60, days=10, seed=5)
    for order_id, (customer, note, _) in PLANTED.items():
        plant(log, order_id, customer, note, datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    emb = SentenceTransformerEmbedder()
    catch_up_vectors(log, VectorStore(lake), embedder=emb)
    assert log.head() == 510 + 3 * len(PLANTED)  # seed 5's 510 events, 3 per planted order
    for order_id, (customer, _, query) in PLANTED.items():
        events = search(lake, query, k=3, embedder=emb)
        assert order_id in [h.order_id for h in events], (query, events)
        # A paraphrase shares no words with the note: by meaning (the orders level's
        # default, full-text, would need the note's words).
        orders = search(lake, query, k=3, level="orders", mode="vector", embedder=emb)
        assert order_id in [h.order_id for h in orders], (query, orders)
        notes = search(lake, query, k=5, event_type="CustomerNoteAdded", embedder=emb)
        assert notes[0].order_id == order_id
        assert {h.event_type for h in notes} == {"CustomerNoteAdded"}
        mine = search(lake, query, k=5, customer=customer, embedder=emb)
        assert {h.customer_id for h in mine} == {customer}
        before = search(lake, query, k=5, until=datetime(2026, 1, 4, tzinfo=UTC), embedder=emb)
        assert order_id not in [h.order_id for h in before]
        hybrid = search(lake, query, k=5, hybrid=True, embedder=emb)
        assert order_id in [h.order_id for h in hybrid]
