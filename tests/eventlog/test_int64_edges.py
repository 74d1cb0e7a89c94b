"""Integers at and past the int64 edges: what the log accepts must be what every projection holds.

A field declared plainly as ``int`` takes the whole signed 64-bit range and nothing past
it; the Order domain's fields declare tighter bounds (see test_events.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from eventlog.codec import EventRegistry
from eventlog.envelope import NewEvent
from eventlog.errors import InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.log import open_order_log


@dataclass(frozen=True, slots=True)
class Measured:
    """A reading with a plain integer field (no declared bounds)."""

    value: int


REGISTRY = EventRegistry().register(Measured, stream_type="sensor")


def open_log(lake: Path) -> EventLog:
    return EventLog.open(lake, registry=REGISTRY)


@pytest.mark.parametrize("value", [-(2**63), -(2**63) + 1, 0, 2**63 - 2, 2**63 - 1])
def test_int64_edges_are_appended_and_read_back_exactly(lake: Path, value: int) -> None:
    with open_log(lake) as log:
        log.append("s-1", [NewEvent("Measured", {"value": value})], stream_type="sensor")
        log.seal()
        [back] = log.events_at([1])
        assert log.verify().ok
    assert back.payload["value"] == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64])
def test_an_integer_outside_int64_is_refused_and_nothing_is_written(lake: Path, value: int) -> None:
    with open_log(lake) as log:
        with pytest.raises(InvalidInputError, match=r"Measured\.value is .* outside the range"):
            log.append("s-1", [NewEvent("Measured", {"value": value})], stream_type="sensor")
        assert log.head() == 0


def test_the_order_domain_refuses_what_its_projections_cannot_sum(lake: Path) -> None:
    item = {"sku": "s", "product_name": "p", "quantity": 1, "unit_price_cents": 2**63 - 1}
    with open_order_log(lake) as log:
        with pytest.raises(InvalidInputError, match="unit_price_cents"):
            log.append("o-1", [NewEvent("ItemAdded", item)])
        assert log.head() == 0
