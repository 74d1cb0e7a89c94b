"""The Order domain's errors: bad command input (exit 2) and business rules (exit 4).

Each rule error is a tiny class whose docstring line is its message; the order id
and a detail (amounts, skus, statuses) are added when raised.
"""

from __future__ import annotations

from eventlog.errors import InvalidInputError, RuleError


class InvalidCommandError(InvalidInputError):
    """A command whose fields do not fit what the command expects."""


class OrderRuleError(RuleError):
    """An order business rule said no to a command."""

    def __init__(self, order_id: str = "", detail: str = "") -> None:
        super().__init__(order_id, detail)
        self.order_id = order_id
        self.detail = detail
        text = (type(self).__doc__ or type(self).__name__).strip().splitlines()[0]
        if order_id:
            text = f"order {order_id!r}: {text}"
        if detail:
            text = f"{text} ({detail})"
        self.message = text

    def __str__(self) -> str:
        return self.message


class OrderNotFoundError(OrderRuleError):
    """The order does not exist; create it first."""


class OrderAlreadyExistsError(OrderRuleError):
    """An order with this id already exists with different details."""


class OrderAlreadyPaidError(OrderRuleError):
    """A paid order's items, discounts and payments cannot change."""


class OrderClosedError(OrderRuleError):
    """A cancelled, shipped or delivered order cannot be changed this way."""


class ItemNotInCartError(OrderRuleError):
    """The cart does not hold that many units of this item."""


class PriceMismatchError(OrderRuleError):
    """The item is already in the cart at a different unit price."""


class DiscountExceedsSubtotalError(OrderRuleError):
    """Discounts may not exceed the order's subtotal."""


class EmptyOrderError(OrderRuleError):
    """An order without items cannot be paid."""


class PaymentNotAuthorizedError(OrderRuleError):
    """The payment was never authorized, or its authorization failed."""


class PaymentAlreadyCapturedError(OrderRuleError):
    """A payment that has captured money cannot fail."""


class CaptureExceedsAuthorizationError(OrderRuleError):
    """A capture may not exceed what is left of its authorization."""


class OrderNotPaidError(OrderRuleError):
    """An order cannot ship before it is paid."""


class MissingShippingAddressError(OrderRuleError):
    """An order cannot ship without a shipping address."""


class OrderNotShippedError(OrderRuleError):
    """An order cannot be delivered before it has shipped."""


class RefundExceedsCapturedError(OrderRuleError):
    """Refunds may not exceed the money captured."""
