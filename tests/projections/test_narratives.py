"""Narratives: one exact sentence per event type, context resolved, and the order story."""

from __future__ import annotations

import pytest

from eventlog.orders.events import (
    ORDER_EVENT_TYPES,
    CustomerNoteAdded,
    DiscountApplied,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderEvent,
    OrderShipped,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
    ShippingAddressUpdated,
)
from projections.narratives import (
    OrderFacts,
    add_fact,
    author_words,
    format_money,
    narrate,
    narrate_history,
    order_story,
    story_of,
)

CREATED = OrderCreated("c-7", "Ada Lovelace", "ada@example.com", "EUR", "web")
MUG = ItemAdded("MUG-1", "Blue Mug", 2, 1250)
TEAPOT = ItemAdded("TEA-9", "Cast Iron Teapot", 1, 4999)
ADDRESS = ShippingAddressUpdated("Ada Lovelace", "12 Rue Victor Hugo", "Lyon", "69002", "FR")

HISTORY: list[tuple[OrderEvent, str]] = [
    (
        CREATED,
        "Ada Lovelace (customer c-7) opened an order in EUR through the web channel.",
    ),
    (MUG, "Ada Lovelace added 2 x Blue Mug at EUR 12.50 each (EUR 25.00) to the cart."),
    (
        TEAPOT,
        "Ada Lovelace added 1 x Cast Iron Teapot at EUR 49.99 each (EUR 49.99) to the cart.",
    ),
    (ItemRemoved("MUG-1", 1), "Ada Lovelace removed 1 x Blue Mug from the cart."),
    (
        DiscountApplied("SPRING10", 500),
        "Discount code SPRING10 took EUR 5.00 off Ada Lovelace's order.",
    ),
    (
        ADDRESS,
        "Ada Lovelace's order will ship to Ada Lovelace, 12 Rue Victor Hugo, 69002 Lyon, FR.",
    ),
    (
        PaymentFailed("pay-0", "card declined"),
        "A payment for Ada Lovelace's order failed: card declined.",
    ),
    (
        PaymentAuthorized("pay-1", 5749, "card"),
        "A card payment of EUR 57.49 was authorized for Ada Lovelace's order.",
    ),
    (PaymentCaptured("pay-1", 5749), "EUR 57.49 was captured for Ada Lovelace's order."),
    (
        OrderShipped("DHL", "JD0123"),
        "Ada Lovelace's order shipped to Lyon with DHL, tracking number JD0123.",
    ),
    (OrderDelivered(), "Ada Lovelace's order was delivered in Lyon by DHL."),
    (
        CustomerNoteAdded("customer", "The parcel arrived soaked and the mug is cracked"),
        "Note from customer on Ada Lovelace's order: The parcel arrived soaked and the mug is cracked.",
    ),
    (
        RefundIssued(1250, "damaged in transit"),
        "Ada Lovelace was refunded EUR 12.50: damaged in transit.",
    ),
]


def test_every_event_type_has_an_exact_sentence_in_this_history() -> None:
    covered = {type(e).__name__ for e, _ in HISTORY} | {"OrderCancelled"}
    assert covered == set(ORDER_EVENT_TYPES)


def test_each_event_narrates_to_its_exact_sentence_with_context() -> None:
    got = narrate_history("o-1", [e for e, _ in HISTORY])
    assert got == [s for _, s in HISTORY]


def test_cancellation_sentence() -> None:
    facts = add_fact(OrderFacts.initial("o-2"), CREATED)
    got = narrate(OrderCancelled("customer changed their mind"), facts)
    assert got == "Ada Lovelace's order was cancelled: customer changed their mind."


def test_without_context_the_sentence_says_the_order_and_the_sku() -> None:
    facts = OrderFacts.initial("o-3")
    assert (
        narrate(ItemRemoved("SKU-9", 3), facts) == "The customer removed 3 x SKU-9 from the cart."
    )
    assert narrate(OrderDelivered(), facts) == "The order was delivered."


@pytest.mark.parametrize(
    ("cents", "currency", "text"),
    [
        (1250, "EUR", "EUR 12.50"),
        (5, "EUR", "EUR 0.05"),
        (123456789, "USD", "USD 1,234,567.89"),
        (500, "JPY", "JPY 500"),
        (1250, "KWD", "KWD 1.250"),
        (-300, "GBP", "GBP -3.00"),
    ],
)
def test_money_is_formatted_from_minor_units(cents: int, currency: str, text: str) -> None:
    assert format_money(cents, currency) == text


def test_currency_of_the_order_is_used() -> None:
    created = OrderCreated("c-1", "Kenji Sato", "k@example.com", "JPY", "app")
    got = narrate_history("o-4", [created, ItemAdded("S", "Green Tea", 3, 800)])
    assert got[1] == "Kenji Sato added 3 x Green Tea at JPY 800 each (JPY 2,400) to the cart."


def test_story_puts_outcome_and_notes_first_and_has_the_details() -> None:
    story = story_of("o-1", [e for e, _ in HISTORY])
    assert story == (
        "Order of Ada Lovelace (customer c-7), now delivered. "
        "EUR 12.50 was refunded: damaged in transit. "
        "Note from customer: The parcel arrived soaked and the mug is cracked. "
        "1 payment failed: card declined. "
        "Items: 1 x Cast Iron Teapot, 1 x Blue Mug; total EUR 57.49. "
        "Discounts took EUR 5.00 off. "
        "EUR 57.49 captured of EUR 57.49 authorized. "
        "Ships to Lyon, FR with DHL."
    )


def test_story_stays_within_the_word_budget_keeping_the_notes() -> None:
    notes = [CustomerNoteAdded("support", f"call number {i} " + "word " * 40) for i in range(10)]
    facts = OrderFacts.initial("o-5")
    for event in [CREATED, MUG, *notes]:
        facts = add_fact(facts, event)
    story = order_story(facts, max_words=120)
    assert len(story.split()) <= 120
    assert "call number 0" in story
    assert story.startswith("Order of Ada Lovelace")


def test_narratives_are_pure_and_deterministic() -> None:
    events = [e for e, _ in HISTORY]
    kept = list(events)
    first = narrate_history("o-1", events)
    assert first == [text for _, text in HISTORY]  # the exact sentences, not just stable ones
    story = story_of("o-1", events)
    assert story.startswith("Order of Ada Lovelace (customer c-7), now delivered.")
    # Calling again, in another order, gives the same text and leaves the events alone.
    assert story_of("o-1", events) == story and narrate_history("o-1", events) == first
    assert events == kept


def test_a_support_agents_note_reads_as_words() -> None:
    note = CustomerNoteAdded("support:Lars", "Claim filed with DHL.")
    got = narrate_history("o-6", [CREATED, note])
    assert got[1] == "Note from support agent Lars on Ada Lovelace's order: Claim filed with DHL."
    story = story_of("o-6", [CREATED, note])
    assert "Note from support agent Lars: Claim filed with DHL." in story
    assert "support:" not in story


@pytest.mark.parametrize(
    ("author", "words"),
    [
        ("customer", "customer"),
        ("support:Tomás", "support agent Tomás"),
        ("warehouse:Kofi", "warehouse member Kofi"),
        (" support : Mei ", "support agent Mei"),
        ("support:", "support:"),
        ("", "someone"),
    ],
)
def test_author_words(author: str, words: str) -> None:
    assert author_words(author) == words


def test_two_failed_payments_read_in_the_plural() -> None:
    failures = [PaymentFailed("p-1", "card declined"), PaymentFailed("p-2", "card expired")]
    story = story_of("o-7", [CREATED, MUG, *failures])
    assert "2 payments failed: card declined; card expired." in story
