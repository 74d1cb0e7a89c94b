"""The Order domain's events: past tense, one frozen dataclass each, money in minor units.

The class name is the stored event type, so renaming a class is a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Union

from eventlog.codec import PERSONAL, SUBJECT, Bounds, EventRegistry

STREAM_TYPE = "order"

# What every projection can hold: a line (quantity x unit price) stays below 10^16 and
# thousands of them still sum inside a 64-bit column. Raw appends are held to these too.
Quantity = Annotated[int, Bounds(0, 100_000)]
Cents = Annotated[int, Bounds(0, 100_000_000_000)]  # up to 1 billion in major units
# Personal data (encrypted in the log with the customer's key, see docs/erasure.md) and
# the field naming the data subject of an order stream.
PersonalText = Annotated[str, PERSONAL]
CustomerId = Annotated[str, SUBJECT]


@dataclass(frozen=True, slots=True)
class OrderCreated:
    """An order was opened for a customer, in one currency, through one sales channel."""

    customer_id: CustomerId
    customer_name: PersonalText
    customer_email: PersonalText
    currency: str
    channel: str


@dataclass(frozen=True, slots=True)
class ItemAdded:
    """Units of a product were put into the cart at a unit price."""

    sku: str
    product_name: str
    quantity: Quantity
    unit_price_cents: Cents


@dataclass(frozen=True, slots=True)
class ItemRemoved:
    """Units of a product were taken out of the cart."""

    sku: str
    quantity: Quantity


@dataclass(frozen=True, slots=True)
class DiscountApplied:
    """A discount code took an amount off the order."""

    code: str
    amount_cents: Cents


@dataclass(frozen=True, slots=True)
class ShippingAddressUpdated:
    """The address the order ships to was set or changed."""

    recipient: PersonalText
    street: PersonalText
    city: str
    postal_code: PersonalText
    country: str


@dataclass(frozen=True, slots=True)
class PaymentAuthorized:
    """A payment provider reserved an amount for the order."""

    payment_id: str
    amount_cents: Cents
    method: str


@dataclass(frozen=True, slots=True)
class PaymentCaptured:
    """Money reserved by an authorization was taken."""

    payment_id: str
    amount_cents: Cents


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    """A payment was declined or its authorization failed."""

    payment_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderShipped:
    """The order left the warehouse with a carrier."""

    carrier: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class OrderDelivered:
    """The carrier delivered the order."""


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """The order was cancelled before it shipped."""

    reason: str


@dataclass(frozen=True, slots=True)
class RefundIssued:
    """Captured money was paid back to the customer."""

    amount_cents: Cents
    reason: str


@dataclass(frozen=True, slots=True)
class CustomerNoteAdded:
    """Someone wrote a note on the order."""

    author: str
    note: PersonalText


@dataclass(frozen=True, slots=True)
class CustomerErased:
    """A customer was forgotten: their key is destroyed, their personal fields read as erased.

    Stream type ``erasure``, stream ``erasure-<customer id>``: every projection hears of it
    and the erasure cascade (``ledgerlake erase``) acts on it. It holds no personal data.
    """

    customer_id: str
    key_id: str


OrderEvent = Union[  # noqa: UP007 - a named alias reads better than a long `|` chain
    OrderCreated,
    ItemAdded,
    ItemRemoved,
    DiscountApplied,
    ShippingAddressUpdated,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    RefundIssued,
    CustomerNoteAdded,
]

EVENT_CLASSES: tuple[type[OrderEvent], ...] = (
    OrderCreated,
    ItemAdded,
    ItemRemoved,
    DiscountApplied,
    ShippingAddressUpdated,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    RefundIssued,
    CustomerNoteAdded,
)
ORDER_EVENT_TYPES: tuple[str, ...] = tuple(cls.__name__ for cls in EVENT_CLASSES)


ERASURE_STREAM_TYPE = "erasure"
ERASURE_EVENT_TYPES: tuple[str, ...] = ("CustomerErased",)


def erasure_stream(customer_id: str) -> str:
    """The stream that records a customer's erasure."""
    return f"erasure-{customer_id}"


def order_registry(registry: EventRegistry | None = None) -> EventRegistry:
    """A registry holding every Order event (stream type ``order``, schema version 1) and
    ``CustomerErased`` (stream type ``erasure``)."""
    result = EventRegistry() if registry is None else registry
    for cls in EVENT_CLASSES:
        result = result.register(cls, stream_type=STREAM_TYPE, schema_version=1)
    return result.register(CustomerErased, stream_type=ERASURE_STREAM_TYPE, schema_version=1)


REGISTRY = order_registry()
