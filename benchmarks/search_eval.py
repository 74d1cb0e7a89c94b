"""The labelled search evaluation set: queries with the events and orders they should find.

``python -m benchmarks.search_eval [OUT]`` generates a seeded lake, labels every event with
the situation the generator played out (a damaged parcel, a wrong size, a late delivery,
a failed payment...), and writes the queries with their relevant events and orders to
``benchmarks/search_eval.json`` (deterministic: the same seed gives the same file).

The situations are read from the generator's *output*, never from its internals: notes are
matched against the generator's note templates (so a note is labelled by its theme, not by
guessing from its words), refunds and cancellations by their reason, failed payments by
the provider's reason, discounts by their code. The queries are paraphrases written by
hand that avoid the templates' own wording where a user would.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventlog.envelope import RecordedEvent, records_from_batch
from eventlog.orders.log import reading

HERE = Path(__file__).resolve().parent
EVAL_FILE = HERE / "search_eval.json"
LAKE = {"orders": 400, "days": 45, "seed": 7}  # the demo's lake
K = 10
Rule = Callable[[RecordedEvent, str | None], bool]


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z]+\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


def note_themes() -> list[tuple[str, bool, re.Pattern[str]]]:
    """(theme, written by support, pattern) for every note template of the generator."""
    from eventlog.orders.world import NOTES, SUPPORT_NOTES

    out = []
    for support, table in ((False, NOTES), (True, SUPPORT_NOTES)):
        for theme, templates in table.items():
            out.extend((theme, support, _template_regex(t)) for t in templates)
    return out


def theme_of(note: str, themes: list[tuple[str, bool, re.Pattern[str]]]) -> str:
    """The theme of a generated note; ValueError when no template (or two themes) match."""
    found = {theme for theme, _, pattern in themes if pattern.search(note)}
    if len(found) != 1:
        raise ValueError(f"note {note!r} matches themes {sorted(found)}")
    return found.pop()


def _note(*themes: str) -> Rule:
    return lambda e, theme: e.event_type == "CustomerNoteAdded" and theme in themes


def _reason(event_type: str, *reasons: str) -> Rule:
    return lambda e, _: e.event_type == event_type and e.payload.get("reason") in reasons


def _any(*rules: Rule) -> Rule:
    return lambda e, theme: any(rule(e, theme) for rule in rules)


def _discount(*codes: str) -> Rule:
    return lambda e, _: (
        e.event_type == "DiscountApplied" and (not codes or e.payload["code"] in codes)
    )


PAYMENT_FAILED = _any(
    lambda e, _: e.event_type == "PaymentFailed",
    _reason("OrderCancelled", "payment failed repeatedly"),
)


@dataclass(frozen=True, slots=True)
class Situation:
    """What happened to some orders, how to recognise its events, and how people ask for it."""

    name: str
    rule: Rule
    queries: tuple[str, ...]


SITUATIONS = (
    Situation(
        "damaged",
        _any(_note("damaged"), _reason("RefundIssued", "item arrived damaged")),
        (
            "the parcel arrived damaged",
            "box was crushed in transit and the product inside is broken",
            "water damage: the package got soaked in the rain",
            "refund for an item that was broken on arrival",
        ),
    ),
    Situation(
        "late",
        _any(_note("late"), _reason("RefundIssued", "goodwill gesture for late delivery")),
        (
            "my delivery is late",
            "the package still has not arrived and tracking shows no progress",
            "compensation for a delayed delivery",
        ),
    ),
    Situation(
        "lost",
        _any(_note("lost"), _reason("RefundIssued", "parcel lost in transit")),
        ("the carrier lost the parcel", "shipment never arrived and was declared lost"),
    ),
    Situation(
        "wrong_size",
        _any(_note("wrong_size"), _reason("RefundIssued", "wrong size, returned")),
        (
            "the clothes did not fit",
            "customer needs a bigger size",
            "sent back because the size was wrong",
        ),
    ),
    Situation(
        "missing",
        _any(_note("missing"), _reason("RefundIssued", "missing item")),
        ("an item was missing from the box", "the parcel was incomplete, one product not packed"),
    ),
    Situation(
        "gift",
        _note("gift"),
        (
            "please gift wrap it, it is a present",
            "birthday surprise for a family member",
            "leave the prices out of the package because it is a gift",
        ),
    ),
    Situation(
        "address",
        _note("address"),
        (
            "the delivery address is wrong",
            "customer is moving and wants the order sent somewhere else",
            "typo in the street or postcode",
        ),
    ),
    Situation(
        "praise",
        _note("praise"),
        ("happy customer praising the service", "thank you, quick delivery and lovely packaging"),
    ),
    Situation(
        "allergy",
        _note("allergy"),
        ("customer has a nut allergy", "allergic to materials in the packaging"),
    ),
    Situation(
        "instructions",
        _note("instructions"),
        (
            "leave the parcel with a neighbour",
            "doorbell is broken, call when you arrive",
            "where the courier should put the parcel if nobody is home",
        ),
    ),
    Situation(
        "payment_failed",
        PAYMENT_FAILED,
        ("the payment failed", "card payment was rejected", "problems paying for the order"),
    ),
    Situation(
        "insufficient_funds",
        _reason("PaymentFailed", "insufficient funds"),
        ("not enough money in the account",),
    ),
    Situation(
        "declined_by_issuer",
        _reason("PaymentFailed", "card declined by issuer"),
        ("the bank refused the card",),
    ),
    Situation(
        "three_d_secure",
        _reason("PaymentFailed", "3-D Secure authentication failed"),
        ("two-factor verification of the card payment failed",),
    ),
    Situation(
        "card_expired",
        _reason("PaymentFailed", "card expired"),
        ("the credit card is out of date",),
    ),
    Situation(
        "provider_timeout",
        _reason("PaymentFailed", "payment provider timeout"),
        ("the payment service did not respond in time",),
    ),
    Situation(
        "repeated_failures",
        _reason("OrderCancelled", "payment failed repeatedly"),
        ("order cancelled after several failed payment attempts",),
    ),
    Situation(
        "changed_mind",
        _reason("OrderCancelled", "customer changed their mind"),
        ("customer no longer wanted the order",),
    ),
    Situation(
        "cheaper_elsewhere",
        _reason("OrderCancelled", "found it cheaper elsewhere"),
        ("cancelled because another shop had a lower price",),
    ),
    Situation(
        "by_mistake",
        _reason("OrderCancelled", "ordered by mistake", "duplicate order"),
        ("order placed by accident or twice",),
    ),
    Situation(
        "too_slow",
        _reason("OrderCancelled", "delivery time too long"),
        ("cancelled because shipping would take too long",),
    ),
    Situation(
        "abandoned",
        _reason("OrderCancelled", "cart abandoned, cancelled automatically after 7 days"),
        ("abandoned shopping cart closed by the system",),
    ),
    Situation(
        "cancelled_after_payment",
        _any(
            _reason(
                "OrderCancelled",
                "customer requested cancellation before dispatch",
                "item out of stock",
                "suspected fraud, cancelled by risk team",
            ),
            _reason("RefundIssued", "order cancelled before shipping"),
        ),
        ("paid order cancelled before it was shipped", "refund because the order never shipped"),
    ),
    Situation(
        "out_of_stock",
        _reason("OrderCancelled", "item out of stock"),
        ("product sold out, order could not be fulfilled",),
    ),
    Situation(
        "fraud",
        _reason("OrderCancelled", "suspected fraud, cancelled by risk team"),
        ("suspicious order stopped by the fraud check",),
    ),
    Situation(
        "returned",
        _reason("RefundIssued", "returned within 30 days"),
        ("customer returned the whole order for their money back",),
    ),
    Situation(
        "discount",
        _discount(),
        ("a discount code was used", "order with a promo code price reduction"),
    ),
    Situation(
        "free_shipping",
        _discount("FREESHIP"),
        ("voucher for free delivery",),
    ),
    Situation(
        "welcome",
        _discount("WELCOME10"),
        ("first order welcome discount",),
    ),
)


def label(records: list[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    """The events of each situation, in log order."""
    themes = note_themes()
    out: dict[str, list[RecordedEvent]] = {s.name: [] for s in SITUATIONS}
    for rec in records:
        theme = (
            theme_of(rec.payload["note"], themes) if rec.event_type == "CustomerNoteAdded" else None
        )
        for situation in SITUATIONS:
            if situation.rule(rec, theme):
                out[situation.name].append(rec)
    return out


def build(lake: Path) -> dict[str, Any]:
    """The evaluation set of a lake generated with LAKE (generated here when empty)."""
    from eventlog.generate import generate

    if not (lake / "tail.sqlite").exists():
        generate(lake, **LAKE)
    with reading(lake) as log:
        head = log.head()
        records = records_from_batch(log.read_all())
    labelled = label(records)
    queries = []
    for situation in SITUATIONS:
        events = labelled[situation.name]
        if not events:  # the seeded lake never played this situation out
            continue
        for text in situation.queries:
            queries.append(
                {
                    "id": f"{situation.name}-{situation.queries.index(text) + 1}",
                    "query": text,
                    "situation": situation.name,
                    "relevant_events": [e.position for e in events],
                    "relevant_orders": sorted({e.stream_id for e in events}),
                }
            )
    return {
        "lake": {**LAKE, "head": head},
        "k": K,
        "about": "Relevant events and orders per query, labelled from what the seeded "
        "generator played out; rebuild with 'python -m benchmarks.search_eval'.",
        "queries": queries,
    }


def load(path: Path = EVAL_FILE) -> dict[str, Any]:
    """The committed evaluation set."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def main(argv: list[str]) -> int:
    """Write the evaluation set (default benchmarks/search_eval.json)."""
    out = Path(argv[0]) if argv else EVAL_FILE
    with tempfile.TemporaryDirectory() as tmp:
        data = build(Path(tmp) / "lake")
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(data['queries'])} queries to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
