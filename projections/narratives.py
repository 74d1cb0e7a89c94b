"""Event -> English sentence, order history -> short story: pure functions of the events.

A sentence needs context that its own payload lacks (the customer's name, the product
behind a sku, the currency, the city): ``OrderFacts`` is a small fold over an order's
events that carries the Order ``evolve`` state plus what a story needs (notes, reasons).
Narrate an event against the facts *before* it, then fold it in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, assert_never

from eventlog.orders.decider import OrderState, evolve
from eventlog.orders.events import (
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

if TYPE_CHECKING:
    from eventlog.envelope import RecordedEvent

STORY_MAX_WORDS = 180
"""all-MiniLM-L6-v2 reads 256 word pieces; 180 words stay inside it for typical text."""

NOTE_MAX_WORDS = 60

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0
    ),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def format_money(cents: int, currency: str) -> str:
    """Integer minor units as ``EUR 1,234.50`` (``JPY 500``, ``KWD 1.250``); never floats."""
    exponent = _EXPONENTS.get(currency, 2)
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 10**exponent)
    amount = f"{whole:,}" + (f".{frac:0{exponent}d}" if exponent else "")
    return f"{currency} {sign}{amount}".strip() if currency else f"{sign}{amount} (minor units)"


def author_words(author: str) -> str:
    """A note's author as words: ``support:Lars`` reads ``support agent Lars``."""
    team, sep, name = author.partition(":")
    if sep and team.strip() and name.strip():
        agent = "agent" if team.strip() == "support" else "member"
        return f"{team.strip()} {agent} {name.strip()}"
    return author.strip() or "someone"


def _words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words) if len(words) <= limit else " ".join(words[:limit]) + " …"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What is known about one order after some of its events: the state plus story details."""

    state: OrderState
    products: tuple[tuple[str, str], ...] = ()  # (sku, product name) ever seen, for removals
    notes: tuple[tuple[str, str], ...] = ()  # (author, note)
    payment_failures: tuple[str, ...] = ()
    cancel_reason: str | None = None
    refunds: tuple[tuple[int, str], ...] = ()
    first_occurred_at: datetime | None = None
    last_occurred_at: datetime | None = None
    last_recorded_at: datetime | None = None
    last_position: int = 0

    @classmethod
    def initial(cls, order_id: str) -> OrderFacts:
        """The facts of an order before its first event."""
        return cls(state=OrderState.initial(order_id))

    def product_name(self, sku: str) -> str:
        """The product name a sku was added under (the sku itself when never seen)."""
        return next((name for s, name in self.products if s == sku), sku)


def add_fact(
    facts: OrderFacts,
    event: OrderEvent,
    *,
    occurred_at: datetime | None = None,
    recorded_at: datetime | None = None,
    position: int = 0,
) -> OrderFacts:
    """The facts after one more event (the Order ``evolve`` plus the story details)."""
    r = dataclasses.replace
    new = r(facts, state=evolve(facts.state, event))
    match event:
        case ItemAdded() if all(s != event.sku for s, _ in facts.products):
            new = r(new, products=(*facts.products, (event.sku, event.product_name)))
        case CustomerNoteAdded():
            new = r(new, notes=(*facts.notes, (event.author, event.note)))
        case PaymentFailed():
            new = r(new, payment_failures=(*facts.payment_failures, event.reason))
        case OrderCancelled():
            new = r(new, cancel_reason=event.reason)
        case RefundIssued():
            new = r(new, refunds=(*facts.refunds, (event.amount_cents, event.reason)))
        case _:
            pass
    if occurred_at is not None:
        first = facts.first_occurred_at
        last = facts.last_occurred_at
        new = r(
            new,
            first_occurred_at=occurred_at if first is None else min(first, occurred_at),
            last_occurred_at=occurred_at if last is None else max(last, occurred_at),
        )
    if recorded_at is not None:
        last_rec = facts.last_recorded_at
        new = r(
            new, last_recorded_at=recorded_at if last_rec is None else max(last_rec, recorded_at)
        )
    return r(new, last_position=max(facts.last_position, position))


def add_record(facts: OrderFacts, rec: RecordedEvent, event: OrderEvent) -> OrderFacts:
    """``add_fact`` for a recorded event: its payload ``event`` with the record's times."""
    return add_fact(
        facts,
        event,
        occurred_at=rec.occurred_at,
        recorded_at=rec.recorded_at,
        position=rec.position,
    )


def _whose(facts: OrderFacts) -> str:
    name = facts.state.customer_name
    return f"{name}'s order" if name else "the order"


def _who(facts: OrderFacts) -> str:
    return facts.state.customer_name or "the customer"


def narrate(event: OrderEvent, facts: OrderFacts) -> str:
    """One English sentence for an event, with context from the facts known before it."""
    cur = facts.state.currency
    match event:
        case OrderCreated():
            text = (
                f"{event.customer_name} (customer {event.customer_id}) opened an order "
                f"in {event.currency} through the {event.channel} channel"
            )
        case ItemAdded():
            total = format_money(event.quantity * event.unit_price_cents, cur)
            each = format_money(event.unit_price_cents, cur)
            text = (
                f"{_who(facts)} added {event.quantity} x {event.product_name} "
                f"at {each} each ({total}) to the cart"
            )
        case ItemRemoved():
            text = (
                f"{_who(facts)} removed {event.quantity} x "
                f"{facts.product_name(event.sku)} from the cart"
            )
        case DiscountApplied():
            text = (
                f"discount code {event.code} took {format_money(event.amount_cents, cur)} "
                f"off {_whose(facts)}"
            )
        case ShippingAddressUpdated():
            text = (
                f"{_whose(facts)} will ship to {event.recipient}, {event.street}, "
                f"{event.postal_code} {event.city}, {event.country}"
            )
        case PaymentAuthorized():
            text = (
                f"a {event.method} payment of {format_money(event.amount_cents, cur)} "
                f"was authorized for {_whose(facts)}"
            )
        case PaymentCaptured():
            text = f"{format_money(event.amount_cents, cur)} was captured for {_whose(facts)}"
        case PaymentFailed():
            text = f"a payment for {_whose(facts)} failed: {event.reason}"
        case OrderShipped():
            city = facts.state.shipping_city
            where = f" to {city}" if city else ""
            text = (
                f"{_whose(facts)} shipped{where} with {event.carrier}, "
                f"tracking number {event.tracking_number}"
            )
        case OrderDelivered():
            city = facts.state.shipping_city
            carrier = facts.state.carrier
            text = f"{_whose(facts)} was delivered"
            text += f" in {city}" if city else ""
            text += f" by {carrier}" if carrier else ""
        case OrderCancelled():
            text = f"{_whose(facts)} was cancelled: {event.reason}"
        case RefundIssued():
            text = (
                f"{_who(facts)} was refunded {format_money(event.amount_cents, cur)}: "
                f"{event.reason}"
            )
        case CustomerNoteAdded():
            text = (
                f"note from {author_words(event.author)} on {_whose(facts)}: "
                f"{_words(event.note, NOTE_MAX_WORDS)}"
            )
        case _:
            assert_never(event)
    return _sentence(text)


def narrate_history(order_id: str, events: Iterable[OrderEvent]) -> list[str]:
    """The sentences of an order's events, in the given (log) order."""
    facts = OrderFacts.initial(order_id)
    out = []
    for event in events:
        out.append(narrate(event, facts))
        facts = add_fact(facts, event)
    return out


def _items(facts: OrderFacts) -> str | None:
    lines = facts.state.lines
    if not lines:
        return None
    listed = ", ".join(f"{line.quantity} x {line.product_name}" for line in lines[:6])
    more = f" and {len(lines) - 6} more products" if len(lines) > 6 else ""
    return f"items: {listed}{more}"


def story_sentences(facts: OrderFacts) -> list[str]:
    """The story's sentences, most telling first: outcome, notes, then the details."""
    s = facts.state
    cur = s.currency
    who = s.customer_name or "an unknown customer"
    out: list[str] = [f"Order of {who} (customer {s.customer_id or 'unknown'}), now {s.status}."]
    if facts.cancel_reason is not None:
        out.append(_sentence(f"it was cancelled: {facts.cancel_reason}"))
    for amount, reason in facts.refunds:
        out.append(_sentence(f"{format_money(amount, cur)} was refunded: {reason}"))
    for author, note in facts.notes:
        out.append(_sentence(f"note from {author_words(author)}: {_words(note, NOTE_MAX_WORDS)}"))
    if facts.payment_failures:
        reasons = "; ".join(dict.fromkeys(facts.payment_failures))
        n = len(facts.payment_failures)
        out.append(_sentence(f"{n} payment{'' if n == 1 else 's'} failed: {reasons}"))
    items = _items(facts)
    if items is not None:
        total = format_money(s.total_cents, cur)
        out.append(_sentence(f"{items}; total {total}"))
    if s.discount_cents:
        out.append(_sentence(f"discounts took {format_money(s.discount_cents, cur)} off"))
    if s.captured_cents or s.authorized_cents:
        out.append(
            _sentence(
                f"{format_money(s.captured_cents, cur)} captured of "
                f"{format_money(s.authorized_cents, cur)} authorized"
            )
        )
    if s.shipping_city:
        where = f"{s.shipping_city}, {s.shipping_country}"
        via = f" with {s.carrier}" if s.carrier else ""
        out.append(_sentence(f"ships to {where}{via}"))
    return out


def order_story(facts: OrderFacts, max_words: int = STORY_MAX_WORDS) -> str:
    """A few sentences summarizing the order, within ``max_words`` (the model's input length)."""
    kept: list[str] = []
    used = 0
    for sentence in story_sentences(facts):
        n = len(sentence.split())
        if used + n > max_words:
            if not kept:
                kept.append(_words(sentence, max_words))
            continue
        kept.append(sentence)
        used += n
    return " ".join(kept)


def story_of(order_id: str, events: Sequence[OrderEvent]) -> str:
    """The story of an order from its events, in log order."""
    facts = OrderFacts.initial(order_id)
    for event in events:
        facts = add_fact(facts, event)
    return order_story(facts)
