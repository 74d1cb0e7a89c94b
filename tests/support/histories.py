"""Random order histories for property tests, and the Python reference fold they are checked by.

A history is a list of commits; each commit is a list of raw order events (any order of
event types, so ``evolve``'s corners are reached: items removed that are not in the
cart, captures on unknown payments, an order created twice...). Business times are
drawn from a narrow window so later commits often carry back-dated events and ties in
``occurred_at`` are common. Quantities and amounts are >= 1, as commands make them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from eventlog.envelope import NewEvent, records_from_batch
from eventlog.log import AppendRequest, EventLog
from eventlog.orders import ORDER_DECIDER, OrderState
from eventlog.orders.decider import order_state_fields
from eventlog.orders.events import REGISTRY
from eventlog.orders.log import open_order_log

T0 = datetime(2026, 3, 1, tzinfo=UTC)
RECORDED_T0 = datetime(2026, 3, 2, tzinfo=UTC)
ORDER_IDS = ("o-1", "o-2", 'it\'s "quoted"; DROP TABLE analytics.orders; --', "o-4")


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event to append raw: which order, what, and when it happened."""

    order_id: str
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime


def _payload(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    sku = draw(st.sampled_from(["A", "B", "C"]))
    amount = draw(st.sampled_from([1, 50, 100, 250, 999, 2000]))
    pid = draw(st.sampled_from(["p1", "p2", "p3"]))
    methods = st.sampled_from(["card", "paypal"])
    match event_type:
        case "OrderCreated":
            cust = draw(st.sampled_from(["c1", "c2", "c'3"]))
            return {
                "customer_id": cust,
                "customer_name": f"Name {cust}",
                "customer_email": f"{cust}@example.com",
                "currency": draw(st.sampled_from(["EUR", "USD"])),
                "channel": "web",
            }
        case "ItemAdded":
            return {
                "sku": sku,
                "product_name": draw(st.sampled_from([f"Product {sku}", f"Product {sku} (new)"])),
                "quantity": draw(st.integers(1, 3)),
                "unit_price_cents": draw(st.sampled_from([100, 250, 999])),
            }
        case "ItemRemoved":
            return {"sku": sku, "quantity": draw(st.integers(1, 3))}
        case "DiscountApplied":
            return {"code": draw(st.sampled_from(["X", "Y"])), "amount_cents": amount}
        case "ShippingAddressUpdated":
            city = draw(st.sampled_from(["Lyon", "Oslo"]))
            return {
                "recipient": "R",
                "street": "1 Main St",
                "city": city,
                "postal_code": "123",
                "country": "FR" if city == "Lyon" else "NO",
            }
        case "PaymentAuthorized":
            return {"payment_id": pid, "amount_cents": amount, "method": draw(methods)}
        case "PaymentCaptured":
            return {"payment_id": pid, "amount_cents": amount}
        case "PaymentFailed":
            return {"payment_id": pid, "reason": draw(st.sampled_from(["declined", "expired"]))}
        case "OrderShipped":
            return {"carrier": draw(st.sampled_from(["DHL", "UPS"])), "tracking_number": "T1"}
        case "OrderDelivered":
            return {}
        case "OrderCancelled":
            return {"reason": "changed mind"}
        case "RefundIssued":
            return {"amount_cents": amount, "reason": "broken"}
        case "CustomerNoteAdded":
            return {"author": "ops", "note": "call back"}
    raise AssertionError(event_type)


EVENT_WEIGHTS = (
    ["OrderCreated"] * 3
    + ["ItemAdded"] * 5
    + ["ItemRemoved"] * 2
    + ["PaymentCaptured"] * 3
    + [
        "DiscountApplied",
        "ShippingAddressUpdated",
        "PaymentAuthorized",
        "PaymentFailed",
        "OrderShipped",
        "OrderDelivered",
        "OrderCancelled",
        "RefundIssued",
        "CustomerNoteAdded",
    ]
)


@st.composite
def raw_events(draw: st.DrawFn) -> RawEvent:
    """One raw order event with a business time in a two-day window (minute resolution)."""
    event_type = draw(st.sampled_from(EVENT_WEIGHTS))
    return RawEvent(
        order_id=draw(st.sampled_from(ORDER_IDS)),
        event_type=event_type,
        payload=_payload(draw, event_type),
        occurred_at=T0 + timedelta(minutes=draw(st.integers(0, 48 * 60 // 30)) * 30),
    )


def histories(
    max_commits: int = 6, max_events: int = 40
) -> st.SearchStrategy[list[list[RawEvent]]]:
    """Several commits of raw events; later commits often hold back-dated events."""
    return st.lists(
        st.lists(raw_events(), min_size=1, max_size=max(1, max_events // max_commits)),
        min_size=1,
        max_size=max_commits,
    )


class StepClock:
    """A clock for EventLog: each call is one hour after the previous one."""

    def __init__(self, start: datetime = RECORDED_T0) -> None:
        self.now = start - timedelta(hours=1)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


def open_log(lake: Path, **options: Any) -> EventLog:
    """An EventLog whose commits are recorded one hour apart from RECORDED_T0."""
    return open_order_log(lake, clock=StepClock(), seal_on_close=False, **options)


def append_commit(log: EventLog, commit: Sequence[RawEvent]) -> None:
    """Append one commit atomically (one request per order, in first-appearance order)."""
    by_order: dict[str, list[NewEvent]] = {}
    for ev in commit:
        by_order.setdefault(ev.order_id, []).append(
            NewEvent(
                ev.event_type,
                ev.payload,
                occurred_at=ev.occurred_at,
                metadata={"actor": "tester", "correlation_id": "corr"},
            )
        )
    log.append_many([AppendRequest(oid, events) for oid, events in by_order.items()])


def reference_states(
    log: EventLog, at: datetime | None = None, known_at: datetime | None = None
) -> dict[str, dict[str, Any]]:
    """The Python reference: fold with the domain's evolve in (occurred_at, version) order."""
    records = records_from_batch(log.read_all())
    by_order: dict[str, list[Any]] = {}
    for rec in records:
        if rec.stream_type != "order":
            continue
        if at is not None and rec.occurred_at > at:
            continue
        if known_at is not None and rec.recorded_at > known_at:
            continue
        by_order.setdefault(rec.stream_id, []).append(rec)
    out = {}
    for order_id, recs in by_order.items():
        recs.sort(key=lambda r: (r.occurred_at, r.version))
        state = OrderState.initial(order_id)
        for rec in recs:
            event = REGISTRY.decode(rec.event_type, rec.schema_version, rec.payload)
            state = ORDER_DECIDER.evolve(state, event)
        out[order_id] = order_state_fields(state)
    return out


def reference_final(log: EventLog) -> dict[str, OrderState]:
    """Every order's full reference state (lines and payments included), as known now."""
    records = records_from_batch(log.read_all())
    states: dict[str, OrderState] = {}
    for rec in sorted(records, key=lambda r: (r.stream_id, r.occurred_at, r.version)):
        state = states.get(rec.stream_id, OrderState.initial(rec.stream_id))
        event = REGISTRY.decode(rec.event_type, rec.schema_version, rec.payload)
        states[rec.stream_id] = ORDER_DECIDER.evolve(state, event)
    return states


def rows_by_order(con: Any, query: str, params: Iterable[Any] = ()) -> dict[str, dict[str, Any]]:
    """Run a query and key its rows (as dicts) by their ``order_id`` column."""
    cur = con.execute(query, list(params))
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
