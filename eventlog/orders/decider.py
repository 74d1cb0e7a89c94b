"""The Order decider: the order state, ``evolve`` (event -> state) and ``decide`` (command -> events).

Both are pure. ``evolve`` follows the order-state table of docs/projections.md and never raises, so
it can fold raw-appended histories too. ``decide`` raises an OrderRuleError for a
business "no" and returns ``[]`` for an idempotent repeat.

Over 400 lines on purpose: the state, ``evolve`` for every event type and ``decide``
for every command are one set of rules, read side by side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar, assert_never

from eventlog.decider import Decider
from eventlog.errors import IntegrityError, InvalidInputError
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
from eventlog.orders.errors import (
    CaptureExceedsAuthorizationError,
    DiscountExceedsSubtotalError,
    EmptyOrderError,
    ItemNotInCartError,
    MissingShippingAddressError,
    OrderAlreadyExistsError,
    OrderAlreadyPaidError,
    OrderClosedError,
    OrderNotFoundError,
    OrderNotPaidError,
    OrderNotShippedError,
    PaymentAlreadyCapturedError,
    PaymentNotAuthorizedError,
    PriceMismatchError,
    RefundExceedsCapturedError,
)
from eventlog.orders.events import (
    STREAM_TYPE,
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

CLOSED = frozenset({"cancelled", "shipped", "delivered"})


@dataclass(frozen=True, slots=True)
class Line:
    """One sku in the cart: how many units, at which unit price."""

    sku: str
    product_name: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment of the order: what it reserved, what it took, whether it failed."""

    payment_id: str
    authorized_cents: int
    captured_cents: int
    failed: bool


@dataclass(frozen=True, slots=True)
class Address:
    """Where the order ships to."""

    recipient: str
    street: str
    city: str
    postal_code: str
    country: str


@dataclass(frozen=True, slots=True)
class OrderState:
    """The state of one order: its public fields (docs/projections.md) and what the rules need."""

    order_id: str = ""
    exists: bool = False
    status: str = "none"
    customer_id: str = ""
    customer_name: str = ""
    customer_email: str = ""
    currency: str = ""
    channel: str = ""
    item_count: int = 0
    subtotal_cents: int = 0
    discount_cents: int = 0
    total_cents: int = 0
    authorized_cents: int = 0
    captured_cents: int = 0
    refunded_cents: int = 0
    payment_failures: int = 0
    shipping_city: str | None = None
    shipping_country: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    note_count: int = 0
    version: int = 0
    last_event_type: str | None = None
    lines: tuple[Line, ...] = ()
    payments: tuple[Payment, ...] = ()
    discount_codes: tuple[str, ...] = ()
    shipping_address: Address | None = None

    @classmethod
    def initial(cls, order_id: str = "") -> OrderState:
        """The state of an order that does not exist yet."""
        return cls(order_id=order_id)

    def line(self, sku: str) -> Line | None:
        """The cart line of a sku, if it is in the cart."""
        return next((line for line in self.lines if line.sku == sku), None)

    def payment(self, payment_id: str) -> Payment | None:
        """The payment with this id, if the order knows it."""
        return next((p for p in self.payments if p.payment_id == payment_id), None)


def initial_state(order_id: str = "") -> OrderState:
    """The state of an order that does not exist yet (the start of every fold)."""
    return OrderState.initial(order_id)


PUBLIC_FIELDS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "currency",
    "status",
    "item_count",
    "subtotal_cents",
    "discount_cents",
    "total_cents",
    "authorized_cents",
    "captured_cents",
    "refunded_cents",
    "payment_failures",
    "shipping_city",
    "shipping_country",
    "carrier",
    "note_count",
    "version",
    "last_event_type",
)


def order_state_fields(state: OrderState) -> dict[str, Any]:
    """The public fields of the order state, in table order (for CLI and projections)."""
    return {name: getattr(state, name) for name in PUBLIC_FIELDS}


# --- evolve -------------------------------------------------------------------------------


def _replace_line(lines: tuple[Line, ...], line: Line) -> tuple[Line, ...]:
    kept = tuple(x for x in lines if x.sku != line.sku)
    return (*kept, line) if line.quantity > 0 else kept


def _replace_payment(payments: tuple[Payment, ...], payment: Payment) -> tuple[Payment, ...]:
    if any(p.payment_id == payment.payment_id for p in payments):
        return tuple(payment if p.payment_id == payment.payment_id else p for p in payments)
    return (*payments, payment)


_T = TypeVar("_T", "OrderState", "Line", "Payment")


def _replace(value: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` without its per-call field introspection (evolve is hot)."""
    values = {name: getattr(value, name) for name in _FIELD_NAMES[type(value)]}
    values.update(changes)
    return type(value)(**values)


def _apply(state: OrderState, event: OrderEvent) -> dict[str, Any]:
    """The fields an event changes (evolve builds the new state once, from all of them)."""
    r = _replace
    match event:
        case OrderCreated():
            return dict(
                exists=True,
                status="open",
                customer_id=event.customer_id,
                customer_name=event.customer_name,
                customer_email=event.customer_email,
                currency=event.currency,
                channel=event.channel,
            )
        case ItemAdded():
            old = state.line(event.sku)
            quantity = event.quantity + (old.quantity if old else 0)
            line = Line(event.sku, event.product_name, quantity, event.unit_price_cents)
            return dict(
                lines=_replace_line(state.lines, line),
                item_count=state.item_count + event.quantity,
                subtotal_cents=state.subtotal_cents + event.quantity * event.unit_price_cents,
            )
        case ItemRemoved():
            old = state.line(event.sku)
            price = old.unit_price_cents if old else 0
            lines = state.lines
            if old is not None:
                lines = _replace_line(lines, r(old, quantity=old.quantity - event.quantity))
            return dict(
                lines=lines,
                item_count=state.item_count - event.quantity,
                subtotal_cents=state.subtotal_cents - event.quantity * price,
            )
        case DiscountApplied():
            return dict(
                discount_cents=state.discount_cents + event.amount_cents,
                discount_codes=(*state.discount_codes, event.code),
            )
        case ShippingAddressUpdated():
            address = Address(
                event.recipient, event.street, event.city, event.postal_code, event.country
            )
            return dict(
                shipping_address=address,
                shipping_city=event.city,
                shipping_country=event.country,
            )
        case PaymentAuthorized():
            old_payment = state.payment(event.payment_id)
            payment = (
                r(old_payment, authorized_cents=old_payment.authorized_cents + event.amount_cents)
                if old_payment
                else Payment(event.payment_id, event.amount_cents, 0, False)
            )
            return dict(
                payments=_replace_payment(state.payments, payment),
                authorized_cents=state.authorized_cents + event.amount_cents,
            )
        case PaymentCaptured():
            old_payment = state.payment(event.payment_id)
            payment = (
                r(old_payment, captured_cents=old_payment.captured_cents + event.amount_cents)
                if old_payment
                else Payment(event.payment_id, 0, event.amount_cents, False)
            )
            captured = state.captured_cents + event.amount_cents
            paid = (
                state.status == "open" and state.total_cents > 0 and captured >= state.total_cents
            )
            return dict(
                payments=_replace_payment(state.payments, payment),
                captured_cents=captured,
                status="paid" if paid else state.status,
            )
        case PaymentFailed():
            old_payment = state.payment(event.payment_id)
            payment = (
                r(old_payment, failed=True)
                if old_payment
                else Payment(event.payment_id, 0, 0, True)
            )
            return dict(
                payments=_replace_payment(state.payments, payment),
                payment_failures=state.payment_failures + 1,
            )
        case OrderShipped():
            return dict(
                status="shipped",
                carrier=event.carrier,
                tracking_number=event.tracking_number,
            )
        case OrderDelivered():
            return dict(status="delivered")
        case OrderCancelled():
            return dict(status="cancelled")
        case RefundIssued():
            return dict(refunded_cents=state.refunded_cents + event.amount_cents)
        case CustomerNoteAdded():
            return dict(note_count=state.note_count + 1)
        case _:
            assert_never(event)


def evolve(state: OrderState, event: OrderEvent) -> OrderState:
    """The state after one event: pure, total, one version further."""
    values = {name: getattr(state, name) for name in _FIELD_NAMES[OrderState]}
    values.update(_apply(state, event))
    values["total_cents"] = values["subtotal_cents"] - values["discount_cents"]
    values["version"] = state.version + 1
    values["last_event_type"] = type(event).__name__
    return OrderState(**values)


# --- decide -------------------------------------------------------------------------------


def _money(cents: int, state: OrderState) -> str:
    return f"{cents} {state.currency}".strip()


def _require_cart_editable(order_id: str, state: OrderState) -> None:
    if state.status in CLOSED:
        raise OrderClosedError(order_id, f"status is {state.status}")
    if state.status == "paid" or state.captured_cents > 0:
        raise OrderAlreadyPaidError(
            order_id, f"{_money(state.captured_cents, state)} already captured"
        )


def create_order(cmd: CreateOrder, state: OrderState) -> list[OrderEvent]:
    """Open the order; an identical repeat is a no-op, a different one is refused."""
    event = OrderCreated(
        cmd.customer_id, cmd.customer_name, cmd.customer_email, cmd.currency, cmd.channel
    )
    if state.exists:
        same = (
            state.customer_id,
            state.customer_name,
            state.customer_email,
            state.currency,
            state.channel,
        ) == dataclasses.astuple(event)
        if same:
            return []
        raise OrderAlreadyExistsError(cmd.order_id, f"customer {state.customer_id!r}")
    return [event]


def add_item(cmd: AddItem, state: OrderState) -> list[OrderEvent]:
    """Put units into the cart; a sku keeps the unit price it was first added at."""
    _require_cart_editable(cmd.order_id, state)
    line = state.line(cmd.sku)
    if line is not None and line.unit_price_cents != cmd.unit_price_cents:
        raise PriceMismatchError(
            cmd.order_id,
            f"{cmd.sku} is in the cart at {_money(line.unit_price_cents, state)}, "
            f"not {_money(cmd.unit_price_cents, state)}",
        )
    return [ItemAdded(cmd.sku, cmd.product_name, cmd.quantity, cmd.unit_price_cents)]


def remove_item(cmd: RemoveItem, state: OrderState) -> list[OrderEvent]:
    """Take units out of the cart; never more than it holds, never below the discounts."""
    _require_cart_editable(cmd.order_id, state)
    line = state.line(cmd.sku)
    held = line.quantity if line else 0
    if line is None or cmd.quantity > held:
        raise ItemNotInCartError(
            cmd.order_id, f"cannot remove {cmd.quantity} of {cmd.sku}; the cart holds {held}"
        )
    subtotal = state.subtotal_cents - cmd.quantity * line.unit_price_cents
    if subtotal < state.discount_cents:
        raise DiscountExceedsSubtotalError(
            cmd.order_id,
            f"removing would leave a subtotal of {_money(subtotal, state)} "
            f"below {_money(state.discount_cents, state)} of discounts",
        )
    return [ItemRemoved(cmd.sku, cmd.quantity)]


def apply_discount(cmd: ApplyDiscount, state: OrderState) -> list[OrderEvent]:
    """Take an amount off; a code counts once, and discounts never exceed the subtotal."""
    if cmd.code in state.discount_codes:
        return []
    _require_cart_editable(cmd.order_id, state)
    if state.discount_cents + cmd.amount_cents > state.subtotal_cents:
        raise DiscountExceedsSubtotalError(
            cmd.order_id,
            f"{_money(state.discount_cents + cmd.amount_cents, state)} of discounts "
            f"against a subtotal of {_money(state.subtotal_cents, state)}",
        )
    return [DiscountApplied(cmd.code, cmd.amount_cents)]


def update_shipping_address(cmd: UpdateShippingAddress, state: OrderState) -> list[OrderEvent]:
    """Set the shipping address until the order ships; the same address again is a no-op."""
    address = Address(cmd.recipient, cmd.street, cmd.city, cmd.postal_code, cmd.country)
    if state.shipping_address == address:
        return []
    if state.status in CLOSED:
        raise OrderClosedError(cmd.order_id, f"status is {state.status}")
    return [ShippingAddressUpdated(*dataclasses.astuple(address))]


def authorize_payment(cmd: AuthorizePayment, state: OrderState) -> list[OrderEvent]:
    """Record an authorization on an open order with items; a known payment id is a no-op."""
    if state.payment(cmd.payment_id) is not None:
        return []
    if state.status in CLOSED:
        raise OrderClosedError(cmd.order_id, f"status is {state.status}")
    if state.status == "paid":
        raise OrderAlreadyPaidError(
            cmd.order_id, f"{_money(state.captured_cents, state)} already captured"
        )
    if state.item_count <= 0:
        raise EmptyOrderError(cmd.order_id)
    return [PaymentAuthorized(cmd.payment_id, cmd.amount_cents, cmd.method)]


def capture_payment(cmd: CapturePayment, state: OrderState) -> list[OrderEvent]:
    """Take money from an authorization, never more than is left of it."""
    payment = state.payment(cmd.payment_id)
    if payment is None or payment.failed or payment.authorized_cents <= 0:
        raise PaymentNotAuthorizedError(cmd.order_id, f"payment {cmd.payment_id!r}")
    fully = payment.captured_cents >= payment.authorized_cents
    if fully and cmd.amount_cents == payment.captured_cents:
        return []
    if state.status == "cancelled":
        raise OrderClosedError(cmd.order_id, "status is cancelled")
    left = payment.authorized_cents - payment.captured_cents
    if cmd.amount_cents > left:
        raise CaptureExceedsAuthorizationError(
            cmd.order_id,
            f"capture of {_money(cmd.amount_cents, state)} on payment {cmd.payment_id!r} "
            f"with {_money(left, state)} left of {_money(payment.authorized_cents, state)}",
        )
    return [PaymentCaptured(cmd.payment_id, cmd.amount_cents)]


def fail_payment(cmd: FailPayment, state: OrderState) -> list[OrderEvent]:
    """Record a declined payment (known or not); a repeat for a failed payment is a no-op."""
    payment = state.payment(cmd.payment_id)
    if payment is not None and payment.failed:
        return []
    if state.status in CLOSED:
        raise OrderClosedError(cmd.order_id, f"status is {state.status}")
    if payment is not None and payment.captured_cents > 0:
        raise PaymentAlreadyCapturedError(
            cmd.order_id,
            f"payment {cmd.payment_id!r} captured {_money(payment.captured_cents, state)}",
        )
    return [PaymentFailed(cmd.payment_id, cmd.reason)]


def ship_order(cmd: ShipOrder, state: OrderState) -> list[OrderEvent]:
    """Hand a paid order with an address to a carrier; the same shipment again is a no-op."""
    if state.status in {"shipped", "delivered"}:
        if (state.carrier, state.tracking_number) == (cmd.carrier, cmd.tracking_number):
            return []
        raise OrderClosedError(
            cmd.order_id,
            f"already {state.status} with {state.carrier} {state.tracking_number}",
        )
    if state.status == "cancelled":
        raise OrderClosedError(cmd.order_id, "status is cancelled")
    if state.status != "paid":
        raise OrderNotPaidError(
            cmd.order_id,
            f"captured {_money(state.captured_cents, state)} of {_money(state.total_cents, state)}",
        )
    if state.shipping_address is None:
        raise MissingShippingAddressError(cmd.order_id)
    return [OrderShipped(cmd.carrier, cmd.tracking_number)]


def deliver_order(cmd: DeliverOrder, state: OrderState) -> list[OrderEvent]:
    """Record delivery of a shipped order; a repeat is a no-op."""
    if state.status == "delivered":
        return []
    if state.status == "cancelled":
        raise OrderClosedError(cmd.order_id, "status is cancelled")
    if state.status != "shipped":
        raise OrderNotShippedError(cmd.order_id, f"status is {state.status}")
    return [OrderDelivered()]


def cancel_order(cmd: CancelOrder, state: OrderState) -> list[OrderEvent]:
    """Cancel an order that has not shipped; cancelling again is a no-op."""
    if state.status == "cancelled":
        return []
    if state.status in CLOSED:
        raise OrderClosedError(cmd.order_id, f"status is {state.status}")
    return [OrderCancelled(cmd.reason)]


def issue_refund(cmd: IssueRefund, state: OrderState) -> list[OrderEvent]:
    """Pay back captured money, never more than was captured in all."""
    if state.refunded_cents + cmd.amount_cents > state.captured_cents:
        raise RefundExceedsCapturedError(
            cmd.order_id,
            f"refunds would total {_money(state.refunded_cents + cmd.amount_cents, state)} "
            f"of {_money(state.captured_cents, state)} captured",
        )
    return [RefundIssued(cmd.amount_cents, cmd.reason)]


def add_customer_note(cmd: AddCustomerNote, state: OrderState) -> list[OrderEvent]:
    """Write a note on the order, in any status."""
    return [CustomerNoteAdded(cmd.author, cmd.note)]


def decide(command: OrderCommand, state: OrderState) -> list[OrderEvent]:
    """The events a command produces against a state: [] for a repeat, an error for a "no"."""
    if state.order_id and command.order_id != state.order_id:
        raise InvalidInputError(
            f"{type(command).__name__} is for order {command.order_id!r} "
            f"but was decided against order {state.order_id!r}"
        )
    if not state.exists and not isinstance(command, CreateOrder):
        raise OrderNotFoundError(command.order_id)
    match command:
        case CreateOrder():
            return create_order(command, state)
        case AddItem():
            return add_item(command, state)
        case RemoveItem():
            return remove_item(command, state)
        case ApplyDiscount():
            return apply_discount(command, state)
        case UpdateShippingAddress():
            return update_shipping_address(command, state)
        case AuthorizePayment():
            return authorize_payment(command, state)
        case CapturePayment():
            return capture_payment(command, state)
        case FailPayment():
            return fail_payment(command, state)
        case ShipOrder():
            return ship_order(command, state)
        case DeliverOrder():
            return deliver_order(command, state)
        case CancelOrder():
            return cancel_order(command, state)
        case IssueRefund():
            return issue_refund(command, state)
        case AddCustomerNote():
            return add_customer_note(command, state)
        case _:
            assert_never(command)


# --- state as JSON ------------------------------------------------------------------------


def _flat(value: Any) -> dict[str, Any]:
    """A flat slotted dataclass as a dict (shallow: its fields are str/int/bool/None)."""
    return {name: getattr(value, name) for name in _FIELD_NAMES[type(value)]}


def state_to_json(state: OrderState) -> dict[str, Any]:
    """The state as a JSON-ready dict (lines, payments and address as nested objects)."""
    data = {name: getattr(state, name) for name in _FIELD_NAMES[OrderState]}
    data["lines"] = [_flat(line) for line in state.lines]
    data["payments"] = [_flat(p) for p in state.payments]
    data["discount_codes"] = list(state.discount_codes)
    address = state.shipping_address
    data["shipping_address"] = None if address is None else _flat(address)
    return data


def state_from_json(data: dict[str, Any]) -> OrderState:
    """The state that ``state_to_json`` wrote; IntegrityError when it cannot be read back."""
    try:
        values = dict(data)
        values["lines"] = tuple(Line(**x) for x in values["lines"])
        values["payments"] = tuple(Payment(**x) for x in values["payments"])
        values["discount_codes"] = tuple(values["discount_codes"])
        address = values["shipping_address"]
        values["shipping_address"] = None if address is None else Address(**address)
        names = {f.name for f in dataclasses.fields(OrderState)}
        if set(values) != names:
            raise TypeError(f"fields {sorted(set(values) ^ names)} do not match OrderState")
        return OrderState(**values)
    except (KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"stored order state cannot be read back: {exc}") from None


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (OrderState, Line, Payment, Address)
}

ORDER_DECIDER: Decider[OrderCommand, OrderEvent, OrderState] = Decider(
    decide=decide,
    evolve=evolve,
    initial_state=OrderState.initial(),
    stream_type=STREAM_TYPE,
    state_to_json=state_to_json,
    state_from_json=state_from_json,
    initial_for=OrderState.initial,
)
