"""Semantic (and hybrid) search over the vector projections, filterable and as-known-at.

Filters become a LanceDB ``where`` prefilter built only from validated values: event
types from the Order registry, customer ids as escaped string literals, times as
parsed UTC timestamps. ``known_at`` at the events level keeps events with
``recorded_at <= known_at``. At the orders level a stored story may include events
recorded after ``known_at``, so it would leak: there the search runs over the event
narratives known at that time, groups the hits by order (best event score), and
returns each order's story rebuilt from its events recorded by ``known_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from eventlog.envelope import records_from_batch
from eventlog.errors import InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.events import ORDER_EVENT_TYPES
from eventlog.orders.log import reading
from projections.embeddings import Embedder, embedder_for
from projections.narratives import OrderFacts, add_record, order_story
from projections.onnx_embedder import reader_cache_dir
from projections.vector_store import (
    EVENT_NARRATIVES,
    ORDER_STORIES,
    Alias,
    VectorStore,
    sql_string,
    sql_timestamp,
)

Level = Literal["events", "orders"]
LEVELS: tuple[str, ...] = ("events", "orders")
MODES: tuple[str, ...] = ("vector", "fts", "hybrid")
DEFAULT_MODES = {"events": "vector", "orders": "fts"}
"""Per level, the mode with the best nDCG@10 on the labelled evaluation set (docs/search.md)."""
SCORE_MEANING = {
    "vector": "cosine similarity of the query and the text (1 = same direction, 0 = unrelated)",
    "fts": "BM25 relevance of the text's words to the query's words (unbounded; higher is better)",
    "hybrid": "reciprocal-rank fusion: the sum over the vector and the full-text ranking of "
    "1/(60 + rank), rank 1 = best; 0.033 = first in both, 0.016 = first in one and absent "
    "from the other (only the order counts, not the distances)",
}
MAX_K = 1_000
NPROBES = 20
REFINE_FACTOR = 5
EF = 128


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result: how well it matched, which order and event, when, and the text."""

    score: float
    order_id: str
    event_type: str | None
    occurred_at: datetime | None
    recorded_at: datetime | None
    text: str
    position: int | None = None
    customer_id: str | None = None
    status: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601)."""
        return {
            "score": round(self.score, 6),
            "order_id": self.order_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "text": self.text,
            "position": self.position,
            "customer_id": self.customer_id,
            "status": self.status,
        }


def validate_query(
    query: str,
    *,
    k: int,
    level: str,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    known_at: datetime | None,
) -> None:
    """InvalidInputError (exit 2) for an empty query, k out of range, unknown level or type."""
    if not query or not query.strip():
        raise InvalidInputError("the search query is empty; give some words to search for")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
    if level not in LEVELS:
        raise InvalidInputError(f"level must be one of {list(LEVELS)}, got {level!r}")
    if event_type is not None and event_type not in ORDER_EVENT_TYPES:
        raise InvalidInputError(
            f"unknown event type {event_type!r}; expected one of {', '.join(ORDER_EVENT_TYPES)}"
        )
    if event_type is not None and level == "orders":
        raise InvalidInputError("--type filters events; use it with --level events")
    for label, value in (("since", since), ("until", until), ("known_at", known_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(f"{label} must be timezone-aware, got {value}")
    if since is not None and until is not None and since > until:
        raise InvalidInputError(f"since {since.isoformat()} is after until {until.isoformat()}")


def _event_where(
    event_type: str | None,
    customer: str | None,
    since: datetime | None,
    until: datetime | None,
    known_at: datetime | None,
) -> str | None:
    parts = []
    if event_type is not None:
        parts.append(f"event_type = {sql_string(event_type)}")
    if customer is not None:
        parts.append(f"customer_id = {sql_string(customer)}")
    if since is not None:
        parts.append(f"occurred_at >= {sql_timestamp(since)}")
    if until is not None:
        parts.append(f"occurred_at <= {sql_timestamp(until)}")
    if known_at is not None:
        parts.append(f"recorded_at <= {sql_timestamp(known_at)}")
    return " AND ".join(parts) or None


def _story_where(
    customer: str | None, since: datetime | None, until: datetime | None
) -> str | None:
    parts = []
    if customer is not None:
        parts.append(f"customer_id = {sql_string(customer)}")
    if since is not None:  # the order's history overlaps [since, until]
        parts.append(f"last_occurred_at >= {sql_timestamp(since)}")
    if until is not None:
        parts.append(f"first_occurred_at <= {sql_timestamp(until)}")
    return " AND ".join(parts) or None


def _query(
    tbl: Any, vector: Any, text: str, where: str | None, limit: int, mode: str
) -> list[dict[str, Any]]:
    if mode == "fts":
        q = tbl.search(text, query_type="fts").limit(limit)
    else:
        q = (
            tbl.search(query_type="hybrid").vector(vector).text(text)
            if mode == "hybrid"
            else tbl.search(vector, query_type="vector")
        )
        q = q.distance_type("cosine").nprobes(NPROBES).refine_factor(REFINE_FACTOR).ef(EF)
        q = q.limit(limit)
    if where:
        q = q.where(where, prefilter=True)
    rows: list[dict[str, Any]] = q.to_arrow().drop_columns(["vector"]).to_pylist()
    for row in rows:
        if mode == "hybrid":
            row["score"] = float(row["_relevance_score"])
        elif mode == "fts":
            row["score"] = float(row["_score"])
        else:
            row["score"] = 1.0 - float(row["_distance"])
    return rows


def search_mode(mode: str | None, hybrid: bool, level: str = "events") -> str:
    """The mode to search with: ``mode`` if given, ``hybrid`` for the flag, else the level's default."""
    if mode is None:
        return "hybrid" if hybrid else DEFAULT_MODES.get(level, "vector")
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if hybrid and mode != "hybrid":
        raise InvalidInputError(f"--hybrid contradicts --mode {mode}")
    return mode


def _query_embedder(alias: Alias, embedder: Embedder | None, lake: Path) -> Embedder:
    if embedder is None:  # ONNX Runtime on the CPU: a query needs no torch import
        return embedder_for(
            alias.model,
            alias.dimension,
            alias.model_path,
            cache_dir=reader_cache_dir(lake, alias.model_path),
        )
    if embedder.name != alias.model or embedder.dimension != alias.dimension:
        raise InvalidInputError(
            f"the {alias.name} vectors were made by {alias.model} ({alias.dimension}-d); "
            f"the query embedder is {embedder.name} ({embedder.dimension}-d)"
        )
    return embedder


def _event_hit(row: dict[str, Any]) -> SearchHit:
    return SearchHit(
        score=row["score"],
        order_id=row["order_id"],
        event_type=row["event_type"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        text=row["text"],
        position=row["position"],
        customer_id=row["customer_id"],
    )


def _story_known_at(log: EventLog, order_id: str, known_at: datetime) -> OrderFacts:
    facts = OrderFacts.initial(order_id)
    for rec in records_from_batch(log.read_stream(order_id)):
        if rec.recorded_at <= known_at:
            event = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
            facts = add_record(facts, rec, event)
    return facts


def _orders_known_at(
    lake: Path, rows: list[dict[str, Any]], k: int, known_at: datetime
) -> list[SearchHit]:
    best: dict[str, dict[str, Any]] = {}
    for row in rows:  # rows come best first
        best.setdefault(row["order_id"], row)
    chosen = list(best.values())[:k]
    hits = []
    with reading(lake) as log:
        for row in chosen:
            facts = _story_known_at(log, row["order_id"], known_at)
            hits.append(
                SearchHit(
                    score=row["score"],
                    order_id=row["order_id"],
                    event_type=None,
                    occurred_at=facts.last_occurred_at,
                    recorded_at=facts.last_recorded_at,
                    text=order_story(facts),
                    position=facts.last_position,
                    customer_id=facts.state.customer_id,
                    status=facts.state.status,
                )
            )
    return hits


def search(
    lake: Path,
    query: str,
    *,
    k: int = 10,
    level: str = "events",
    event_type: str | None = None,
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    known_at: datetime | None = None,
    hybrid: bool = False,
    embedder: Embedder | None = None,
    mode: str | None = None,
    store: VectorStore | None = None,
) -> list[SearchHit]:
    """The ``k`` events (or orders) that best match ``query``, best first, filtered.

    ``mode``: ``vector`` (meaning), ``fts`` (words, BM25) or ``hybrid`` (both, fused by
    rank); None means ``hybrid`` when ``hybrid`` is true, else the level's DEFAULT_MODES.
    A long-lived caller (the server) passes its ``store`` to keep the tables open.
    """
    # With known_at the orders level searches the event narratives: their default applies.
    how = search_mode(mode, hybrid, "events" if known_at is not None else level)
    validate_query(
        query, k=k, level=level, event_type=event_type, since=since, until=until, known_at=known_at
    )
    store = store or VectorStore(Path(lake), create=False)
    if level == "events" or known_at is not None:
        alias = store.require(EVENT_NARRATIVES)
        enc = _query_embedder(alias, embedder, Path(lake))
        vector = enc.encode([query])[0]
        where = _event_where(event_type, customer, since, until, known_at)
        limit = k if level == "events" else min(MAX_K * 10, k * 20)
        rows = _query(store.open_table(alias.table), vector, query, where, limit, how)
        if level == "events":
            return [_event_hit(r) for r in rows]
        assert known_at is not None
        return _orders_known_at(Path(lake), rows, k, known_at)
    alias = store.require(ORDER_STORIES)
    enc = _query_embedder(alias, embedder, Path(lake))
    vector = enc.encode([query])[0]
    rows = _query(
        store.open_table(alias.table),
        vector,
        query,
        _story_where(customer, since, until),
        k,
        how,
    )
    return [
        SearchHit(
            score=r["score"],
            order_id=r["order_id"],
            event_type=None,
            occurred_at=r["last_occurred_at"],
            recorded_at=r["recorded_at"],
            text=r["text"],
            position=r["last_position"],
            customer_id=r["customer_id"],
            status=r["status"],
        )
        for r in rows
    ]
