"""What bulk appends leave behind, caught up lazily: stream heads and the log's index.

A bulk append writes parts and moves ``head``, but no per-stream head, no stream
index row and no event-id index row: those would cost more than the Parquet itself.
The counters say how far each reaches (``heads_head``, ``index_head``, ``ids_head``);
the next writer or reader that needs one catches it up from the parts, in key order
(B-tree appends, not random page splits). Every answer the log gives is current
either way: a reader that may not write folds the lagging parts in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlog.bulk import json_string_array
from eventlog.tails import Tail, event_hash

ReadLocked = Callable[[int, int, list[str]], Iterator[pa.Table]]


def max_per_stream(rows: pa.Table) -> pa.Table:
    """(stream_id, version): the highest version of each stream among ``rows``."""
    grouped = rows.group_by(["stream_id"], use_threads=False).aggregate([("version", "max")])
    return grouped.rename_columns(["stream_id", "version"])


class LaggingHeads:
    """Stream heads and the index of one log handle, with the cache of lagging maxima."""

    def __init__(
        self,
        tail: Tail,
        read: ReadLocked,
        write: Callable[[], AbstractContextManager[None]],
        bulk_heads_lag: int,
    ) -> None:
        self.tail = tail
        self._read = read
        self._write = write
        self.bulk_heads_lag = bulk_heads_lag
        # (heads_head, upto, per-stream version maxima of (heads_head, upto]): ``stale``
        self._stale: tuple[int, int, pa.Table] | None = None

    # ---------------------------------------------------------------- heads
    def rows_after(self, start: int, head: int) -> pa.Table:
        """(stream_id, stream_type, version) of the events in (start, head], all in parts."""
        tables = list(self._read(start, head, ["stream_id", "stream_type", "version"]))
        if not tables:
            return pa.table({"stream_id": [], "stream_type": [], "version": []})
        return pa.concat_tables(tables)

    def version_with_lag(self, stream_id: str, stored: int) -> int:
        """A stored head raised to what bulk appends added since (readers do not write it)."""
        meta = self.tail.metas()
        if meta["heads_head"] >= meta["head"]:
            return stored
        stale = self.stale(meta["heads_head"], meta["head"])
        mine = stale.filter(pc.equal(stale.column("stream_id"), stream_id))
        return int(max([stored, *mine.column("version").to_pylist()]))

    def catch_up(self, meta: dict[str, int] | None = None) -> None:
        """Bring the stream heads up to the log head (inside a write transaction)."""
        meta = meta or self.tail.metas()
        start, head = meta["heads_head"], meta["head"]
        if start >= head:
            return
        self.bump(self.rows_after(start, head))
        self.tail.set_meta("heads_head", head)

    def bump(self, rows: pa.Table) -> None:
        """Raise each stream's head to the highest version in ``rows`` (key order)."""
        rows = pa.table(
            {
                "stream_id": rows.column("stream_id"),
                "stream_type": rows.column("stream_type").cast(pa.string()),
                "version": rows.column("version"),
            }
        )
        grouped = rows.group_by(["stream_id"], use_threads=False).aggregate(
            [("version", "max"), ("stream_type", "first")]
        )
        self.tail.bump_streams(
            sorted(
                zip(
                    grouped.column("stream_id").to_pylist(),
                    grouped.column("stream_type_first").to_pylist(),
                    grouped.column("version_max").to_pylist(),
                    strict=True,
                )
            )
        )

    def ensure(self) -> None:
        """The stream heads current (a write transaction when they lag)."""
        meta = self.tail.metas()
        if meta["heads_head"] < meta["head"]:
            with self._write():
                self.catch_up()

    def bulk_base(self, uniques: pa.Array) -> np.ndarray:
        """Current versions of a bulk batch's distinct streams (aligned with ``uniques``).

        Stored heads, raised to the maxima of the events bulk appends have not folded into
        them yet; vectorized, since a batch may touch a hundred thousand streams.
        """
        meta = self.tail.metas()
        if meta["head"] - meta["heads_head"] > self.bulk_heads_lag:
            self.catch_up(meta)
            meta = self.tail.metas()
        base = np.zeros(len(uniques), dtype=np.int64)
        ids, versions = (
            self.tail.stream_versions_arrow(json_string_array(uniques))
            if self.tail.has_streams()
            else ([], [])
        )
        if ids:
            at = pc.index_in(pa.array(ids, pa.string()), uniques).to_numpy(zero_copy_only=False)
            base[at.astype(np.int64)] = versions
        if meta["heads_head"] < meta["head"]:
            stale = self.stale(meta["heads_head"], meta["head"])
            codes = pc.index_in(stale.column("stream_id"), uniques)
            mine = pc.is_valid(codes)
            at = codes.filter(mine).to_numpy(zero_copy_only=False).astype(np.int64)
            ver = stale.column("version").filter(mine).to_numpy().astype(np.int64)
            base[at] = np.maximum(base[at], ver)  # stale rows are one per stream
        elif self._stale is None or self._stale[:2] != (meta["head"], meta["head"]):
            # nothing lags: start the cache empty, so the next bulk append need not read
            # this one's parts back (from object storage that is a download)
            self._stale = (meta["head"], meta["head"], _empty_stale())
        return base

    def stale(self, start: int, head: int) -> pa.Table:
        """Per-stream version maxima of the events in (start, head] (see ``heads_head``).

        Kept in memory between bulk appends: positions at or below the cached range's end
        never change, so only the events appended since (by anyone) are read from parts.
        """
        cached = self._stale
        if cached is not None and cached[0] == start and cached[1] <= head:
            lo, table = cached[1], cached[2]
        else:
            lo, table = start, None
        if lo < head:
            rows = self.rows_after(lo, head)
            fresh = pa.table(
                {
                    "stream_id": rows.column("stream_id").cast(pa.string()),
                    "version": rows.column("version").cast(pa.int64()),
                }
            )
            table = max_per_stream(fresh if table is None else pa.concat_tables([table, fresh]))
        if table is None:
            table = _empty_stale()
        self._stale = (start, head, table)
        return table

    def stale_after(
        self, before: int, after: int, uniques: pa.Array, heads: np.ndarray
    ) -> tuple[int, int, pa.Table] | None:
        """The cache once a bulk append of (before, after] commits (None: not current).

        The batch's streams ``uniques`` then stand at ``heads``.
        """
        cached = self._stale
        if cached is None or cached[1] != before:
            return None
        mine = pa.table({"stream_id": uniques.cast(pa.string()), "version": pa.array(heads)})
        # the batch's heads are the new maxima of its streams: they replace older entries
        older = cached[2].filter(pc.invert(pc.is_in(cached[2].column("stream_id"), uniques)))
        return (cached[0], after, pa.concat_tables([older, mine]).combine_chunks())

    def set_stale(self, value: tuple[int, int, pa.Table] | None) -> None:
        """Install the cache ``stale_after`` computed, once its bulk append committed."""
        self._stale = value

    # ---------------------------------------------------------------- index
    def catch_up_index(self, *, ids: bool = True) -> None:
        """Index stream positions beyond ``index_head`` and, with ``ids``, event ids beyond
        ``ids_head`` (inside a write transaction)."""
        meta = self.tail.metas()
        head = meta["head"]
        stream_from = meta["index_head"]
        ids_from = meta["ids_head"] if ids else head
        start = min(stream_from, ids_from)
        if start >= head:
            return
        # Insert in key order: B-tree appends instead of random page splits (10x faster
        # for a million rows than inserting in position order).
        tables = list(self._read(start, head, ["position", "stream_id", "version", "event_id"]))
        rows = pa.concat_tables(tables) if tables else None
        streams: list[tuple[str, int, int]] = []
        hashes: list[tuple[int, int]] = []
        if rows is not None and stream_from < head:
            mine = rows.filter(pc.greater(rows.column("position"), stream_from))
            by_stream = mine.take(
                pc.sort_indices(mine, [("stream_id", "ascending"), ("version", "ascending")])
            )
            streams = list(
                zip(
                    by_stream.column("stream_id").to_pylist(),
                    by_stream.column("version").to_pylist(),
                    by_stream.column("position").to_pylist(),
                    strict=True,
                )
            )
        if rows is not None and ids_from < head:
            mine = rows.filter(pc.greater(rows.column("position"), ids_from))
            keys = np.fromiter(
                map(event_hash, mine.column("event_id").to_pylist()), np.int64, mine.num_rows
            )
            order = np.argsort(keys, kind="stable")
            hashes = list(
                zip(
                    keys[order].tolist(),
                    mine.column("position").to_numpy()[order].tolist(),
                    strict=True,
                )
            )
        self.tail.insert_index(streams, hashes, replace=True)
        updates = {"index_head": head}
        if ids:
            updates["ids_head"] = head
        self.tail.set_metas(updates)

    def ensure_index(self) -> None:
        """The stream index current (readers of streams need no event-id index)."""
        if self.tail.meta("index_head") < self.tail.meta("head"):
            with self._write():
                self.catch_up_index(ids=False)


def _empty_stale() -> pa.Table:
    """No lagging maxima (built when needed: a table at import time imports pandas)."""
    empty = {"stream_id": pa.array([], pa.string()), "version": pa.array([], pa.int64())}
    return max_per_stream(pa.table(empty))
