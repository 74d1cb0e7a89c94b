"""The Order domain's commands: imperative twins of the events, validated on construction.

A command that does not fit (a quantity of 0, a currency of ``"eur"``, an empty sku)
is bad input (exit 2) and never reaches ``decide``; business rules live in the decider.
Every command carries its ``order_id`` and the time ``at`` it happened: the clock
comes in on the command. Fields are keyword-only so a swapped argument cannot pass.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Union

from eventlog.validate import parse_time, utc, validate_stream_id
from eventlog.errors import InvalidInputError
from eventlog.orders.errors import InvalidCommandError

MAX_QUANTITY = 1_000_000
MAX_AMOUNT_CENTS = 1_000_000_000_000  # ten billion major units keeps sums inside int64
_CURRENCY = re.compile(r"[A-Z]{3}")


def _text(command: object, name: str) -> None:
    value = getattr(command, name)
    if not isinstance(value, str):
        raise InvalidCommandError(
            f"{type(command).__name__}.{name} must be a string, got {type(value).__name__} {value!r}"
        )
    if not value.strip():
        raise InvalidCommandError(f"{type(command).__name__}.{name} must not be empty")


def _integer(command: object, name: str, minimum: int, maximum: int) -> None:
    value = getattr(command, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCommandError(
            f"{type(command).__name__}.{name} must be an integer, got {type(value).__name__} {value!r}"
        )
    if not minimum <= value <= maximum:
        raise InvalidCommandError(
            f"{type(command).__name__}.{name} must be between {minimum} and {maximum}, got {value}"
        )


def _base(command: Any, *texts: str) -> None:
    """Check order_id and ``at`` (normalized to UTC), then the named non-empty strings."""
    name = type(command).__name__
    try:
        validate_stream_id(command.order_id)
    except InvalidInputError as exc:
        raise type(exc)(f"{name}.order_id: {exc}") from None
    if not isinstance(command.at, datetime):
        raise InvalidCommandError(
            f"{name}.at must be a timezone-aware datetime, got {type(command.at).__name__}"
        )
    try:
        object.__setattr__(command, "at", utc(command.at))
    except InvalidInputError as exc:
        raise InvalidCommandError(f"{name}.at: {exc}") from None
    for field_name in texts:
        _text(command, field_name)


def _quantity(command: object, name: str = "quantity") -> None:
    _integer(command, name, 1, MAX_QUANTITY)


def _amount(command: object, name: str = "amount_cents") -> None:
    _integer(command, name, 1, MAX_AMOUNT_CENTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateOrder:
    """Open an order for a customer in a currency (three upper-case letters, ISO 4217)."""

    order_id: str
    at: datetime
    customer_id: str
    customer_name: str
    customer_email: str
    currency: str
    channel: str

    def __post_init__(self) -> None:
        _base(self, "customer_id", "customer_name", "customer_email", "currency", "channel")
        if not _CURRENCY.fullmatch(self.currency):
            raise InvalidCommandError(
                f"CreateOrder.currency must be three upper-case letters such as EUR, got {self.currency!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class AddItem:
    """Put units of a product into the cart at a unit price (minor units, may be 0)."""

    order_id: str
    at: datetime
    sku: str
    product_name: str
    quantity: int
    unit_price_cents: int

    def __post_init__(self) -> None:
        _base(self, "sku", "product_name")
        _quantity(self)
        _integer(self, "unit_price_cents", 0, MAX_AMOUNT_CENTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveItem:
    """Take units of a product out of the cart."""

    order_id: str
    at: datetime
    sku: str
    quantity: int

    def __post_init__(self) -> None:
        _base(self, "sku")
        _quantity(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyDiscount:
    """Take an amount off the order with a discount code (each code counts once)."""

    order_id: str
    at: datetime
    code: str
    amount_cents: int

    def __post_init__(self) -> None:
        _base(self, "code")
        _amount(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateShippingAddress:
    """Set or change the address the order ships to."""

    order_id: str
    at: datetime
    recipient: str
    street: str
    city: str
    postal_code: str
    country: str

    def __post_init__(self) -> None:
        _base(self, "recipient", "street", "city", "postal_code", "country")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizePayment:
    """Record that a payment provider reserved an amount for the order."""

    order_id: str
    at: datetime
    payment_id: str
    amount_cents: int
    method: str

    def __post_init__(self) -> None:
        _base(self, "payment_id", "method")
        _amount(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturePayment:
    """Take money reserved by an authorization."""

    order_id: str
    at: datetime
    payment_id: str
    amount_cents: int

    def __post_init__(self) -> None:
        _base(self, "payment_id")
        _amount(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailPayment:
    """Record that a payment was declined or its authorization failed."""

    order_id: str
    at: datetime
    payment_id: str
    reason: str

    def __post_init__(self) -> None:
        _base(self, "payment_id", "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipOrder:
    """Hand a paid order with a shipping address to a carrier."""

    order_id: str
    at: datetime
    carrier: str
    tracking_number: str

    def __post_init__(self) -> None:
        _base(self, "carrier", "tracking_number")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverOrder:
    """Record that the carrier delivered a shipped order."""

    order_id: str
    at: datetime

    def __post_init__(self) -> None:
        _base(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    """Cancel an order that has not shipped."""

    order_id: str
    at: datetime
    reason: str

    def __post_init__(self) -> None:
        _base(self, "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueRefund:
    """Pay captured money back to the customer."""

    order_id: str
    at: datetime
    amount_cents: int
    reason: str

    def __post_init__(self) -> None:
        _base(self, "reason")
        _amount(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCustomerNote:
    """Write a note on the order, in any status once it exists."""

    order_id: str
    at: datetime
    author: str
    note: str

    def __post_init__(self) -> None:
        _base(self, "author", "note")


OrderCommand = Union[  # noqa: UP007 - a named alias reads better than a long `|` chain
    CreateOrder,
    AddItem,
    RemoveItem,
    ApplyDiscount,
    UpdateShippingAddress,
    AuthorizePayment,
    CapturePayment,
    FailPayment,
    ShipOrder,
    DeliverOrder,
    CancelOrder,
    IssueRefund,
    AddCustomerNote,
]

COMMANDS: dict[str, type[OrderCommand]] = {
    cls.__name__: cls
    for cls in (
        CreateOrder,
        AddItem,
        RemoveItem,
        ApplyDiscount,
        UpdateShippingAddress,
        AuthorizePayment,
        CapturePayment,
        FailPayment,
        ShipOrder,
        DeliverOrder,
        CancelOrder,
        IssueRefund,
        AddCustomerNote,
    )
}


def command_fields(name: str) -> dict[str, type]:
    """The payload fields (name -> str or int) of a command, without order_id and at."""
    cls = COMMANDS[name]
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in {"order_id", "at"}
    }


def command_from_json(obj: object, now: datetime) -> OrderCommand:
    """Build a command from ``{"command": "AddItem", "order_id": ..., "at"?: ISO, ...}``.

    ``at`` defaults to ``now``. Unknown commands, missing or unknown fields and wrong
    JSON types raise InvalidCommandError naming what was expected.
    """
    if not isinstance(obj, dict):
        raise InvalidCommandError(f"a command must be a JSON object, got {type(obj).__name__}")
    name = obj.get("command")
    if not isinstance(name, str) or name not in COMMANDS:
        raise InvalidCommandError(
            f"unknown command {name!r}; expected one of: {', '.join(COMMANDS)}"
        )
    fields = command_fields(name)
    expected = ", ".join(["order_id", *fields, "at (optional)"])
    data = {k: v for k, v in obj.items() if k != "command"}
    missing = [f for f in ("order_id", *fields) if f not in data]
    extra = sorted(k for k in data if k not in fields and k not in {"order_id", "at"})
    if missing:
        raise InvalidCommandError(
            f"{name} is missing {', '.join(missing)}; expected fields: {expected}"
        )
    if extra:
        raise InvalidCommandError(
            f"{name} has unknown fields {', '.join(extra)}; expected fields: {expected}"
        )
    for field_name, hint in {"order_id": str, **fields}.items():
        value = data[field_name]
        if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidCommandError(
                f"{name}.{field_name} must be an integer, got {type(value).__name__} {value!r}"
            )
        if hint is str and not isinstance(value, str):
            raise InvalidCommandError(
                f"{name}.{field_name} must be a string, got {type(value).__name__} {value!r}"
            )
    at = data.pop("at", None)
    if at is None:
        data["at"] = now
    elif isinstance(at, str):
        data["at"] = parse_time(at)
    else:
        raise InvalidCommandError(
            f"{name}.at must be an ISO 8601 time string such as 2026-11-26T12:00:00Z, got {at!r}"
        )
    command: OrderCommand = COMMANDS[name](**data)
    return command
