"""A customer with unique, greppable personal data, planted in a lake through the real commands.

The byte-scan tests of erasure look for these values in every file after ``forget`` and
the cascade; the values are made so that no generated text contains them by chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eventlog.handler import CommandHandler
from eventlog.log import EventLog
from eventlog.orders import ORDER_DECIDER
from eventlog.orders.commands import (
    AddCustomerNote,
    AddItem,
    AuthorizePayment,
    CapturePayment,
    CreateOrder,
    UpdateShippingAddress,
)


@dataclass(frozen=True, slots=True)
class Planted:
    """The planted customer's id, order ids and personal values."""

    customer_id: str
    orders: tuple[str, ...]
    name: str
    email: str
    recipient: str
    street: str
    postal_code: str
    note: str

    @property
    def values(self) -> tuple[str, ...]:
        """Every personal value (the strings no file may hold after erasure)."""
        return (self.name, self.email, self.recipient, self.street, self.postal_code, self.note)


def planted(tag: str = "qx") -> Planted:
    """Values unique to ``tag`` (letters and digits only: tokenizers keep them whole)."""
    return Planted(
        customer_id=f"cus-planted-{tag}",
        orders=(f"ord-planted-{tag}-1", f"ord-planted-{tag}-2"),
        name=f"Wilhelmina Zqxvortel{tag}",
        email=f"wzqx{tag}@plantedmail.example",
        recipient=f"Bartholomew Yqzwinkle{tag}",
        street=f"Glimmerquartz Lane {tag}77",
        postal_code=f"ZX{tag}9Q",
        note=f"please leave the parcel behind the purple Snorklewhistle{tag} gnome",
    )


def plant(log: EventLog, p: Planted, at: datetime | None = None) -> None:
    """Two orders of the planted customer, with an address, a payment and a note."""
    t = at or datetime(2026, 1, 3, 10, tzinfo=UTC)
    handler = CommandHandler(log, ORDER_DECIDER)
    for k, oid in enumerate(p.orders):
        t0 = t + timedelta(hours=k)
        for cmd in (
            CreateOrder(
                order_id=oid,
                at=t0,
                customer_id=p.customer_id,
                customer_name=p.name,
                customer_email=p.email,
                currency="EUR",
                channel="web",
            ),
            AddItem(
                order_id=oid,
                at=t0,
                sku="sku-1",
                product_name="Teapot",
                quantity=2,
                unit_price_cents=1500,
            ),
            UpdateShippingAddress(
                order_id=oid,
                at=t0,
                recipient=p.recipient,
                street=p.street,
                city="Lyon",
                postal_code=p.postal_code,
                country="FR",
            ),
            AuthorizePayment(
                order_id=oid, at=t0, payment_id=f"pay-{oid}", amount_cents=3000, method="card"
            ),
            CapturePayment(order_id=oid, at=t0, payment_id=f"pay-{oid}", amount_cents=3000),
            AddCustomerNote(order_id=oid, at=t0, author="customer", note=p.note),
        ):
            handler.handle(oid, cmd)
