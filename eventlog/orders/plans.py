"""One order's plan: the timed commands a simulated order goes through (``plan_order``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eventlog.orders.commands import (
    AddCustomerNote,
    AddItem,
    ApplyDiscount,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CreateOrder,
    DeliverOrder,
    FailPayment,
    IssueRefund,
    OrderCommand,
    RemoveItem,
    ShipOrder,
    UpdateShippingAddress,
)
from eventlog.orders.world import (
    CANCEL_REASONS_OPEN,
    CANCEL_REASONS_PAID,
    CATALOGUE,
    CHANNELS,
    DISCOUNTS,
    FAIL_REASONS,
    METHODS,
    RELATIONS,
    SUPPORT_AGENTS,
    WEEKDAYS,
    Customer,
    note_text,
    price_in,
    tracking_number,
    weighted,
)

# --- one order's plan ------------------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """The timed commands of one order: (occurred_s, recorded_s, command) in order."""

    order_id: str
    rng: random.Random
    start: datetime
    t: float
    recorded: float = 0.0
    steps: list[tuple[float, float, OrderCommand]] = field(default_factory=list)

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=round(seconds, 3))

    def add(
        self,
        wait_s: float,
        command: Callable[..., OrderCommand],
        late_s: float = 0.0,
        **fields: Any,
    ) -> None:
        """Plan ``command(**fields)`` ``wait_s`` after the previous step, recorded ``late_s`` late."""
        self.t += wait_s
        # Recording never overtakes an earlier step of the same order: versions follow occurred_at.
        self.recorded = max(self.t + late_s, self.recorded)
        cmd = command(order_id=self.order_id, at=self.at(self.t), **fields)
        self.steps.append((self.t, self.recorded, cmd))


def plan_order(
    index: int, seed: int, order_id: str, created_s: float, customer: Customer, start: datetime
) -> Plan:
    rng = random.Random(f"{seed}/{index}")
    p = Plan(order_id, rng, start, created_s)
    cur, region = customer.region.currency, customer.region
    u = rng.uniform
    channel = customer.channel if rng.random() < 0.8 else weighted(rng, CHANNELS)
    p.add(
        0,
        CreateOrder,
        customer_id=customer.customer_id,
        customer_name=customer.name,
        customer_email=customer.email,
        currency=cur,
        channel=channel,
    )
    lines: dict[str, list[Any]] = {}  # sku -> [product, quantity, unit price]

    def add_item(wait: float) -> None:
        product = rng.choice(CATALOGUE)
        qty = weighted(rng, ((1, 70), (2, 20), (3, 7), (4, 3)))
        price = price_in(product, cur)
        lines.setdefault(product.sku, [product, 0, price])[1] += qty
        p.add(
            wait,
            AddItem,
            sku=product.sku,
            product_name=product.name,
            quantity=qty,
            unit_price_cents=price,
        )

    for _ in range(weighted(rng, ((1, 30), (2, 30), (3, 20), (4, 12), (5, 8)))):
        add_item(u(20, 420))
    if rng.random() < 0.35:  # the cart shrinks
        sku = rng.choice(sorted(lines))
        held = lines[sku][1]
        if held > 1 or len(lines) > 1:
            partial = held > 1 and (len(lines) == 1 or rng.random() < 0.6)
            qty = rng.randint(1, held - 1) if partial else held
            lines[sku][1] -= qty
            if lines[sku][1] == 0:
                del lines[sku]
            p.add(u(30, 1800), RemoveItem, sku=sku, quantity=qty)
    if rng.random() < 0.15:  # ... and grows again when the customer comes back
        add_item(u(3600, 26 * 3600))

    subtotal = sum(q * price for _, q, price in lines.values())
    ctx: dict[str, Any] = {
        "first": customer.first_name,
        "city": customer.city,
        "street": f"{rng.choice(region.streets)} {rng.randrange(1, 180)}",
        "postal": customer.postal_code,
        "n": rng.randint(2, 40),
        "weekday": rng.choice(WEEKDAYS),
        "relation": rng.choice(RELATIONS),
        "count": sum(q for _, q, _ in lines.values()),
        "k": max(0, sum(q for _, q, _ in lines.values()) - 1),
        "agent": rng.choice(SUPPORT_AGENTS),
        "product": rng.choice([v[0].name.split(" (")[0] for v in lines.values()]),
        "carrier": "the courier",
    }

    def note(wait: float, theme: str, *, support: bool = False, late_s: float = 0.0) -> None:
        text = note_text(rng, theme, ctx, support=support)
        author = f"support:{ctx['agent']}" if support else "customer"
        p.add(wait, AddCustomerNote, late_s, author=author, note=text)

    gift = rng.random() < 0.12
    if gift:
        recipient = f"{rng.choice(region.first_names)} {rng.choice(region.last_names)}"
        city, postal = rng.choice(region.cities)
        street = f"{rng.choice(region.streets)} {rng.randrange(1, 180)}"
    else:
        recipient, city, postal, street = (
            customer.name,
            customer.city,
            customer.postal_code,
            customer.street,
        )
    ctx["city"] = city
    p.add(
        u(30, 600),
        UpdateShippingAddress,
        recipient=recipient,
        street=street,
        city=city,
        postal_code=postal,
        country=region.country,
    )
    if gift and rng.random() < 0.7:
        note(u(10, 300), "gift")

    discount = 0
    if rng.random() < 0.22:
        code, pct, fixed = rng.choice(DISCOUNTS)
        amount = subtotal * pct // 100 if pct else fixed
        if 0 < amount < subtotal:
            discount = amount
            p.add(
                u(10, 240),
                ApplyDiscount,
                code=code,
                amount_cents=amount,
            )
    total = subtotal - discount

    fate = rng.random()
    if fate < 0.06:  # abandoned cart: sometimes cancelled automatically a week later
        if rng.random() < 0.5:
            p.add(
                7 * 86400,
                CancelOrder,
                reason=CANCEL_REASONS_OPEN[-1],
            )
        return p
    if fate < 0.11:
        reason = rng.choice(CANCEL_REASONS_OPEN[:-1])
        p.add(u(600, 2 * 86400), CancelOrder, reason=reason)
        return p
    for kind in ("allergy", "instructions"):
        if rng.random() < (0.05 if kind == "allergy" else 0.12):
            note(u(10, 3600), kind)

    methods = METHODS.get(region.country, METHODS["default"])

    def payment_id() -> str:
        return f"pay-{rng.getrandbits(48):012x}"

    failures = 0 if rng.random() < 0.82 else (1 if rng.random() < 0.8 else 2)
    for _ in range(failures):
        pid, reason = payment_id(), rng.choice(FAIL_REASONS)
        webhook_late = u(120, 3 * 3600) if rng.random() < 0.25 else 0.0
        if rng.random() < 0.5:  # authorized first, then the provider reported the failure
            method = rng.choice(methods)
            p.add(
                u(20, 300),
                AuthorizePayment,
                payment_id=pid,
                amount_cents=total,
                method=method,
            )
        p.add(
            u(5, 600),
            FailPayment,
            webhook_late,
            payment_id=pid,
            reason=reason,
        )
    if failures and rng.random() < 0.12:
        p.add(
            u(3600, 3 * 86400),
            CancelOrder,
            reason="payment failed repeatedly",
        )
        return p

    pid, method = payment_id(), rng.choice(methods)
    p.add(
        u(20, 900),
        AuthorizePayment,
        payment_id=pid,
        amount_cents=total,
        method=method,
    )
    if total > 1 and rng.random() < 0.08:  # split capture: two shipments' worth
        first_part = total // 2
        p.add(
            u(60, 6 * 3600),
            CapturePayment,
            payment_id=pid,
            amount_cents=first_part,
        )
        p.add(
            u(60, 12 * 3600),
            CapturePayment,
            payment_id=pid,
            amount_cents=total - first_part,
        )
    else:
        p.add(
            u(60, 6 * 3600),
            CapturePayment,
            payment_id=pid,
            amount_cents=total,
        )
    captured, refunded = total, 0

    def refund(wait: float, amount: int, reason: str) -> None:
        nonlocal refunded
        amount = min(amount, captured - refunded)
        if amount > 0:
            refunded += amount
            p.add(
                wait,
                IssueRefund,
                amount_cents=amount,
                reason=reason,
            )

    if rng.random() < 0.03:  # cancelled after payment, before dispatch
        reason = rng.choice(CANCEL_REASONS_PAID)
        p.add(u(600, 86400), CancelOrder, reason=reason)
        refund(u(600, 2 * 86400), captured, "order cancelled before shipping")
        return p
    if rng.random() < 0.08:  # address problem, fixed before dispatch
        note(u(600, 12 * 3600), "address")
        street2 = ctx["street"]
        p.add(
            u(300, 6 * 3600),
            UpdateShippingAddress,
            recipient=recipient,
            street=street2,
            city=city,
            postal_code=postal,
            country=region.country,
        )
        if rng.random() < 0.5:
            note(u(60, 3600), "address", support=True, late_s=u(3600, 20 * 3600))

    carrier = rng.choice(region.carriers)
    ctx["carrier"] = carrier
    tracking = tracking_number(rng, carrier)
    p.add(
        u(4 * 3600, 2 * 86400),
        ShipOrder,
        carrier=carrier,
        tracking_number=tracking,
    )

    transit = u(86400, 5 * 86400)
    late = rng.random() < 0.1
    if rng.random() < 0.03:  # lost in transit
        wait = u(7, 10) * 86400
        note(wait, "late")
        note(u(2, 5) * 86400, "lost", support=True)
        refund(u(600, 86400), captured, "parcel lost in transit")
        return p
    if late:
        note(transit + u(86400, 3 * 86400), "late")
        if rng.random() < 0.5:
            note(u(3600, 86400), "late", support=True, late_s=u(3600, 18 * 3600))
        transit = u(86400, 5 * 86400)
    scan_late = (
        u(2 * 3600, 3 * 86400) if rng.random() < 0.25 else 0.0
    )  # delivery scan uploaded late
    p.add(transit, DeliverOrder, scan_late)
    if late and rng.random() < 0.4:
        refund(u(3600, 2 * 86400), max(1, total // 10), "goodwill gesture for late delivery")

    price_of = {sku: price for sku, (_, _, price) in lines.items()}
    problem = rng.random()
    if problem < 0.05:
        note(u(3600, 2 * 86400), "damaged")
        if rng.random() < 0.6:
            note(u(3600, 86400), "damaged", support=True, late_s=u(1800, 12 * 3600))
        refund(u(3600, 3 * 86400), price_of[rng.choice(sorted(price_of))], "item arrived damaged")
    elif problem < 0.08:
        note(u(3600, 2 * 86400), "missing")
        note(u(3600, 86400), "missing", support=True)
        refund(u(600, 86400), price_of[rng.choice(sorted(price_of))], "missing item")
    elif problem < 0.12:
        note(u(3600, 3 * 86400), "wrong_size")
        note(u(3600, 2 * 86400), "wrong_size", support=True)
        refund(u(5, 12) * 86400, price_of[rng.choice(sorted(price_of))], "wrong size, returned")
    elif problem < 0.15:
        refund(u(3, 25) * 86400, captured - refunded, "returned within 30 days")
    elif problem < 0.30:
        note(u(3600, 4 * 86400), "praise")
    return p
