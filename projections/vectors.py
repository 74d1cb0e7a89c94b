"""LanceDB projections of the log: one embedded sentence per event, one story per order.

Layout under ``<lake>/vectors/`` (a LanceDB database):

* ``event_narratives__<model>__v<n>`` and ``order_stories__<model>__v<n>``: the physical
  tables, one per model (and per rebuild);
* ``aliases.json``: which physical table each projection name reads now, with the model
  name, dimension and path; switched atomically (rename) once a new table is whole;
* ``checkpoint.<table>.json``: the last log position applied to a physical table,
  written atomically *after* its idempotent ``merge_insert`` (DESIGN invariant 6).

Only new or changed texts are encoded: events after the checkpoint, and the stories of
the orders those events touched whose text changed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from eventlog.envelope import RecordedEvent, records_from_batch
from eventlog.errors import IntegrityError, InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.events import STREAM_TYPE
from eventlog.orders.log import open_order_log
from projections.embeddings import Embedder, model_slug
from projections.narratives import OrderFacts, add_record, narrate, order_story
from projections.report import ProjectionReport
from projections.vector_location import vector_location

CODE_VERSION = "2"  # 2: "support agent Lars" (not "support:Lars"), "2 payments failed"
EVENT_NARRATIVES = "event_narratives"
ORDER_STORIES = "order_stories"
PROJECTIONS: tuple[str, ...] = (EVENT_NARRATIVES, ORDER_STORIES)
INDEX_THRESHOLD = 50_000
CHUNK_EVENTS = 10_000
_IN_BATCH = 500
_TS = pa.timestamp("us", tz="UTC")

BUILD_HINT = "build it with 'ledgerlake embed' (or materialize the Dagster vector assets)"


class VectorStoreMissingError(InvalidInputError):
    """The lake has no vector projection yet."""


def vectors_dir(lake: Path) -> Path:
    """``<lake>/vectors``: the LanceDB database of the vector projections."""
    return Path(lake) / "vectors"


def event_schema(dimension: int) -> pa.Schema:
    """Arrow schema of an ``event_narratives`` table."""
    return pa.schema(
        [
            ("position", pa.int64()),
            ("event_id", pa.string()),
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", _TS),
            ("recorded_at", _TS),
            ("text", pa.string()),
            ("vector", pa.list_(pa.float32(), dimension)),
            ("model", pa.string()),
        ]
    )


def story_schema(dimension: int) -> pa.Schema:
    """Arrow schema of an ``order_stories`` table."""
    return pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("status", pa.string()),
            ("last_position", pa.int64()),
            ("first_occurred_at", _TS),
            ("last_occurred_at", _TS),
            ("recorded_at", _TS),
            ("text", pa.string()),
            ("vector", pa.list_(pa.float32(), dimension)),
            ("model", pa.string()),
        ]
    )


@dataclass(frozen=True, slots=True)
class Alias:
    """Which physical table a projection name reads, and the model that filled it."""

    name: str
    table: str
    model: str
    dimension: int
    model_path: str | None = None


def sql_string(value: str) -> str:
    """A SQL string literal for a LanceDB filter: quotes doubled, control characters refused."""
    if any(ord(c) < 32 for c in value):
        raise InvalidInputError(f"filter value {value!r} contains control characters")
    return "'" + value.replace("'", "''") + "'"


def sql_timestamp(value: datetime) -> str:
    """A UTC timestamp literal for a LanceDB filter."""
    if value.tzinfo is None:
        raise InvalidInputError(f"time {value} must be timezone-aware")
    return "TIMESTAMP '" + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


class VectorStore:
    """The LanceDB database under ``<lake>/vectors`` with its aliases and checkpoints."""

    def __init__(self, lake: Path, *, create: bool = True, keep_open: bool = False) -> None:
        """``keep_open``: cache open tables, each checking for new versions on every read."""
        import lancedb

        self.loc = vector_location(lake)  # <lake>/vectors, or beside parts in object storage
        self.dir: Path | str = Path(self.loc.uri) if self.loc.local else self.loc.uri
        if not create and not self.loc.exists("aliases.json"):
            raise VectorStoreMissingError(f"no vector store at {self.dir}; {BUILD_HINT}")
        self.loc.prepare()
        options = self.loc.storage_options  # None for a local directory
        if keep_open:
            self.db = lancedb.connect(
                str(self.dir), read_consistency_interval=timedelta(0), storage_options=options
            )
        else:
            self.db = lancedb.connect(str(self.dir), storage_options=options)
        self._open: dict[str, Any] | None = {} if keep_open else None

    # ---------------------------------------------------------------- aliases
    def aliases(self) -> dict[str, Alias]:
        """Every projection name's current alias."""
        data = self.loc.read_json("aliases.json") or {}
        return {name: Alias(**value) for name, value in data.items()}

    def alias(self, name: str) -> Alias | None:
        """The current alias of one projection name, if it was ever built."""
        return self.aliases().get(name)

    def require(self, name: str) -> Alias:
        """The alias of ``name``, or VectorStoreMissingError saying how to build it."""
        alias = self.alias(name)
        if alias is None:
            raise VectorStoreMissingError(f"no {name} vectors in {self.dir}; {BUILD_HINT}")
        return alias

    def set_alias(self, alias: Alias) -> None:
        """Point a projection name at a physical table (atomic rename of aliases.json)."""
        data = {n: asdict(a) for n, a in self.aliases().items()}
        data[alias.name] = asdict(alias)
        self.loc.write_json("aliases.json", data)

    # ---------------------------------------------------------------- checkpoints
    def checkpoint(self, table: str) -> tuple[int, str | None]:
        """(position, recorded_at ISO) last applied to a physical table; (0, None) if none."""
        data = self.loc.read_json(f"checkpoint.{table}.json")
        if data is None:
            return 0, None
        return int(data["position"]), data.get("recorded_at")

    def set_checkpoint(self, table: str, position: int, recorded_at: datetime | None) -> None:
        """Record the last applied position (after the data write, never before)."""
        value = {
            "position": position,
            "recorded_at": recorded_at.isoformat() if recorded_at else None,
            "code_version": CODE_VERSION,
        }
        self.loc.write_json(f"checkpoint.{table}.json", value)

    # ---------------------------------------------------------------- tables
    def table_names(self) -> list[str]:
        """The physical tables in the database."""
        result = self.db.list_tables()
        names = getattr(result, "tables", result)
        return sorted(str(n) for n in names)

    def open_table(self, name: str) -> Any:
        """An open LanceDB table (kept open when the store was made with ``keep_open``).

        A table the aliases name but the disk lacks is an error, never an empty answer.
        """
        table = self._open.get(name) if self._open is not None else None
        if table is not None:
            return table
        if name not in self.table_names():
            raise IntegrityError(
                f"vector table {name} is missing from {self.dir}; run 'ledgerlake embed' "
                "to rebuild it from the log"
            )
        table = self.db.open_table(name)
        if self._open is not None:
            self._open[name] = table
        return table

    def ensure_table(self, name: str, schema: pa.Schema) -> Any:
        """Open a physical table, creating it empty with ``schema`` when missing."""
        if name in self.table_names():
            return self.db.open_table(name)
        return self.db.create_table(name, schema=schema)

    def drop(self, name: str) -> None:
        """Drop a physical table and its checkpoint."""
        if name in self.table_names():
            self.db.drop_table(name)
        self.loc.remove(f"checkpoint.{name}.json")


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
class _Run:
    applied: int = 0
    encoded: int = 0
    written: int = 0
    last_position: int = 0
    last_recorded: datetime | None = None


def _catch_up_events(
    store: VectorStore, log: EventLog, embedder: Embedder, table: str, chunk: int
) -> _Run:
    tbl = store.ensure_table(table, event_schema(embedder.dimension))
    start, _ = store.checkpoint(table)
    run = _Run(last_position=start)
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


def _catch_up_stories(
    store: VectorStore, log: EventLog, embedder: Embedder, table: str, chunk: int
) -> _Run:
    tbl = store.ensure_table(table, story_schema(embedder.dimension))
    start, _ = store.checkpoint(table)
    run = _Run(last_position=start)
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


def ensure_indexes(tbl: Any, *, index_threshold: int = INDEX_THRESHOLD) -> list[str]:
    """FTS index on ``text`` always; a vector index (IVF_HNSW_SQ, cosine) from ``index_threshold`` rows.

    New rows land outside existing indexes (LanceDB still searches them exhaustively);
    ``optimize`` folds them in once they exceed 5% of the table.
    """
    from lancedb.index import FTS, HnswSq

    made: list[str] = []
    rows = tbl.count_rows()
    if rows == 0:
        return made
    indices = list(tbl.list_indices())
    columns = {c for idx in indices for c in idx.columns}
    if "text" not in columns:
        tbl.create_index("text", config=FTS(), replace=True)
        made.append("fts")
    if "vector" not in columns and rows >= index_threshold:
        tbl.create_index(
            "vector",
            config=HnswSq(distance_type="cosine", num_partitions=max(1, rows // 100_000)),
            replace=True,
        )
        made.append("vector")
    unindexed = sum(int(getattr(i, "num_unindexed_rows", 0) or 0) for i in indices)
    if not made and unindexed > max(1_000, rows // 20):
        tbl.optimize()
        made.append("optimize")
    return made


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
    step = _catch_up_events if name == EVENT_NARRATIVES else _catch_up_stories
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


def _with_log(lake: Path, log: EventLog | None) -> tuple[EventLog, bool]:
    if log is not None:
        return log, False
    return open_order_log(lake, read_only=True), True


def _run_vectors(
    lake: Path,
    embedder: Embedder,
    names: Iterable[str] | None,
    log: EventLog | None,
    chunk_events: int,
    index_threshold: int,
    *,
    fresh: bool,
) -> list[ProjectionReport]:
    chosen = _names(names)
    the_log, owned = _with_log(Path(lake), log)
    try:
        store = VectorStore(Path(lake))
        return [
            _project(
                store,
                the_log,
                embedder,
                n,
                fresh=fresh,
                chunk=chunk_events,
                index_threshold=index_threshold,
            )
            for n in chosen
        ]
    finally:
        if owned:
            the_log.close()


def catch_up_vectors(
    lake: Path,
    embedder: Embedder,
    names: Iterable[str] | None = None,
    *,
    log: EventLog | None = None,
    chunk_events: int = CHUNK_EVENTS,
    index_threshold: int = INDEX_THRESHOLD,
) -> list[ProjectionReport]:
    """Embed what the log gained since each projection's checkpoint (a new model: from scratch)."""
    return _run_vectors(lake, embedder, names, log, chunk_events, index_threshold, fresh=False)


def rebuild_vectors(
    lake: Path,
    embedder: Embedder,
    names: Iterable[str] | None = None,
    *,
    log: EventLog | None = None,
    chunk_events: int = CHUNK_EVENTS,
    index_threshold: int = INDEX_THRESHOLD,
) -> list[ProjectionReport]:
    """Blue-green rebuild: replay the whole log into a new table, then switch the alias."""
    return _run_vectors(lake, embedder, names, log, chunk_events, index_threshold, fresh=True)


def vector_lag(lake: Path, *, log: EventLog | None = None) -> dict[str, int]:
    """Events each vector projection (as aliased now) is behind the log head (head if never built)."""
    the_log, owned = _with_log(Path(lake), log)
    try:
        head = the_log.head()
        if not vector_location(Path(lake)).exists("aliases.json"):
            return dict.fromkeys(PROJECTIONS, head)
        store = VectorStore(Path(lake), create=False)
        out = {}
        for name in PROJECTIONS:
            alias = store.alias(name)
            position = store.checkpoint(alias.table)[0] if alias else 0
            out[name] = max(0, head - position)
        return out
    finally:
        if owned:
            the_log.close()
