"""Given / when / then for the Order decider, in the style of Emmett's DeciderSpecification.

    given(created, item_added).when(CapturePayment(...)).then(PaymentCaptured(...))
    given(created).when(AddItem(...)).then_raises(OrderAlreadyPaidError)

The state starts as ``OrderState.initial(command.order_id)``, is folded through the
given events with ``ORDER_DECIDER.evolve``, and the command is decided against it.
"""

from __future__ import annotations

import dataclasses
import pprint
import re

from eventlog.decider import fold
from eventlog.errors import LedgerLakeError
from eventlog.orders import ORDER_DECIDER, OrderCommand, OrderEvent, OrderState


def _show(value: object) -> str:
    return pprint.pformat(value, width=100)


@dataclasses.dataclass(frozen=True)
class Given:
    """Events that already happened to the order."""

    events: tuple[OrderEvent, ...]

    def when(self, command: OrderCommand) -> When:
        """Decide ``command`` against the state these events fold to."""
        return When(self.events, command)


def given(*events: OrderEvent) -> Given:
    """Start a specification from the events that already happened (none: a new order)."""
    return Given(events)


@dataclasses.dataclass(frozen=True)
class When:
    """A command decided against the given history; the ``then_*`` methods assert the outcome."""

    events: tuple[OrderEvent, ...]
    command: OrderCommand

    @property
    def state(self) -> OrderState:
        """The state the given events fold to, for the command's order."""
        start = OrderState.initial(self.command.order_id)
        return fold(ORDER_DECIDER, self.events, start)

    def _context(self) -> str:
        return f"given:\n{_show(list(self.events))}\nwhen:\n{_show(self.command)}"

    def decided(self) -> list[OrderEvent]:
        """The events decide returns; a raised error fails the test with the context."""
        try:
            return ORDER_DECIDER.decide(self.command, self.state)
        except LedgerLakeError as exc:
            raise AssertionError(
                f"decide raised {type(exc).__name__}: {exc}\n{self._context()}"
            ) from exc

    def then(self, *expected: OrderEvent) -> list[OrderEvent]:
        """Assert that decide returns exactly these events, in this order."""
        actual = self.decided()
        if actual != list(expected):
            raise AssertionError(
                f"expected events:\n{_show(list(expected))}\nbut decide returned:\n"
                f"{_show(actual)}\n{self._context()}"
            )
        return actual

    def then_nothing(self) -> None:
        """Assert that decide returns no events (an idempotent repeat)."""
        actual = self.decided()
        if actual:
            raise AssertionError(
                f"expected no events (an idempotent repeat), but decide returned:\n"
                f"{_show(actual)}\n{self._context()}"
            )

    def then_raises(self, error: type[Exception], match: str | None = None) -> Exception:
        """Assert that decide raises ``error`` (optionally with a message matching ``match``)."""
        try:
            actual = ORDER_DECIDER.decide(self.command, self.state)
        except error as exc:
            if match is not None and not re.search(match, str(exc)):
                raise AssertionError(
                    f"{type(exc).__name__} message {str(exc)!r} does not match {match!r}\n"
                    f"{self._context()}"
                ) from exc
            return exc
        except Exception as exc:
            raise AssertionError(
                f"expected {error.__name__}, but decide raised {type(exc).__name__}: {exc}\n"
                f"{self._context()}"
            ) from exc
        raise AssertionError(
            f"expected {error.__name__}, but decide returned:\n{_show(actual)}\n{self._context()}"
        )

    def then_state(self, **fields: object) -> OrderState:
        """Assert fields of the state after the decided events are evolved in."""
        state = fold(ORDER_DECIDER, self.decided(), self.state)
        names = {f.name for f in dataclasses.fields(OrderState)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise AssertionError(f"OrderState has no fields {unknown}")
        wrong = {
            name: (expected, getattr(state, name))
            for name, expected in fields.items()
            if getattr(state, name) != expected
        }
        if wrong:
            lines = "\n".join(
                f"  {name}: expected {exp!r}, got {got!r}" for name, (exp, got) in wrong.items()
            )
            raise AssertionError(f"state fields differ:\n{lines}\n{self._context()}")
        return state
