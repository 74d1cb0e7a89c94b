"""Forgetting a data subject: destroy their key, then record the erasure in the log.

From the moment the key is gone every read path shows ``ERASED`` in place of the
subject's personal fields; the events, positions and parts stay as they were. The
erasure event is what the projections and the erasure cascade act on. Forgetting a
subject again changes nothing (the event is appended only if an earlier forget died
between destroying the key and recording it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventlog.envelope import NO_STREAM, NewEvent, to_micros
from eventlog.errors import InvalidInputError

if TYPE_CHECKING:
    from eventlog.log import EventLog


class UnknownSubjectError(InvalidInputError):
    """No key was ever made for this subject: there is nothing of theirs to forget."""


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What a forget did: the key it destroyed, and where the erasure was recorded."""

    subject: str
    key_id: str
    already: bool
    position: int | None


def forget(
    log: EventLog,
    subject: str,
    *,
    stream_id: str,
    event: Callable[[str, str], NewEvent],
    stream_type: str | None = None,
) -> ForgetResult:
    """Destroy ``subject``'s key and append ``event(subject, key_id)`` to ``stream_id``."""
    store = log.shredder.store
    if store is None:
        raise InvalidInputError(
            f"the tail of {log.root} keeps no keys ({log.tail.describe()}): its events are "
            "not encrypted and cannot be forgotten by destroying a key"
        )
    if not subject or subject.startswith("stream:"):
        raise InvalidInputError(f"{subject!r} is not a customer id")
    known = store.subject(subject)
    if known is None:
        raise UnknownSubjectError(
            f"no customer {subject!r} in {log.root}: no key was ever made for them "
            "(a customer known only from events written before encryption cannot be forgotten)"
        )
    destroyed = store.destroy(subject, to_micros(log.clock()))
    assert destroyed is not None
    key_id, already = destroyed
    log.shredder.forget_cached()
    log.remember([], None)  # the rows kept for reading back hold plaintext
    recorded = log.stream_version(stream_id) > 0
    if recorded:
        return ForgetResult(subject, key_id, True, None)
    new = event(subject, key_id)
    res = log.append(stream_id, [new], expected_version=NO_STREAM, stream_type=stream_type)
    return ForgetResult(subject, key_id, already, res.last_position)


def erasure_payload(subject: str, key_id: str) -> dict[str, Any]:
    """The payload of the Order domain's ``CustomerErased``."""
    return {"customer_id": subject, "key_id": key_id}
