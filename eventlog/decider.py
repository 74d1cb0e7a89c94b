"""The Decider: a pure decide/evolve pair (the shell that runs it is ``eventlog.handler``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eventlog.errors import LedgerLakeError

if TYPE_CHECKING:
    from eventlog.envelope import RecordedEvent
    from eventlog.values import AppendResult

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Decider(Generic[C, E, S]):
    """``decide(command, state) -> events`` and ``evolve(state, event) -> state``, both pure.

    ``state_to_json``/``state_from_json`` let the log keep the write-model state in
    its stream index so a command never replays the stream; ``initial_for`` gives the
    empty state of a named stream; ``command_time`` reads the clock off a command.
    """

    decide: Callable[[C, S], list[E]]
    evolve: Callable[[S, E], S]
    initial_state: S
    stream_type: str
    state_to_json: Callable[[S], dict[str, Any]]
    state_from_json: Callable[[dict[str, Any]], S]
    initial_for: Callable[[str], S] | None = None
    command_time: Callable[[C], datetime | None] = field(default=lambda _c: getattr(_c, "at", None))

    def initial(self, stream_id: str) -> S:
        """The state of a stream before its first event."""
        return self.initial_for(stream_id) if self.initial_for else self.initial_state


def fold(decider: Decider[Any, E, S], events: Iterable[E], state: S | None = None) -> S:
    """Evolve the initial (or a given) state through events, in the given order."""
    current = decider.initial_state if state is None else state
    for event in events:
        current = decider.evolve(current, event)
    return current


@dataclass(frozen=True, slots=True)
class HandleResult(Generic[S]):
    """What a command did: the events it recorded (none for an idempotent repeat)."""

    stream_id: str
    events: list[RecordedEvent]
    state: S | None
    append: AppendResult | None = None
    duplicate: bool = False
    error: LedgerLakeError | None = None
