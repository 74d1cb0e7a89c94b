"""The Order decider: every command and rule as given/when/then, evolve arithmetic, properties."""

from __future__ import annotations

import dataclasses
import functools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given as hgiven, settings, strategies as st

from eventlog.decider import fold
from eventlog.errors import InvalidInputError, RuleError, exit_code_for
from eventlog.orders import (
    ORDER_DECIDER,
    PUBLIC_FIELDS,
    AddCustomerNote,
    AddItem,
    Address,
    ApplyDiscount,
    AuthorizePayment,
    CancelOrder,
    CaptureExceedsAuthorizationError,
    CapturePayment,
    CreateOrder,
    CustomerNoteAdded,
    DeliverOrder,
    DiscountApplied,
    DiscountExceedsSubtotalError,
    EmptyOrderError,
    FailPayment,
    IssueRefund,
    ItemAdded,
    ItemNotInCartError,
    ItemRemoved,
    Line,
    MissingShippingAddressError,
    OrderAlreadyExistsError,
    OrderAlreadyPaidError,
    OrderCancelled,
    OrderClosedError,
    OrderCreated,
    OrderDelivered,
    OrderEvent,
    OrderNotFoundError,
    OrderNotPaidError,
    OrderNotShippedError,
    OrderRuleError,
    OrderShipped,
    OrderState,
    Payment,
    PaymentAlreadyCapturedError,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentNotAuthorizedError,
    PriceMismatchError,
    RefundExceedsCapturedError,
    RefundIssued,
    RemoveItem,
    ShipOrder,
    ShippingAddressUpdated,
    UpdateShippingAddress,
    decide,
    evolve,
    order_state_fields,
    state_from_json,
    state_to_json,
)
from tests.support.gwt import given

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OID = "o-1"

# --- a little history to build on ---------------------------------------------------------

CREATED = OrderCreated("c-1", "Ada Lovelace", "ada@example.com", "EUR", "web")
TEAPOT = ItemAdded("SKU-1", "Teapot", 2, 1250)  # 2500
CUPS = ItemAdded("SKU-2", "Cups", 4, 300)  # 1200
ADDRESS = ShippingAddressUpdated("Ada Lovelace", "1 Main St", "Lisbon", "1000-001", "PT")
AUTHORIZED = PaymentAuthorized("pay-1", 3700, "card")
CAPTURED = PaymentCaptured("pay-1", 3700)
SHIPPED = OrderShipped("DHL", "TRK-1")
OPEN = (CREATED, TEAPOT, CUPS)
PAID = (*OPEN, ADDRESS, AUTHORIZED, CAPTURED)
PAID_NO_ADDRESS = (*OPEN, AUTHORIZED, CAPTURED)


def create(**kw: Any) -> CreateOrder:
    fields = {
        "customer_id": "c-1",
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "channel": "web",
        **kw,
    }
    return CreateOrder(order_id=OID, at=AT, **fields)


def add_item(
    sku: str = "SKU-3", name: str = "Kettle", quantity: int = 1, price: int = 4000
) -> AddItem:
    return AddItem(
        order_id=OID, at=AT, sku=sku, product_name=name, quantity=quantity, unit_price_cents=price
    )


def remove_item(sku: str = "SKU-1", quantity: int = 1) -> RemoveItem:
    return RemoveItem(order_id=OID, at=AT, sku=sku, quantity=quantity)


def discount(code: str = "WELCOME", amount: int = 500) -> ApplyDiscount:
    return ApplyDiscount(order_id=OID, at=AT, code=code, amount_cents=amount)


def address(city: str = "Lisbon") -> UpdateShippingAddress:
    return UpdateShippingAddress(
        order_id=OID,
        at=AT,
        recipient="Ada Lovelace",
        street="1 Main St",
        city=city,
        postal_code="1000-001",
        country="PT",
    )


def authorize(payment_id: str = "pay-1", amount: int = 3700) -> AuthorizePayment:
    return AuthorizePayment(
        order_id=OID, at=AT, payment_id=payment_id, amount_cents=amount, method="card"
    )


def capture(payment_id: str = "pay-1", amount: int = 3700) -> CapturePayment:
    return CapturePayment(order_id=OID, at=AT, payment_id=payment_id, amount_cents=amount)


def fail(payment_id: str = "pay-1", reason: str = "declined") -> FailPayment:
    return FailPayment(order_id=OID, at=AT, payment_id=payment_id, reason=reason)


def ship(carrier: str = "DHL", tracking: str = "TRK-1") -> ShipOrder:
    return ShipOrder(order_id=OID, at=AT, carrier=carrier, tracking_number=tracking)


def deliver() -> DeliverOrder:
    return DeliverOrder(order_id=OID, at=AT)


def cancel(reason: str = "changed mind") -> CancelOrder:
    return CancelOrder(order_id=OID, at=AT, reason=reason)


def refund(amount: int = 1000, reason: str = "damaged") -> IssueRefund:
    return IssueRefund(order_id=OID, at=AT, amount_cents=amount, reason=reason)


def note(text: str = "Gift wrap please") -> AddCustomerNote:
    return AddCustomerNote(order_id=OID, at=AT, author="support", note=text)


# --- errors -------------------------------------------------------------------------------


def test_rule_errors_exit_4_and_carry_a_helpful_message() -> None:
    error = given(*OPEN).when(remove_item("SKU-1", 5)).then_raises(ItemNotInCartError)
    assert isinstance(error, RuleError)
    assert exit_code_for(error) == 4
    assert str(error) == (
        "order 'o-1': The cart does not hold that many units of this item. "
        "(cannot remove 5 of SKU-1; the cart holds 2)"
    )
    assert error.order_id == OID  # type: ignore[attr-defined]


def test_every_rule_error_has_a_one_line_docstring() -> None:
    import eventlog.orders.errors as module

    classes = [
        c for c in vars(module).values() if isinstance(c, type) and issubclass(c, OrderRuleError)
    ]
    assert len(classes) >= 15
    for cls in classes:
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), cls
        assert str(cls()) == cls.__doc__.strip()


def test_rule_errors_pickle() -> None:
    import pickle

    error = OrderNotPaidError(OID, "captured 0 EUR of 100 EUR")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is OrderNotPaidError
    assert str(again) == str(error)


# --- CreateOrder ----------------------------------------------------------------------------


def test_create_order() -> None:
    given().when(create()).then(CREATED)


def test_create_order_sets_status_open_and_customer() -> None:
    given().when(create()).then_state(
        order_id=OID, exists=True, status="open", customer_id="c-1", currency="EUR", version=1
    )


def test_identical_create_is_a_no_op() -> None:
    given(CREATED).when(create()).then_nothing()
    given(*PAID, SHIPPED).when(create()).then_nothing()


def test_different_create_is_refused() -> None:
    given(CREATED).when(create(currency="USD")).then_raises(OrderAlreadyExistsError, match="'c-1'")


@pytest.mark.parametrize(
    "command",
    [
        add_item(),
        remove_item(),
        discount(),
        address(),
        authorize(),
        capture(),
        fail(),
        ship(),
        deliver(),
        cancel(),
        refund(),
        note(),
    ],
    ids=lambda c: type(c).__name__,
)
def test_every_other_command_needs_an_existing_order(command: Any) -> None:
    given().when(command).then_raises(OrderNotFoundError, match="order 'o-1'")


def test_command_for_another_order_is_bad_input() -> None:
    state = fold(ORDER_DECIDER, [CREATED], OrderState.initial("o-2"))
    with pytest.raises(InvalidInputError, match=r"'o-1'.*'o-2'"):
        decide(note(), state)


# --- AddItem / RemoveItem -------------------------------------------------------------------


def test_add_item() -> None:
    given(CREATED).when(add_item()).then(ItemAdded("SKU-3", "Kettle", 1, 4000))


def test_add_item_updates_count_and_subtotal() -> None:
    given(*OPEN).when(add_item(quantity=2)).then_state(
        item_count=8, subtotal_cents=3700 + 8000, total_cents=11700
    )


def test_add_same_sku_at_same_price_adds_quantity() -> None:
    state = given(*OPEN).when(add_item("SKU-1", "Teapot", 3, 1250)).then_state(item_count=9)
    assert state.line("SKU-1") == Line("SKU-1", "Teapot", 5, 1250)


def test_add_same_sku_at_other_price_is_refused() -> None:
    given(*OPEN).when(add_item("SKU-1", "Teapot", 1, 999)).then_raises(
        PriceMismatchError, match=r"1250 EUR, not 999 EUR"
    )


def test_sku_removed_entirely_may_come_back_at_a_new_price() -> None:
    given(*OPEN, ItemRemoved("SKU-1", 2)).when(add_item("SKU-1", "Teapot", 1, 999)).then(
        ItemAdded("SKU-1", "Teapot", 1, 999)
    )


def test_remove_item() -> None:
    given(*OPEN).when(remove_item("SKU-1", 1)).then(ItemRemoved("SKU-1", 1))


def test_remove_item_subtracts_that_skus_price() -> None:
    state = (
        given(*OPEN)
        .when(remove_item("SKU-2", 3))
        .then_state(item_count=3, subtotal_cents=2500 + 300, total_cents=2800)
    )
    assert state.line("SKU-2") == Line("SKU-2", "Cups", 1, 300)


def test_removing_the_last_unit_drops_the_line() -> None:
    state = given(*OPEN).when(remove_item("SKU-1", 2)).then_state(item_count=4)
    assert state.line("SKU-1") is None


def test_remove_more_than_in_cart_is_refused() -> None:
    given(*OPEN).when(remove_item("SKU-1", 3)).then_raises(ItemNotInCartError)
    given(*OPEN).when(remove_item("SKU-9", 1)).then_raises(ItemNotInCartError, match="cart holds 0")


def test_remove_below_the_discounts_is_refused() -> None:
    given(*OPEN, DiscountApplied("BIG", 3000)).when(remove_item("SKU-2", 4)).then_raises(
        DiscountExceedsSubtotalError
    )


@pytest.mark.parametrize(
    "command", [add_item(), remove_item(), discount()], ids=lambda c: type(c).__name__
)
def test_cart_is_frozen_once_paid(command: Any) -> None:
    given(*PAID).when(command).then_raises(OrderAlreadyPaidError)


@pytest.mark.parametrize(
    "command", [add_item(), remove_item(), discount()], ids=lambda c: type(c).__name__
)
def test_cart_is_frozen_after_a_partial_capture(command: Any) -> None:
    partial = (*OPEN, AUTHORIZED, PaymentCaptured("pay-1", 100))
    given(*partial).when(command).then_raises(OrderAlreadyPaidError, match="100 EUR")


@pytest.mark.parametrize(
    "command", [add_item(), remove_item(), discount()], ids=lambda c: type(c).__name__
)
@pytest.mark.parametrize(
    "history",
    [
        (*OPEN, OrderCancelled("x")),
        (*PAID, SHIPPED),
        (*PAID, SHIPPED, OrderDelivered()),
    ],
    ids=["cancelled", "shipped", "delivered"],
)
def test_cart_is_closed_after_cancel_or_shipping(command: Any, history: Any) -> None:
    given(*history).when(command).then_raises(OrderClosedError)


def test_cart_may_change_while_only_authorized() -> None:
    given(*OPEN, AUTHORIZED).when(add_item()).then(ItemAdded("SKU-3", "Kettle", 1, 4000))


# --- ApplyDiscount --------------------------------------------------------------------------


def test_apply_discount() -> None:
    given(*OPEN).when(discount()).then(DiscountApplied("WELCOME", 500))
    given(*OPEN).when(discount()).then_state(
        discount_cents=500, total_cents=3200, discount_codes=("WELCOME",)
    )


def test_repeated_discount_code_is_a_no_op() -> None:
    given(*OPEN, DiscountApplied("WELCOME", 500)).when(discount()).then_nothing()
    given(*OPEN, DiscountApplied("WELCOME", 500)).when(discount(amount=900)).then_nothing()
    given(*PAID[:3], DiscountApplied("WELCOME", 500), *PAID[3:]).when(discount()).then_nothing()


def test_discounts_may_not_exceed_the_subtotal() -> None:
    given(*OPEN).when(discount(amount=3700)).then(DiscountApplied("WELCOME", 3700))
    given(*OPEN).when(discount(amount=3701)).then_raises(
        DiscountExceedsSubtotalError, match="3701 EUR of discounts against a subtotal of 3700 EUR"
    )
    given(*OPEN, DiscountApplied("A", 3000)).when(discount("B", 701)).then_raises(
        DiscountExceedsSubtotalError
    )
    given(CREATED).when(discount(amount=1)).then_raises(DiscountExceedsSubtotalError)


# --- UpdateShippingAddress ------------------------------------------------------------------


def test_update_shipping_address() -> None:
    given(CREATED).when(address()).then(ADDRESS)
    given(CREATED).when(address("Porto")).then_state(
        shipping_city="Porto",
        shipping_country="PT",
        shipping_address=Address("Ada Lovelace", "1 Main St", "Porto", "1000-001", "PT"),
    )


def test_identical_address_is_a_no_op() -> None:
    given(CREATED, ADDRESS).when(address()).then_nothing()
    given(*PAID, SHIPPED, OrderDelivered()).when(address()).then_nothing()


def test_address_may_change_after_payment() -> None:
    given(*PAID).when(address("Porto")).then_state(shipping_city="Porto")


@pytest.mark.parametrize(
    "history",
    [(CREATED, OrderCancelled("x")), (*PAID, SHIPPED), (*PAID, SHIPPED, OrderDelivered())],
    ids=["cancelled", "shipped", "delivered"],
)
def test_address_is_fixed_once_closed(history: Any) -> None:
    given(*history).when(address("Porto")).then_raises(OrderClosedError)


# --- AuthorizePayment -----------------------------------------------------------------------


def test_authorize_payment() -> None:
    given(*OPEN).when(authorize()).then(AUTHORIZED)
    state = given(*OPEN).when(authorize()).then_state(authorized_cents=3700, status="open")
    assert state.payment("pay-1") == Payment("pay-1", 3700, 0, False)


def test_reauthorizing_a_known_payment_is_a_no_op() -> None:
    given(*OPEN, AUTHORIZED).when(authorize()).then_nothing()
    given(*OPEN, AUTHORIZED).when(authorize(amount=1)).then_nothing()
    given(*PAID, SHIPPED).when(authorize()).then_nothing()


def test_authorize_needs_items() -> None:
    given(CREATED).when(authorize()).then_raises(EmptyOrderError)
    given(CREATED, TEAPOT, ItemRemoved("SKU-1", 2)).when(authorize()).then_raises(EmptyOrderError)


def test_authorize_needs_an_open_order() -> None:
    given(*PAID).when(authorize("pay-2")).then_raises(OrderAlreadyPaidError)
    given(*OPEN, OrderCancelled("x")).when(authorize("pay-2")).then_raises(OrderClosedError)
    given(*PAID, SHIPPED).when(authorize("pay-2")).then_raises(OrderClosedError)


# --- CapturePayment -------------------------------------------------------------------------


def test_capture_payment_marks_the_order_paid() -> None:
    given(*OPEN, AUTHORIZED).when(capture()).then(CAPTURED)
    given(*OPEN, AUTHORIZED).when(capture()).then_state(captured_cents=3700, status="paid")


def test_partial_captures_pay_once_they_reach_the_total() -> None:
    history = (*OPEN, AUTHORIZED, PaymentCaptured("pay-1", 1000))
    given(*history).when(capture(amount=2699)).then_state(captured_cents=3699, status="open")
    given(*history).when(capture(amount=2700)).then_state(captured_cents=3700, status="paid")


def test_paid_threshold_uses_the_discounted_total() -> None:
    history = (*OPEN, DiscountApplied("W", 700), PaymentAuthorized("pay-1", 3000, "card"))
    given(*history).when(capture(amount=3000)).then_state(total_cents=3000, status="paid")


def test_capture_needs_an_authorized_payment() -> None:
    given(*OPEN).when(capture()).then_raises(PaymentNotAuthorizedError, match="'pay-1'")
    given(*OPEN, AUTHORIZED).when(capture("pay-2")).then_raises(PaymentNotAuthorizedError)
    given(*OPEN, AUTHORIZED, PaymentFailed("pay-1", "expired")).when(capture()).then_raises(
        PaymentNotAuthorizedError
    )


def test_capture_may_not_exceed_what_is_left_of_the_authorization() -> None:
    given(*OPEN, AUTHORIZED).when(capture(amount=3701)).then_raises(
        CaptureExceedsAuthorizationError, match="3701 EUR.*3700 EUR left of 3700 EUR"
    )
    history = (*OPEN, AUTHORIZED, PaymentCaptured("pay-1", 3000))
    given(*history).when(capture(amount=701)).then_raises(CaptureExceedsAuthorizationError)
    given(*history).when(capture(amount=700)).then(PaymentCaptured("pay-1", 700))


def test_capturing_a_fully_captured_payment_again_is_a_no_op() -> None:
    given(*PAID).when(capture()).then_nothing()
    given(*PAID, SHIPPED, OrderDelivered()).when(capture()).then_nothing()
    given(*PAID).when(capture(amount=1)).then_raises(CaptureExceedsAuthorizationError)


def test_capture_on_a_cancelled_order_is_refused() -> None:
    given(*OPEN, AUTHORIZED, OrderCancelled("x")).when(capture()).then_raises(OrderClosedError)


# --- FailPayment ----------------------------------------------------------------------------


def test_fail_payment() -> None:
    given(*OPEN, AUTHORIZED).when(fail()).then(PaymentFailed("pay-1", "declined"))
    state = given(*OPEN, AUTHORIZED).when(fail()).then_state(payment_failures=1)
    assert state.payment("pay-1") == Payment("pay-1", 3700, 0, True)


def test_a_declined_unknown_payment_is_recorded() -> None:
    state = given(*OPEN).when(fail("pay-9")).then_state(payment_failures=1, authorized_cents=0)
    assert state.payment("pay-9") == Payment("pay-9", 0, 0, True)


def test_failing_a_failed_payment_again_is_a_no_op() -> None:
    given(*OPEN, PaymentFailed("pay-1", "declined")).when(fail()).then_nothing()
    given(*OPEN, PaymentFailed("pay-1", "declined")).when(fail(reason="other")).then_nothing()


def test_a_captured_payment_cannot_fail() -> None:
    given(*OPEN, AUTHORIZED, PaymentCaptured("pay-1", 10)).when(fail()).then_raises(
        PaymentAlreadyCapturedError
    )


def test_a_payment_cannot_fail_on_a_closed_order() -> None:
    given(*OPEN, OrderCancelled("x")).when(fail()).then_raises(OrderClosedError)


def test_a_new_payment_can_follow_a_failed_one() -> None:
    history = (*OPEN, AUTHORIZED, PaymentFailed("pay-1", "expired"))
    given(*history).when(authorize("pay-2")).then(PaymentAuthorized("pay-2", 3700, "card"))
    second = (*history, PaymentAuthorized("pay-2", 3700, "card"))
    given(*second).when(capture("pay-2")).then_state(status="paid", payment_failures=1)


# --- ShipOrder ------------------------------------------------------------------------------


def test_ship_order() -> None:
    given(*PAID).when(ship()).then(SHIPPED)
    given(*PAID).when(ship()).then_state(status="shipped", carrier="DHL", tracking_number="TRK-1")


def test_ship_needs_payment() -> None:
    given(*OPEN, ADDRESS).when(ship()).then_raises(
        OrderNotPaidError, match="captured 0 EUR of 3700 EUR"
    )
    given(*OPEN, ADDRESS, AUTHORIZED, PaymentCaptured("pay-1", 10)).when(ship()).then_raises(
        OrderNotPaidError
    )


def test_ship_needs_an_address() -> None:
    given(*PAID_NO_ADDRESS).when(ship()).then_raises(MissingShippingAddressError)


def test_shipping_again_is_a_no_op() -> None:
    given(*PAID, SHIPPED).when(ship()).then_nothing()
    given(*PAID, SHIPPED, OrderDelivered()).when(ship()).then_nothing()


def test_shipping_again_with_another_parcel_is_refused() -> None:
    given(*PAID, SHIPPED).when(ship("UPS", "1Z")).then_raises(
        OrderClosedError, match="already shipped with DHL TRK-1"
    )


def test_a_cancelled_order_does_not_ship() -> None:
    given(*PAID, OrderCancelled("x")).when(ship()).then_raises(OrderClosedError)


# --- DeliverOrder ---------------------------------------------------------------------------


def test_deliver_order() -> None:
    given(*PAID, SHIPPED).when(deliver()).then(OrderDelivered())
    given(*PAID, SHIPPED).when(deliver()).then_state(
        status="delivered", last_event_type="OrderDelivered"
    )


def test_deliver_needs_shipping() -> None:
    given(*OPEN).when(deliver()).then_raises(OrderNotShippedError, match="status is open")
    given(*PAID).when(deliver()).then_raises(OrderNotShippedError, match="status is paid")
    given(*OPEN, OrderCancelled("x")).when(deliver()).then_raises(OrderClosedError)


def test_delivering_again_is_a_no_op() -> None:
    given(*PAID, SHIPPED, OrderDelivered()).when(deliver()).then_nothing()


# --- CancelOrder ----------------------------------------------------------------------------


def test_cancel_order() -> None:
    given(*OPEN).when(cancel()).then(OrderCancelled("changed mind"))
    given(*PAID).when(cancel()).then_state(status="cancelled", captured_cents=3700)


def test_cancelling_again_is_a_no_op() -> None:
    given(*OPEN, OrderCancelled("x")).when(cancel()).then_nothing()


def test_shipped_or_delivered_orders_cannot_be_cancelled() -> None:
    given(*PAID, SHIPPED).when(cancel()).then_raises(OrderClosedError, match="shipped")
    given(*PAID, SHIPPED, OrderDelivered()).when(cancel()).then_raises(
        OrderClosedError, match="delivered"
    )


# --- IssueRefund ----------------------------------------------------------------------------


def test_issue_refund() -> None:
    given(*PAID).when(refund(1000)).then(RefundIssued(1000, "damaged"))
    given(*PAID).when(refund(3700)).then_state(refunded_cents=3700, status="paid")
    given(*PAID, SHIPPED, OrderDelivered()).when(refund(100)).then_state(
        refunded_cents=100, status="delivered"
    )
    given(*PAID, OrderCancelled("x")).when(refund(3700)).then_state(refunded_cents=3700)


def test_refunds_may_not_exceed_what_was_captured() -> None:
    given(*PAID).when(refund(3701)).then_raises(
        RefundExceedsCapturedError, match="3701 EUR of 3700 EUR captured"
    )
    given(*PAID, RefundIssued(3000, "x")).when(refund(701)).then_raises(RefundExceedsCapturedError)
    given(*OPEN).when(refund(1)).then_raises(RefundExceedsCapturedError)


# --- AddCustomerNote ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "history",
    [(CREATED,), OPEN, PAID, (*PAID, SHIPPED, OrderDelivered()), (*OPEN, OrderCancelled("x"))],
    ids=["created", "open", "paid", "delivered", "cancelled"],
)
def test_notes_are_allowed_in_any_status(history: Any) -> None:
    given(*history).when(note()).then(CustomerNoteAdded("support", "Gift wrap please"))
    given(*history).when(note()).then_state(note_count=1)


# --- evolve ---------------------------------------------------------------------------------


def test_evolve_follows_the_design_table() -> None:
    history: list[OrderEvent] = [
        *OPEN,
        ItemRemoved("SKU-2", 1),
        DiscountApplied("W", 200),
        ADDRESS,
        PaymentFailed("pay-0", "declined"),
        PaymentAuthorized("pay-1", 3200, "card"),
        PaymentCaptured("pay-1", 3200),
        SHIPPED,
        OrderDelivered(),
        RefundIssued(500, "late"),
        CustomerNoteAdded("ada", "thanks"),
    ]
    state = fold(ORDER_DECIDER, history, OrderState.initial(OID))
    assert order_state_fields(state) == {
        "order_id": OID,
        "customer_id": "c-1",
        "currency": "EUR",
        "status": "delivered",
        "item_count": 5,
        "subtotal_cents": 3400,
        "discount_cents": 200,
        "total_cents": 3200,
        "authorized_cents": 3200,
        "captured_cents": 3200,
        "refunded_cents": 500,
        "payment_failures": 1,
        "shipping_city": "Lisbon",
        "shipping_country": "PT",
        "carrier": "DHL",
        "note_count": 1,
        "version": len(history),
        "last_event_type": "CustomerNoteAdded",
    }
    assert tuple(order_state_fields(state)) == PUBLIC_FIELDS


def test_initial_state() -> None:
    state = OrderState.initial(OID)
    assert (state.order_id, state.status, state.exists, state.version) == (OID, "none", False, 0)
    assert ORDER_DECIDER.initial_state == OrderState.initial()
    assert dataclasses.replace(ORDER_DECIDER.initial_state, order_id=OID) == state
    assert ORDER_DECIDER.stream_type == "order"


def test_evolve_is_pure_and_counts_versions() -> None:
    start = OrderState.initial(OID)
    after = evolve(start, CREATED)
    assert start == OrderState.initial(OID)
    assert (after.version, after.last_event_type) == (1, "OrderCreated")
    assert evolve(after, TEAPOT).version == 2


def test_capture_does_not_mark_an_empty_order_paid() -> None:
    history: list[OrderEvent] = [CREATED, PaymentCaptured("p", 5)]
    state = fold(ORDER_DECIDER, history, OrderState.initial(OID))
    assert (state.status, state.captured_cents) == ("open", 5)


def test_capture_does_not_reopen_or_change_a_closed_status() -> None:
    history: list[OrderEvent] = [*OPEN, OrderCancelled("x"), PaymentCaptured("p", 99999)]
    assert fold(ORDER_DECIDER, history, OrderState.initial(OID)).status == "cancelled"


def test_evolve_is_total_on_odd_raw_histories() -> None:
    odd: list[OrderEvent] = [
        ItemRemoved("nope", 3),
        PaymentCaptured("ghost", 10),
        OrderDelivered(),
        CREATED,
        ItemAdded("S", "s", 1, 100),
        ItemAdded("S", "s", 1, 250),
        ItemRemoved("S", 5),
        PaymentFailed("ghost", "x"),
        PaymentFailed("ghost", "x"),
        RefundIssued(10**6, "x"),
        CREATED,
    ]
    state = fold(ORDER_DECIDER, odd, OrderState.initial(OID))
    assert state.version == len(odd)
    assert state.item_count == -3 + 2 - 5
    assert state.subtotal_cents == 100 + 250 - 5 * 250
    assert state.total_cents == state.subtotal_cents - state.discount_cents
    assert state.payment_failures == 2
    assert state.status == "open"


# --- properties -----------------------------------------------------------------------------

SKUS = {"A": 100, "B": 250, "C": 0}

texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12).filter(
    lambda s: bool(s.strip())
)
small = st.integers(min_value=1, max_value=5000)


def _cmd(cls: Any, **strategies: Any) -> st.SearchStrategy[Any]:
    return st.builds(cls, order_id=st.just(OID), at=st.just(AT), **strategies)


commands = st.one_of(
    _cmd(
        AddItem,
        sku=st.sampled_from(sorted(SKUS)),
        product_name=st.just("p"),
        quantity=st.integers(1, 4),
        unit_price_cents=st.just(0),
    ).map(lambda c: dataclasses.replace(c, unit_price_cents=SKUS[c.sku])),
    _cmd(
        AddItem,
        sku=st.just("A"),
        product_name=st.just("p"),
        quantity=st.just(1),
        unit_price_cents=st.integers(0, 300),
    ),
    _cmd(RemoveItem, sku=st.sampled_from(sorted(SKUS)), quantity=st.integers(1, 4)),
    _cmd(ApplyDiscount, code=st.sampled_from(["X", "Y", "Z"]), amount_cents=st.integers(1, 400)),
    _cmd(
        UpdateShippingAddress,
        recipient=st.just("r"),
        street=st.just("s"),
        city=st.sampled_from(["Lisbon", "Porto"]),
        postal_code=st.just("1"),
        country=st.just("PT"),
    ),
    _cmd(
        AuthorizePayment,
        payment_id=st.sampled_from(["p1", "p2"]),
        amount_cents=small,
        method=st.just("card"),
    ),
    _cmd(CapturePayment, payment_id=st.sampled_from(["p1", "p2"]), amount_cents=small),
    _cmd(FailPayment, payment_id=st.sampled_from(["p1", "p2", "p3"]), reason=st.just("no")),
    _cmd(ShipOrder, carrier=st.sampled_from(["DHL", "UPS"]), tracking_number=st.just("T")),
    _cmd(DeliverOrder),
    # rare, so that most runs live long enough to pay and ship
    st.integers(0, 7).map(lambda n: cancel("r") if n == 7 else deliver()),
    _cmd(IssueRefund, amount_cents=small, reason=st.just("r")),
    _cmd(AddCustomerNote, author=st.just("a"), note=texts),
    st.just(create()),
    st.just(create(channel="phone")),
)

IDEMPOTENT = (
    CreateOrder,
    ApplyDiscount,
    UpdateShippingAddress,
    AuthorizePayment,
    FailPayment,
    ShipOrder,
    DeliverOrder,
    CancelOrder,
)


def _capture_of(payment_id: str, amount: int) -> CapturePayment:
    return capture(payment_id, amount)


def next_command(state: OrderState) -> st.SearchStrategy[Any]:
    """Any command, or one likely to pass the rules in this state (so runs reach paid/shipped)."""
    likely: list[st.SearchStrategy[Any]] = [commands]
    due = max(state.total_cents - state.authorized_cents, 1)
    likely.append(st.sampled_from(["p1", "p2"]).map(lambda p: authorize(p, due)))
    for p in state.payments:
        left = p.authorized_cents - p.captured_cents
        if not p.failed and left > 0:
            amounts = st.one_of(st.just(left), st.integers(1, left))
            likely.append(amounts.map(functools.partial(_capture_of, p.payment_id)))
    if state.status == "paid":
        likely += [st.just(address()), st.just(ship("DHL", "T"))]
    if state.status == "shipped":
        likely.append(st.just(deliver()))
    if state.captured_cents > state.refunded_cents:
        likely.append(st.integers(1, state.captured_cents - state.refunded_cents).map(refund))
    return st.one_of(likely)


def run(draw: Any, steps: int) -> tuple[OrderState, list[tuple[Any, list[OrderEvent]]]]:
    """Create the order, then decide and evolve drawn commands, skipping refused ones."""
    state = OrderState.initial(OID)
    accepted = []
    for i in range(steps + 1):
        command = create() if i == 0 else draw(next_command(state))
        try:
            events = decide(command, state)
        except OrderRuleError:
            continue
        state = fold(ORDER_DECIDER, events, state)
        accepted.append((command, events))
        check_invariants(state)
        if isinstance(command, IDEMPOTENT) or (
            isinstance(command, CapturePayment)
            and (p := state.payment(command.payment_id)) is not None
            and p.captured_cents == p.authorized_cents == command.amount_cents
        ):
            assert decide(command, state) == [], f"{command} is not idempotent after {events}"
    return state, accepted


def check_invariants(state: OrderState) -> None:
    """What every state reached through decide must satisfy."""
    assert state.total_cents == state.subtotal_cents - state.discount_cents
    assert state.item_count == sum(line.quantity for line in state.lines)
    assert state.subtotal_cents == sum(x.quantity * x.unit_price_cents for x in state.lines)
    assert 0 <= state.discount_cents <= state.subtotal_cents
    assert 0 <= state.refunded_cents <= state.captured_cents
    assert state.captured_cents == sum(p.captured_cents for p in state.payments)
    assert state.authorized_cents == sum(p.authorized_cents for p in state.payments)
    assert all(p.captured_cents <= p.authorized_cents for p in state.payments)
    assert state.status in {"open", "paid", "shipped", "delivered", "cancelled"}
    if state.status in {"paid", "shipped", "delivered"}:
        assert state.captured_cents >= state.total_cents > 0
    if state.status in {"shipped", "delivered"}:
        assert state.shipping_city is not None and state.carrier is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@hgiven(st.data(), st.integers(0, 40))
def test_valid_sequences_keep_invariants_and_repeats_are_no_ops(
    data: st.DataObject, steps: int
) -> None:
    state, accepted = run(data.draw, steps)
    assert state.version == sum(len(events) for _, events in accepted)
    assert state == fold(
        ORDER_DECIDER, [e for _, es in accepted for e in es], OrderState.initial(OID)
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@hgiven(st.data(), st.integers(0, 40))
def test_state_json_round_trips(data: st.DataObject, steps: int) -> None:
    state, _ = run(data.draw, steps)
    text = json.dumps(state_to_json(state))
    assert state_from_json(json.loads(text)) == state
    assert ORDER_DECIDER.state_from_json(ORDER_DECIDER.state_to_json(state)) == state


def test_state_from_json_rejects_unreadable_state() -> None:
    from eventlog.errors import IntegrityError

    data = state_to_json(OrderState.initial(OID))
    with pytest.raises(IntegrityError):
        state_from_json({k: v for k, v in data.items() if k != "lines"})
    with pytest.raises(IntegrityError):
        state_from_json({**data, "surprise": 1})
