"""Filling the vector tables: the log's order events in chunks, narrated, encoded, upserted.

Only new or changed texts are encoded: events after the checkpoint, and the stories of
the orders those events touched whose text changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from eventlog.envelope import RecordedEvent, records_from_batch
from eventlog.log import EventLog
from eventlog.orders.events import STREAM_TYPE
from projections.embeddings import Embedder
from projections.narratives import OrderFacts, add_record, narrate, order_story
from projections.vector_store import VectorStore, event_schema, sql_string, story_schema

_IN_BATCH = 500


class _FactsCache:
    """Facts of the orders a run touches, loaded from the order's stream when first seen."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.facts: dict[str, OrderFacts] = {}

    def before(self, rec: RecordedEvent) -> OrderFacts:
        facts = self.facts.get(rec.stream_id)
        if facts is None:
            facts = OrderFacts.initial(rec.stream_id)
            if rec.version > 1:
                for old in records_from_batch(self.log.read_stream(rec.stream_id)):
                    if old.version >= rec.version:
                        break
                    facts = _add(self.log, facts, old)
        return facts

    def apply(self, rec: RecordedEvent) -> tuple[OrderFacts, OrderFacts]:
        before = self.before(rec)
        after = _add(self.log, before, rec)
        self.facts[rec.stream_id] = after
        return before, after


def _add(log: EventLog, facts: OrderFacts, rec: RecordedEvent) -> OrderFacts:
    event = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
    return add_record(facts, rec, event)


def _order_records(log: EventLog, after: int, chunk: int) -> Iterator[list[RecordedEvent]]:
    """Chunks of ``chunk`` events of the log after a position (parts re-chunked across)."""
    pending: list[RecordedEvent] = []
    for table in log.read(after=after):
        for offset in range(0, table.num_rows, chunk):
            pending.extend(records_from_batch(table.slice(offset, chunk)))
            while len(pending) >= chunk:
                yield pending[:chunk]
                pending = pending[chunk:]
    if pending:
        yield pending


def _is_order(log: EventLog, rec: RecordedEvent) -> bool:
    return rec.stream_type == STREAM_TYPE and rec.event_type in log.registry


def _vector_array(vectors: np.ndarray, dimension: int) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, dimension)


def _upsert(tbl: Any, key: str, data: pa.Table) -> None:
    (tbl.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(data))


def _existing(
    tbl: Any, where: str, key: str, ahead: dict[Any, int] | None = None
) -> dict[Any, tuple[str, np.ndarray]]:
    """Stored (text, vector) by key; ``ahead`` gets each stored story's last_position."""
    columns = [key, "text", "vector"] + (["last_position"] if ahead is not None else [])
    got = tbl.search().where(where).select(columns).to_arrow()
    if got.num_rows == 0:
        return {}
    if ahead is not None:
        ahead.update(
            zip(got.column(key).to_pylist(), got.column("last_position").to_pylist(), strict=True)
        )
    vectors = np.asarray(got.column("vector").combine_chunks().flatten()).reshape(got.num_rows, -1)
    keys = got.column(key).to_pylist()
    texts = got.column("text").to_pylist()
    return {k: (t, vectors[i]) for i, (k, t) in enumerate(zip(keys, texts, strict=True))}


def _encode_changed(
    embedder: Embedder,
    texts: dict[Any, str],
    existing: dict[Any, tuple[str, np.ndarray]],
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` in key order, encoding only those whose text is new or changed."""
    keys = list(texts)
    todo = [k for k in keys if k not in existing or existing[k][0] != texts[k]]
    fresh = embedder.encode([texts[k] for k in todo]) if todo else None
    out = np.zeros((len(keys), embedder.dimension), dtype=np.float32)
    fresh_at = {k: i for i, k in enumerate(todo)}
    for i, k in enumerate(keys):
        if k in fresh_at:
            assert fresh is not None
            out[i] = fresh[fresh_at[k]]
        else:
            out[i] = existing[k][1]
    return out, len(todo)


@dataclass
class Run:
    applied: int = 0
    encoded: int = 0
    written: int = 0
    last_position: int = 0
    last_recorded: datetime | None = None


def catch_up_events(
    store: VectorStore, log: EventLog, embedder: Embedder, table: str, chunk: int
) -> Run:
    tbl = store.ensure_table(table, event_schema(embedder.dimension))
    start, _ = store.checkpoint(table)
    run = Run(last_position=start)
    cache = _FactsCache(log)
    for records in _order_records(log, start, chunk):
        rows: list[dict[str, Any]] = []
        for rec in records:
            if not _is_order(log, rec):
                continue
            before, after = cache.apply(rec)
            event = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
            rows.append(
                {
                    "position": rec.position,
                    "event_id": rec.event_id,
                    "order_id": rec.stream_id,
                    "customer_id": after.state.customer_id,
                    "event_type": rec.event_type,
                    "occurred_at": rec.occurred_at,
                    "recorded_at": rec.recorded_at,
                    "text": narrate(event, before),
                    "model": embedder.name,
                }
            )
        last = records[-1]
        if rows:
            lo, hi = rows[0]["position"], rows[-1]["position"]
            existing = _existing(
                tbl, f"position >= {int(lo)} AND position <= {int(hi)}", "position"
            )
            texts = {r["position"]: r["text"] for r in rows}
            vectors, encoded = _encode_changed(embedder, texts, existing)
            data = pa.Table.from_pylist(rows, schema=event_schema(embedder.dimension).remove(8))
            data = data.add_column(8, "vector", _vector_array(vectors, embedder.dimension))
            _upsert(tbl, "position", data)
            run.encoded += encoded
            run.written += len(rows)
            run.applied += len(rows)
        store.set_checkpoint(table, last.position, last.recorded_at)
        run.last_position, run.last_recorded = last.position, last.recorded_at
    return run


def _story_rows(touched: dict[str, OrderFacts], model: str) -> list[dict[str, Any]]:
    rows = []
    for order_id, facts in touched.items():
        s = facts.state
        rows.append(
            {
                "order_id": order_id,
                "customer_id": s.customer_id,
                "status": s.status,
                "last_position": facts.last_position,
                "first_occurred_at": facts.first_occurred_at,
                "last_occurred_at": facts.last_occurred_at,
                "recorded_at": facts.last_recorded_at,
                "text": order_story(facts),
                "model": model,
            }
        )
    return rows


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_string(v) for v in values) + ")"


def catch_up_stories(
    store: VectorStore, log: EventLog, embedder: Embedder, table: str, chunk: int
) -> Run:
    tbl = store.ensure_table(table, story_schema(embedder.dimension))
    start, _ = store.checkpoint(table)
    run = Run(last_position=start)
    cache = _FactsCache(log)
    for records in _order_records(log, start, chunk):
        touched: dict[str, OrderFacts] = {}
        for rec in records:
            if _is_order(log, rec):
                touched[rec.stream_id] = cache.apply(rec)[1]
                run.applied += 1
        last = records[-1]
        ids = list(touched)
        existing: dict[Any, tuple[str, np.ndarray]] = {}
        stored_at: dict[Any, int] = {}
        for i in range(0, len(ids), _IN_BATCH):
            where = f"order_id IN {_in_list(ids[i : i + _IN_BATCH])}"
            existing.update(_existing(tbl, where, "order_id", stored_at))
        # a replay behind a stored story (lost checkpoint) must not write an older story
        touched = {k: f for k, f in touched.items() if stored_at.get(k, 0) <= f.last_position}
        if touched:
            rows = _story_rows(touched, embedder.name)
            texts = {r["order_id"]: r["text"] for r in rows}
            vectors, encoded = _encode_changed(embedder, texts, existing)
            data = pa.Table.from_pylist(rows, schema=story_schema(embedder.dimension).remove(8))
            data = data.add_column(8, "vector", _vector_array(vectors, embedder.dimension))
            _upsert(tbl, "order_id", data)
            run.encoded += encoded
            run.written += len(rows)
        store.set_checkpoint(table, last.position, last.recorded_at)
        run.last_position, run.last_recorded = last.position, last.recorded_at
    return run
