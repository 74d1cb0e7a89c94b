"""The Order events and their registry: codec round-trips and schema checks."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from eventlog.codec import EventRegistry
from eventlog.errors import InvalidInputError, PayloadSchemaError, UnknownEventTypeError
from eventlog.orders import (
    EVENT_CLASSES,
    ORDER_EVENT_TYPES,
    REGISTRY,
    STREAM_TYPE,
    OrderDelivered,
    OrderEvent,
    order_registry,
)
from eventlog.orders.events import ERASURE_EVENT_TYPES

DESIGN_FIELDS = {
    "OrderCreated": ["customer_id", "customer_name", "customer_email", "currency", "channel"],
    "ItemAdded": ["sku", "product_name", "quantity", "unit_price_cents"],
    "ItemRemoved": ["sku", "quantity"],
    "DiscountApplied": ["code", "amount_cents"],
    "ShippingAddressUpdated": ["recipient", "street", "city", "postal_code", "country"],
    "PaymentAuthorized": ["payment_id", "amount_cents", "method"],
    "PaymentCaptured": ["payment_id", "amount_cents"],
    "PaymentFailed": ["payment_id", "reason"],
    "OrderShipped": ["carrier", "tracking_number"],
    "OrderDelivered": [],
    "OrderCancelled": ["reason"],
    "RefundIssued": ["amount_cents", "reason"],
    "CustomerNoteAdded": ["author", "note"],
}


def sample(cls: type[Any]) -> dict[str, Any]:
    """A valid payload dict for an event class."""
    hints = typing.get_type_hints(cls)
    return {f.name: 7 if hints[f.name] is int else "x" for f in dataclasses.fields(cls)}


def test_event_types_match_the_design_table() -> None:
    assert tuple(DESIGN_FIELDS) == ORDER_EVENT_TYPES
    # beside the Order events, the registry knows the erasure record (stream type erasure)
    assert sorted(ORDER_EVENT_TYPES + ERASURE_EVENT_TYPES) == REGISTRY.event_types
    for cls in EVENT_CLASSES:
        assert [f.name for f in dataclasses.fields(cls)] == DESIGN_FIELDS[cls.__name__]
        assert set(typing.get_type_hints(cls).values()) <= {str, int}
        spec = REGISTRY.spec(cls.__name__)
        assert (spec.stream_type, spec.schema_version, spec.cls) == (STREAM_TYPE, 1, cls)
        assert typing.get_args(OrderEvent).count(cls) == 1


def test_events_are_frozen_and_slotted() -> None:
    for cls in EVENT_CLASSES:
        event = cls(**sample(cls))
        assert not hasattr(event, "__dict__")
        for name in sample(cls):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(event, name, 1)


def test_order_registry_builds_a_fresh_registry_or_extends_one() -> None:
    assert order_registry().event_types == REGISTRY.event_types
    empty = EventRegistry()
    extended = order_registry(empty)
    assert "OrderCreated" in extended
    assert "OrderCreated" not in empty


# Every value a field may take, its edges drawn often (see Bounds in eventlog/codec.py).
def _bounded(lo: int, hi: int) -> st.SearchStrategy[int]:
    """A field's integers, its edges first (int64's for a plain ``int``)."""
    return st.one_of(st.sampled_from([lo, lo + 1, hi - 1, hi]), st.integers(lo, hi))


def _payload_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    bounds = REGISTRY.spec(cls.__name__).bounds
    return st.builds(
        cls,
        **{
            f.name: (
                _bounded(bounds[f.name].lo, bounds[f.name].hi)
                if hints[f.name] is int
                else st.text()
            )
            for f in dataclasses.fields(cls)
        },
    )


events = st.one_of([_payload_strategy(cls) for cls in EVENT_CLASSES])


@settings(max_examples=300)
@given(events)
def test_encode_then_decode_round_trips(event: Any) -> None:
    event_type, version, text = REGISTRY.encode(event)
    assert (event_type, version) == (type(event).__name__, 1)
    assert REGISTRY.decode(event_type, version, text) == event
    assert REGISTRY.decode(event_type, version, json.loads(text)) == event
    assert REGISTRY.encode(REGISTRY.decode(event_type, version, text))[2] == text


def test_order_delivered_has_an_empty_payload() -> None:
    assert REGISTRY.encode(OrderDelivered()) == ("OrderDelivered", 1, "{}")
    assert REGISTRY.decode("OrderDelivered", 1, "{}") == OrderDelivered()


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
def test_validate_rejects_missing_and_extra_fields(cls: type[Any]) -> None:
    payload = sample(cls)
    assert REGISTRY.validate(cls.__name__, payload) == payload
    for name in payload:
        with pytest.raises(PayloadSchemaError, match=f"missing {name}"):
            REGISTRY.validate(cls.__name__, {k: v for k, v in payload.items() if k != name})
    with pytest.raises(PayloadSchemaError, match="unknown fields order_id"):
        REGISTRY.validate(cls.__name__, {**payload, "order_id": "o-1"})
    with pytest.raises(PayloadSchemaError, match="must be a JSON object"):
        REGISTRY.validate(cls.__name__, [payload])


INT_FIELDS = [
    (cls, f.name)
    for cls in EVENT_CLASSES
    for f in dataclasses.fields(cls)
    if typing.get_type_hints(cls)[f.name] is int
]
STR_FIELDS = [
    (cls, f.name)
    for cls in EVENT_CLASSES
    for f in dataclasses.fields(cls)
    if typing.get_type_hints(cls)[f.name] is str
]


@pytest.mark.parametrize("bad", [True, "7", 7.0, None], ids=["bool", "str", "float", "null"])
@pytest.mark.parametrize(("cls", "name"), INT_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_validate_rejects_non_integers(cls: type[Any], name: str, bad: object) -> None:
    with pytest.raises(PayloadSchemaError, match=rf"{cls.__name__}\.{name} must be an integer"):
        REGISTRY.validate(cls.__name__, {**sample(cls), name: bad})


@pytest.mark.parametrize(("cls", "name"), STR_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_validate_rejects_non_strings(cls: type[Any], name: str) -> None:
    with pytest.raises(PayloadSchemaError, match=rf"{cls.__name__}\.{name} must be a string"):
        REGISTRY.validate(cls.__name__, {**sample(cls), name: 3})


def test_validate_rejects_unknown_types_and_versions() -> None:
    with pytest.raises(UnknownEventTypeError, match=r"'OrderExploded'.*OrderCreated"):
        REGISTRY.validate("OrderExploded", {})
    with pytest.raises(PayloadSchemaError, match="schema_version 2 is not known"):
        REGISTRY.validate("OrderCancelled", {"reason": "x"}, 2)
    with pytest.raises(InvalidInputError):
        REGISTRY.decode(
            "ItemAdded",
            1,
            '{"sku": "S", "product_name": "p", "quantity": "2", "unit_price_cents": 1}',
        )


@pytest.mark.parametrize(("cls", "name"), INT_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_every_integer_field_takes_its_edges_and_refuses_one_past_them(
    cls: type[Any], name: str
) -> None:
    bounds = REGISTRY.spec(cls.__name__).bounds[name]
    assert bounds.lo >= -(2**63) and bounds.hi <= 2**63 - 1  # a 64-bit column holds them
    good = {
        f.name: (1 if typing.get_type_hints(cls)[f.name] is int else "x")
        for f in dataclasses.fields(cls)
    }
    for edge in (bounds.lo, bounds.hi):
        assert REGISTRY.validate(cls.__name__, good | {name: edge})[name] == edge
    for past in (bounds.lo - 1, bounds.hi + 1, 2**63, -(2**63) - 1):
        if bounds.lo <= past <= bounds.hi:
            continue
        with pytest.raises(PayloadSchemaError, match=rf"{cls.__name__}\.{name} is {past}, outside"):
            REGISTRY.validate(cls.__name__, good | {name: past})
