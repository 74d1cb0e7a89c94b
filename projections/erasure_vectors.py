"""The erasure cascade in LanceDB: narratives and stories of forgotten customers rendered again.

For every physical vector table: the rows of the forgotten customers' orders are deleted;
in the tables the aliases serve, those orders' events and stories are rendered again from
the log (whose personal fields now read as erased), embedded and added back. Then every
fragment holding a deleted row is rewritten (``materialize_deletions_threshold=0``), the
text index rebuilt (it holds the old tokens), and every older version and unreferenced
file removed (``cleanup_older_than=0``, ``delete_unverified``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from eventlog.envelope import records_from_batch
from eventlog.log import EventLog
from projections.embeddings import Embedder, embedder_for
from projections.narratives import OrderFacts, narrate
from projections.vector_fill import (
    _IN_BATCH,
    _add,
    _in_list,
    _is_order,
    _story_rows,
    _vector_array,
)
from projections.vector_store import (
    EVENT_NARRATIVES,
    ORDER_STORIES,
    VectorStore,
    event_schema,
    story_schema,
    vectors_dir,
)


def _where(customers: Sequence[str]) -> list[str]:
    return [
        f"customer_id IN {_in_list(customers[i : i + _IN_BATCH])}"
        for i in range(0, len(customers), _IN_BATCH)
    ]


def _orders_of(tbl: Any, customers: Sequence[str]) -> list[str]:
    found: set[str] = set()
    for where in _where(customers):
        got = tbl.search().where(where).select(["order_id"]).to_arrow()
        found.update(got.column("order_id").to_pylist())
    return sorted(found)


def _rendered(
    log: EventLog, orders: Sequence[str], model: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(narrative rows, story rows) of ``orders`` rendered from the log as it reads now."""
    events: list[dict[str, Any]] = []
    touched: dict[str, OrderFacts] = {}
    for order_id in orders:
        facts = OrderFacts.initial(order_id)
        for rec in records_from_batch(log.read_stream(order_id)):
            if not _is_order(log, rec):
                continue
            before = facts
            facts = _add(log, facts, rec)
            event = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
            events.append(
                {
                    "position": rec.position,
                    "event_id": rec.event_id,
                    "order_id": rec.stream_id,
                    "customer_id": facts.state.customer_id,
                    "event_type": rec.event_type,
                    "occurred_at": rec.occurred_at,
                    "recorded_at": rec.recorded_at,
                    "text": narrate(event, before),
                    "model": model,
                }
            )
        touched[order_id] = facts
    return events, _story_rows(touched, model)


def _add_rows(tbl: Any, rows: list[dict[str, Any]], schema: pa.Schema, embedder: Embedder) -> int:
    if not rows:
        return 0
    vectors = embedder.encode([r["text"] for r in rows])
    data = pa.Table.from_pylist(rows, schema=schema.remove(8))
    data = data.add_column(8, "vector", _vector_array(vectors, embedder.dimension))
    tbl.add(data)
    return len(rows)


def _scrub(tbl: Any) -> None:
    """Rewrite fragments with deletions, rebuild the indexes, drop every older version."""
    from lancedb.index import FTS, HnswSq

    ds = tbl.to_lance()
    ds.optimize.compact_files(materialize_deletions=True, materialize_deletions_threshold=0.0)
    tbl.checkout_latest()
    for idx in list(tbl.list_indices()):
        if "text" in idx.columns:
            tbl.create_index("text", config=FTS(), replace=True)
        elif "vector" in idx.columns:
            rows = tbl.count_rows()
            config = HnswSq(distance_type="cosine", num_partitions=max(1, rows // 100_000))
            tbl.create_index("vector", config=config, replace=True)
    tbl.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)


def erase_vectors(
    lake: Path, log: EventLog, customers: Sequence[str], embedder: Embedder | None = None
) -> dict[str, Any]:
    """Delete, re-render and re-embed the forgotten customers' rows; returns the receipt part."""
    if not (vectors_dir(lake) / "aliases.json").exists():
        return {"skipped": "no vector store"}
    store = VectorStore(lake, create=False)
    served = {a.table: a for a in store.aliases().values()}
    tables: dict[str, Any] = {}
    for name in store.table_names():
        tbl = store.open_table(name)
        orders = _orders_of(tbl, customers)
        deleted = 0
        for where in _where(customers):
            before = tbl.count_rows()
            tbl.delete(where)
            deleted += before - tbl.count_rows()
        added = 0
        alias = served.get(name)
        if alias is not None and orders:
            enc = (
                embedder
                if embedder is not None and embedder.name == alias.model
                else embedder_for(alias.model, alias.dimension, alias.model_path)
            )
            narratives, stories = _rendered(log, orders, enc.name)
            if alias.name == EVENT_NARRATIVES:
                added = _add_rows(tbl, narratives, event_schema(enc.dimension), enc)
            elif alias.name == ORDER_STORIES:
                added = _add_rows(tbl, stories, story_schema(enc.dimension), enc)
        _scrub(tbl)
        tables[name] = {
            "served_as": alias.name if alias is not None else None,
            "orders": len(orders),
            "rows_deleted": deleted,
            "rows_embedded_again": added,
            "versions_left": len(tbl.list_versions()),
        }
    return {"tables": tables}
