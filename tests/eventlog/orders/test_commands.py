"""Command validation (bad input, exit 2) and command_from_json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from eventlog.errors import InvalidInputError, InvalidStreamIdError, RuleError, exit_code_for
from eventlog.orders import (
    COMMANDS,
    AddCustomerNote,
    AddItem,
    ApplyDiscount,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CreateOrder,
    DeliverOrder,
    FailPayment,
    InvalidCommandError,
    IssueRefund,
    RemoveItem,
    ShipOrder,
    UpdateShippingAddress,
    command_fields,
    command_from_json,
)

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)

VALID: dict[str, dict[str, Any]] = {
    "CreateOrder": {
        "customer_id": "c-1",
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "channel": "web",
    },
    "AddItem": {"sku": "SKU-1", "product_name": "Teapot", "quantity": 2, "unit_price_cents": 1250},
    "RemoveItem": {"sku": "SKU-1", "quantity": 1},
    "ApplyDiscount": {"code": "WELCOME", "amount_cents": 500},
    "UpdateShippingAddress": {
        "recipient": "Ada Lovelace",
        "street": "1 Main St",
        "city": "Lisbon",
        "postal_code": "1000-001",
        "country": "PT",
    },
    "AuthorizePayment": {"payment_id": "pay-1", "amount_cents": 2000, "method": "card"},
    "CapturePayment": {"payment_id": "pay-1", "amount_cents": 2000},
    "FailPayment": {"payment_id": "pay-1", "reason": "declined"},
    "ShipOrder": {"carrier": "DHL", "tracking_number": "TRK-1"},
    "DeliverOrder": {},
    "CancelOrder": {"reason": "customer asked"},
    "IssueRefund": {"amount_cents": 100, "reason": "damaged"},
    "AddCustomerNote": {"author": "support", "note": "Gift wrap please"},
}


def make(name: str, **overrides: Any) -> Any:
    """A command by name with valid fields, some replaced."""
    return COMMANDS[name](**{"order_id": "o-1", "at": AT, **VALID[name], **overrides})


def test_every_command_is_covered_and_constructs() -> None:
    assert set(VALID) == set(COMMANDS)
    for name in COMMANDS:
        command = make(name)
        assert command.order_id == "o-1"
        assert command.at == AT
        assert set(command_fields(name)) == set(VALID[name])


def test_commands_are_frozen_and_keyword_only() -> None:
    command = make("AddItem")
    with pytest.raises(AttributeError):
        command.quantity = 3
    with pytest.raises(TypeError):
        RemoveItem("o-1", AT, "SKU-1", 1)  # type: ignore[call-arg]


def test_at_is_normalized_to_utc() -> None:
    local = datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    command = DeliverOrder(order_id="o-1", at=local)
    assert command.at == AT
    assert command.at.tzinfo is UTC


def test_naive_time_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"DeliverOrder\.at.*timezone"):
        DeliverOrder(order_id="o-1", at=datetime(2026, 11, 26, 12, 0))
    with pytest.raises(InvalidInputError, match=r"at must be a timezone-aware datetime"):
        DeliverOrder(order_id="o-1", at="2026-11-26T12:00:00Z")  # type: ignore[arg-type]


@pytest.mark.parametrize("order_id", ["", "a/b", "a\\b", "..", "x\n", "x" * 201, 7])
def test_bad_order_ids_are_rejected(order_id: Any) -> None:
    with pytest.raises(InvalidStreamIdError, match=r"CancelOrder\.order_id"):
        make("CancelOrder", order_id=order_id)


@pytest.mark.parametrize(
    ("name", "field", "value", "message"),
    [
        ("CreateOrder", "currency", "eur", "three upper-case letters"),
        ("CreateOrder", "currency", "EURO", "three upper-case letters"),
        ("CreateOrder", "currency", "E1R", "three upper-case letters"),
        ("CreateOrder", "customer_id", "", "must not be empty"),
        ("CreateOrder", "customer_email", "   ", "must not be empty"),
        ("CreateOrder", "channel", 3, "must be a string"),
        ("AddItem", "quantity", 0, "between 1 and"),
        ("AddItem", "quantity", -2, "between 1 and"),
        ("AddItem", "quantity", True, "must be an integer"),
        ("AddItem", "quantity", 2.0, "must be an integer"),
        ("AddItem", "quantity", "2", "must be an integer"),
        ("AddItem", "unit_price_cents", -1, "between 0 and"),
        ("AddItem", "unit_price_cents", 10**13, "between 0 and"),
        ("AddItem", "sku", "", "must not be empty"),
        ("AddItem", "product_name", None, "must be a string"),
        ("RemoveItem", "quantity", 0, "between 1 and"),
        ("ApplyDiscount", "amount_cents", 0, "between 1 and"),
        ("ApplyDiscount", "code", "", "must not be empty"),
        ("UpdateShippingAddress", "city", "", "must not be empty"),
        ("UpdateShippingAddress", "country", "", "must not be empty"),
        ("AuthorizePayment", "amount_cents", 0, "between 1 and"),
        ("AuthorizePayment", "payment_id", "", "must not be empty"),
        ("AuthorizePayment", "method", "", "must not be empty"),
        ("CapturePayment", "amount_cents", -5, "between 1 and"),
        ("FailPayment", "reason", "", "must not be empty"),
        ("ShipOrder", "tracking_number", "", "must not be empty"),
        ("CancelOrder", "reason", "", "must not be empty"),
        ("IssueRefund", "amount_cents", 0, "between 1 and"),
        ("AddCustomerNote", "note", "", "must not be empty"),
        ("AddCustomerNote", "author", "", "must not be empty"),
    ],
)
def test_bad_fields_are_rejected_naming_the_field(
    name: str, field: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidCommandError, match=rf"{name}\.{field}.*{message}") as info:
        make(name, **{field: value})
    assert exit_code_for(info.value) == 2
    assert not isinstance(info.value, RuleError)


def test_zero_unit_price_is_allowed() -> None:
    assert make("AddItem", unit_price_cents=0).unit_price_cents == 0


def test_typed_constructors() -> None:
    """Each class is importable by name and equal by value."""
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
    ):
        direct = cls(order_id="o-1", at=AT, **VALID[cls.__name__])
        assert make(cls.__name__) == direct and isinstance(direct, cls)
        if VALID[cls.__name__]:  # equal by value: one field changed makes another command
            field, value = next(iter(VALID[cls.__name__].items()))
            other = value + 1 if isinstance(value, int) else f"{value}-x"
            assert make(cls.__name__, **{field: other}) != direct
        assert make(cls.__name__, order_id="o-2") != direct


# --- command_from_json ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID))
def test_from_json_builds_every_command(name: str) -> None:
    obj = {"command": name, "order_id": "o-1", "at": "2026-11-26T12:00:00Z", **VALID[name]}
    assert command_from_json(obj, NOW) == make(name)


def test_from_json_defaults_at_to_now() -> None:
    command = command_from_json({"command": "DeliverOrder", "order_id": "o-1"}, NOW)
    assert command == DeliverOrder(order_id="o-1", at=NOW)
    command = command_from_json({"command": "DeliverOrder", "order_id": "o-1", "at": None}, NOW)
    assert command.at == NOW


def test_from_json_converts_offsets_to_utc() -> None:
    obj = {"command": "DeliverOrder", "order_id": "o-1", "at": "2026-11-26T14:00:00+02:00"}
    assert command_from_json(obj, NOW).at == AT


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "must be a JSON object"),
        ({"order_id": "o-1"}, r"unknown command None; expected one of: CreateOrder, AddItem"),
        ({"command": "Explode", "order_id": "o-1"}, r"unknown command 'Explode'"),
        ({"command": 3, "order_id": "o-1"}, r"unknown command 3"),
        (
            {"command": "AddItem", "order_id": "o-1", "sku": "S", "quantity": 1},
            r"AddItem is missing product_name, unit_price_cents; expected fields: "
            r"order_id, sku, product_name, quantity, unit_price_cents, at \(optional\)",
        ),
        ({"command": "RemoveItem", "sku": "S", "quantity": 1}, "RemoveItem is missing order_id"),
        (
            {"command": "RemoveItem", "order_id": "o-1", "sku": "S", "quantity": 1, "qty": 2},
            r"RemoveItem has unknown fields qty; expected fields: order_id, sku, quantity",
        ),
        (
            {"command": "RemoveItem", "order_id": "o-1", "sku": "S", "quantity": True},
            r"RemoveItem\.quantity must be an integer, got bool",
        ),
        (
            {"command": "RemoveItem", "order_id": "o-1", "sku": "S", "quantity": 1.0},
            r"RemoveItem\.quantity must be an integer, got float",
        ),
        (
            {"command": "RemoveItem", "order_id": "o-1", "sku": "S", "quantity": "1"},
            r"RemoveItem\.quantity must be an integer, got str",
        ),
        (
            {"command": "RemoveItem", "order_id": "o-1", "sku": 5, "quantity": 1},
            r"RemoveItem\.sku must be a string, got int",
        ),
        (
            {"command": "DeliverOrder", "order_id": 12},
            r"DeliverOrder\.order_id must be a string, got int",
        ),
        (
            {"command": "DeliverOrder", "order_id": "o-1", "at": 1700000000},
            r"DeliverOrder\.at must be an ISO 8601 time string",
        ),
        (
            {"command": "DeliverOrder", "order_id": "o-1", "at": "yesterday"},
            r"cannot parse time 'yesterday'",
        ),
        (
            {"command": "DeliverOrder", "order_id": "o-1", "at": "2026-11-26T12:00:00"},
            r"has no timezone",
        ),
        (
            {"command": "RemoveItem", "order_id": "o-1", "sku": "S", "quantity": 0},
            r"RemoveItem\.quantity must be between 1 and",
        ),
        ({"command": "DeliverOrder", "order_id": "a/b"}, r"must not contain '/'"),
    ],
)
def test_from_json_rejects_bad_input(obj: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        command_from_json(obj, NOW)
    assert exit_code_for(info.value) == 2
