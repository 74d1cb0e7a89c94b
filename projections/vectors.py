"""LanceDB projections of the log: one embedded sentence per event, one story per order.

Each takes the log (or its lake) and the store (default: the lake's ``vectors/``), like
the warehouse projections. The store's layout is in ``projections.vector_store``; the
filling of a table (only new or changed texts are encoded) in ``projections.vector_fill``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import datetime

from eventlog.errors import InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.log import LogSource, reading
from projections.embeddings import Embedder, model_slug
from projections.report import ProjectionReport
from projections.vector_fill import catch_up_events, catch_up_stories
from projections.vector_location import vector_location
from projections.vector_store import (
    CHUNK_EVENTS,
    CODE_VERSION,
    EVENT_NARRATIVES,
    INDEX_THRESHOLD,
    PROJECTIONS,
    Alias,
    VectorStore,
    ensure_indexes,
)


def _versions(store: VectorStore, name: str, model: str) -> list[tuple[int, str]]:
    pattern = re.compile(rf"{re.escape(name)}__{re.escape(model_slug(model))}__v(\d+)")
    found = (pattern.fullmatch(t) for t in store.table_names())
    return sorted((int(m.group(1)), m.group(0)) for m in found if m)


def _target_table(store: VectorStore, name: str, embedder: Embedder, fresh: bool) -> str:
    alias = store.alias(name)
    if not fresh and alias is not None and alias.model == embedder.name:
        return alias.table
    versions = _versions(store, name, embedder.name)
    if versions and not fresh:
        return versions[-1][1]
    n = versions[-1][0] + 1 if versions else 1
    return f"{name}__{model_slug(embedder.name)}__v{n}"


def _lag(log: EventLog, position: int, recorded: datetime | None) -> tuple[int, float]:
    """(events, seconds) between the checkpoint and the log head."""
    head = log.head()
    if head <= position:
        return 0, 0.0
    head_rec = log.events_at([head])
    if not head_rec or recorded is None:
        return head - position, 0.0
    return head - position, max(0.0, (head_rec[0].recorded_at - recorded).total_seconds())


def _project(
    store: VectorStore,
    log: EventLog,
    embedder: Embedder,
    name: str,
    *,
    fresh: bool,
    chunk: int,
    index_threshold: int,
) -> ProjectionReport:
    began = time.perf_counter()
    table = _target_table(store, name, embedder, fresh)
    missing = store.checkpoint(table)[0] > 0 and table not in store.table_names()
    if fresh or missing:  # a table lost behind its checkpoint is rebuilt, not trusted
        store.drop(table)
    start, _ = store.checkpoint(table)
    step = catch_up_events if name == EVENT_NARRATIVES else catch_up_stories
    run = step(store, log, embedder, table, chunk)
    tbl = store.open_table(table)
    indexes = ensure_indexes(tbl, index_threshold=index_threshold)
    old = store.alias(name)
    if old is None or old.table != table:
        store.set_alias(
            Alias(
                name,
                table,
                embedder.name,
                embedder.dimension,
                getattr(embedder, "model_path", None),
            )
        )
        if fresh and old is not None and old.model == embedder.name:
            store.drop(old.table)
    position, recorded = store.checkpoint(table)
    lag_events, lag_seconds = _lag(
        log, position, datetime.fromisoformat(recorded) if recorded else None
    )
    return ProjectionReport(
        name=name,
        code_version=CODE_VERSION,
        from_position=start,
        to_position=position,
        events_applied=run.applied,
        rows=tbl.count_rows(),
        duration_s=time.perf_counter() - began,
        lag_events=lag_events,
        lag_seconds=lag_seconds,
        rebuilt=fresh or missing,
        extra={
            "table": table,
            "model": embedder.name,
            "encoded": run.encoded,
            "indexes": indexes,
            "recovered": "table missing behind its checkpoint: rebuilt" if missing else None,
        },
    )


def _names(names: Iterable[str] | None) -> list[str]:
    chosen = list(PROJECTIONS if names is None else names)
    unknown = [n for n in chosen if n not in PROJECTIONS]
    if unknown:
        raise InvalidInputError(
            f"unknown vector projection(s) {unknown}; expected {list(PROJECTIONS)}"
        )
    return chosen


def _run_vectors(
    source: LogSource,
    store: VectorStore | None,
    names: Iterable[str] | None,
    embedder: Embedder,
    chunk_events: int,
    index_threshold: int,
    *,
    fresh: bool,
) -> list[ProjectionReport]:
    chosen = _names(names)
    with reading(source) as log:
        the_store = store if store is not None else VectorStore(log.root)
        return [
            _project(
                the_store,
                log,
                embedder,
                n,
                fresh=fresh,
                chunk=chunk_events,
                index_threshold=index_threshold,
            )
            for n in chosen
        ]


def catch_up_vectors(
    source: LogSource,
    store: VectorStore | None = None,
    names: Iterable[str] | None = None,
    *,
    embedder: Embedder,
    chunk_events: int = CHUNK_EVENTS,
    index_threshold: int = INDEX_THRESHOLD,
) -> list[ProjectionReport]:
    """Embed what the log gained since each projection's checkpoint (a new model: from scratch)."""
    return _run_vectors(source, store, names, embedder, chunk_events, index_threshold, fresh=False)


def rebuild_vectors(
    source: LogSource,
    store: VectorStore | None = None,
    names: Iterable[str] | None = None,
    *,
    embedder: Embedder,
    chunk_events: int = CHUNK_EVENTS,
    index_threshold: int = INDEX_THRESHOLD,
) -> list[ProjectionReport]:
    """Blue-green rebuild: replay the whole log into a new table, then switch the alias."""
    return _run_vectors(source, store, names, embedder, chunk_events, index_threshold, fresh=True)


def vector_lag(source: LogSource, store: VectorStore | None = None) -> dict[str, int]:
    """Events each vector projection (as aliased now) is behind the log head (head if never built)."""
    with reading(source) as log:
        head = log.head()
        if store is None:
            if not vector_location(log.root).exists("aliases.json"):
                return dict.fromkeys(PROJECTIONS, head)
            store = VectorStore(log.root, create=False)
        out = {}
        for name in PROJECTIONS:
            alias = store.alias(name)
            position = store.checkpoint(alias.table)[0] if alias else 0
            out[name] = max(0, head - position)
        return out
