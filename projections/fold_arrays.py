"""Array helpers of the numpy Order fold: event kinds, runs of sorted keys, columns.

Shared by ``projections.fold`` (the order state) and ``projections.fold_lines`` (cart
lines and payments): both work on event rows sorted by (order, occurred_at, version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlog.orders.events import ORDER_EVENT_TYPES

Take = Callable[[str, np.ndarray], pa.Array]
"""A column's values at sorted-row indices (-1: null)."""
TIMESTAMP = pa.timestamp("us", tz="UTC")
"""The type of every time the fold gives (microseconds, UTC)."""

# event kind codes: positions in the domain's list of event types
TYPES = ORDER_EVENT_TYPES
CREATED = TYPES.index("OrderCreated")
ADDED = TYPES.index("ItemAdded")
REMOVED = TYPES.index("ItemRemoved")
DISCOUNT = TYPES.index("DiscountApplied")
ADDRESS = TYPES.index("ShippingAddressUpdated")
AUTHORIZED = TYPES.index("PaymentAuthorized")
CAPTURED = TYPES.index("PaymentCaptured")
FAILED = TYPES.index("PaymentFailed")
SHIPPED = TYPES.index("OrderShipped")
DELIVERED = TYPES.index("OrderDelivered")
CANCELLED = TYPES.index("OrderCancelled")
REFUND = TYPES.index("RefundIssued")
NOTE = TYPES.index("CustomerNoteAdded")


class Segments:
    """Contiguous runs of equal keys in a sorted array, and per-run array helpers."""

    def __init__(self, starts: np.ndarray) -> None:
        self.n = len(starts)
        self.first = np.flatnonzero(starts)
        self.run = np.cumsum(starts) - 1
        self.first_of_row = self.first[self.run] if self.n else self.first
        self.rows = np.arange(self.n)
        self.last = np.append(self.first[1:] - 1, self.n - 1) if self.n else self.first
        """Each run's last row."""

    def cumsum(self, x: np.ndarray) -> np.ndarray:
        total = np.cumsum(x)
        return np.asarray(total - (total[self.first] - x[self.first])[self.run])

    def last_index(self, mask: np.ndarray) -> np.ndarray:
        """Index of the latest row <= this one in the run where mask holds, else -1."""
        ff = np.maximum.accumulate(np.where(mask, self.rows, -1))
        return np.asarray(np.where(ff >= self.first_of_row, ff, -1))

    def first_in_run(self, mask: np.ndarray) -> np.ndarray:
        """Per run, the index of its first row where mask holds, else -1."""
        if not self.n:
            return self.rows
        firsts = np.minimum.reduceat(np.where(mask, self.rows, self.n), self.first)
        return np.asarray(np.where(firsts < self.n, firsts, -1))

    def cummin(self, x: np.ndarray) -> np.ndarray:
        """Running minimum within each run (via ranks, so no value range can overflow)."""
        values, ranks = np.unique(x, return_inverse=True)
        shifted = ranks.astype(np.int64) - self.run.astype(np.int64) * (len(values) + 1)
        acc = np.minimum.accumulate(shifted) + self.run * (len(values) + 1)
        return np.asarray(values[acc])


def run_starts(*keys: np.ndarray) -> np.ndarray:
    """True at each row whose keys differ from the row before (rows sorted by the keys)."""
    n = len(keys[0])
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = np.zeros(n - 1, dtype=bool)
        for key in keys:
            starts[1:] |= key[1:] != key[:-1]
    return starts


def ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).fill_null(0).to_numpy(), dtype=np.int64)


def micros(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).cast(pa.int64()).to_numpy(), dtype=np.int64)


def stamps(values: np.ndarray) -> pa.Array:
    """Microseconds since the epoch as UTC timestamps (no copy)."""
    return pa.array(values, type=pa.int64()).cast(TIMESTAMP)


def times(values: np.ndarray, index: np.ndarray) -> pa.Array:
    missing = index < 0
    picked = values[np.where(missing, 0, index)] if len(values) else values
    return pa.array(picked, mask=missing, type=pa.int64()).cast(TIMESTAMP)


def ranked_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Each value's rank among the distinct values (in sort order), and how many there are.

    Rows sorted by these codes come out in value order whatever the input's order, so
    a table built from them does not depend on how its rows were split.
    """
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    rank = np.empty(len(encoded.dictionary), dtype=np.int64)
    rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank))
    codes = rank[encoded.indices.to_numpy()] if len(encoded) else np.zeros(0, dtype=np.int64)
    return codes, len(rank)


class Dictionaries:
    """String columns of the fold as Arrow dictionary arrays (DuckDB reads them as
    VARCHAR): the values a column takes at the rows that set it, taken once per column,
    and per state the index of its setter among those rows."""

    def __init__(self, take: Take, n: int) -> None:
        self._take = take
        self._n = n
        self._values: dict[tuple[str, str | None], pa.Array] = {}

    def codes(self, setters: np.ndarray, latest: np.ndarray) -> np.ndarray:
        """Per sorted row, the index among ``setters`` of the row ``latest`` names (-1: none)."""
        slot = np.full(self._n + 1, -1, dtype=np.int32)
        slot[setters] = np.arange(len(setters), dtype=np.int32)
        return np.asarray(slot[latest])  # latest -1 reads slot[n]: -1

    def column(
        self, name: str, setters: np.ndarray, codes: np.ndarray, fill: str | None = None
    ) -> pa.Array:
        """Column ``name`` at the setters ``codes`` index (-1: null, or ``fill``)."""
        values = self._values.get((name, fill))
        if values is None:
            taken = self._take(name, setters)
            values = taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken
            if fill is not None:  # one more value, the fill, for the rows with no setter
                values = pa.concat_arrays([values.fill_null(fill), pa.array([fill])])
            self._values[(name, fill)] = values
        if fill is not None:
            return pa.DictionaryArray.from_arrays(
                np.where(codes < 0, len(values) - 1, codes).astype(np.int32), values
            )
        missing = codes < 0
        if values.null_count:
            missing |= values.is_null().to_numpy(zero_copy_only=False)[np.maximum(codes, 0)]
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=missing), values)


@contextmanager
def small_pages() -> Iterator[None]:
    """numpy's large arrays without the transparent-huge-page hint while the fold runs.

    numpy asks Linux for huge pages for every large array (``madvise``). Where the
    kernel compacts memory to serve them at the fault (THP defrag ``madvise``, the
    default of many distributions), the fold's temporaries cost more time in the kernel
    than in numpy: the first fold of 10M events in a process took 11.3-11.4 s with the
    hint (9.4-9.8 s of it system time) and 8.2-8.6 s without (3.8-3.9 s). The hint is
    numpy's process-wide setting: it is put back as it was afterwards.
    """
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    hint = getattr(multiarray, "_set_madvise_hugepage", None)
    if hint is None:  # another numpy: its pages stay as they are
        yield
        return
    previous = hint(False)
    try:
        yield
    finally:
        hint(previous)
