"""Point-in-time-correct training sets: features as known at a cutoff, labels from after it.

For each cutoff ``c`` and each order known at ``c`` (at least one event with
``occurred_at <= c`` and ``recorded_at <= c``) that is not already cancelled at ``c``:

* features: the Order state fields from the fold, in (occurred_at, version) order, of
  exactly those events (DESIGN "state as of c as known at c"), a few derived counts, the
  story text of that history and its embedding;
* label: whether the order was cancelled or refunded within the horizon, i.e. the log
  (as known now) has an ``OrderCancelled`` or ``RefundIssued`` with
  ``c < occurred_at <= c + horizon``.

Nothing recorded after ``c`` can reach a feature: the features are computed from the
filtered events only. Default cutoffs are weekly, starting one week after the first
event's day, while a whole horizon still fits before the last event.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eventlog.envelope import RecordedEvent, records_from_batch
from eventlog.errors import InvalidInputError
from eventlog.log import EventLog
from eventlog.orders.decider import order_state_fields
from eventlog.orders.events import STREAM_TYPE
from eventlog.orders.log import reading
from projections.embeddings import Embedder, SentenceTransformerEmbedder
from projections.narratives import OrderFacts, add_record, order_story

LABEL_TYPES = frozenset({"OrderCancelled", "RefundIssued"})
DEFAULT_HORIZON = timedelta(days=14)
CUTOFF_STEP = timedelta(days=7)
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """What ``export_training`` wrote."""

    out: Path
    rows: int
    orders: int
    positives: int
    cutoffs: list[datetime]
    horizon: timedelta
    model: str
    dimension: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "out": str(self.out),
            "rows": self.rows,
            "orders": self.orders,
            "positives": self.positives,
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "horizon_days": self.horizon.total_seconds() / 86_400,
            "model": self.model,
            "dimension": self.dimension,
        }


LAKE_TRAINING_FILE = Path("training") / "training_set.parquet"
"""Where, inside a lake, the training_set asset writes (``ledgerlake lag`` reads it)."""
HEAD_KEY = "ledgerlake.head"
"""Schema metadata of the exported file: the log head it was made from (``ledgerlake lag``)."""


def default_cutoffs(
    first: datetime, last: datetime, horizon: timedelta, step: timedelta = CUTOFF_STEP
) -> list[datetime]:
    """Weekly cutoffs (UTC midnights) from a week after ``first`` while ``c + horizon <= last``."""
    day = first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    cutoff = day + step
    while cutoff + horizon <= last:
        out.append(cutoff)
        cutoff += step
    return out


def facts_known_at(order_id: str, events: Sequence[Any], cutoff: datetime) -> OrderFacts | None:
    """The order's facts from its events with occurred_at and recorded_at <= cutoff (None: unknown).

    ``events`` are ``(RecordedEvent, decoded event)`` pairs of one order.
    """
    known = [
        (rec, ev) for rec, ev in events if rec.occurred_at <= cutoff and rec.recorded_at <= cutoff
    ]
    if not known:
        return None
    known.sort(key=lambda pair: (pair[0].occurred_at, pair[0].version))
    facts = OrderFacts.initial(order_id)
    for rec, ev in known:
        facts = add_record(facts, rec, ev)
    return facts


def _label(events: Sequence[Any], cutoff: datetime, horizon: timedelta) -> str | None:
    hits = sorted(
        (rec.occurred_at, rec.position, rec.event_type)
        for rec, _ in events
        if rec.event_type in LABEL_TYPES and cutoff < rec.occurred_at <= cutoff + horizon
    )
    return hits[0][2] if hits else None


def _rows_for(
    order_id: str, events: Sequence[Any], cutoffs: Sequence[datetime], horizon: timedelta
) -> list[dict[str, Any]]:
    rows = []
    for cutoff in cutoffs:
        facts = facts_known_at(order_id, events, cutoff)
        if facts is None or facts.state.status == "cancelled":
            continue
        assert facts.first_occurred_at is not None
        label_event = _label(events, cutoff, horizon)
        rows.append(
            {
                "cutoff": cutoff,
                **order_state_fields(facts.state),
                "known_events": facts.state.version,
                "age_hours": (cutoff - facts.first_occurred_at).total_seconds() / 3600,
                "story": order_story(facts),
                "label": label_event is not None,
                "label_event_type": label_event,
            }
        )
    return rows


def _order_histories(log: EventLog) -> dict[str, list[tuple[RecordedEvent, Any]]]:
    histories: dict[str, list[tuple[RecordedEvent, Any]]] = defaultdict(list)
    for table in log.read():
        for rec in records_from_batch(table):
            if rec.stream_type != STREAM_TYPE or rec.event_type not in log.registry:
                continue
            event = log.registry.decode(rec.event_type, rec.schema_version, rec.payload)
            histories[rec.stream_id].append((rec, event))
    return histories


def _check(horizon: timedelta, cutoffs: Sequence[datetime] | None) -> None:
    if horizon <= timedelta(0):
        raise InvalidInputError(f"horizon must be positive, got {horizon}")
    for cutoff in cutoffs or ():
        if cutoff.tzinfo is None:
            raise InvalidInputError(f"cutoff {cutoff} must be timezone-aware (UTC)")


def training_table(rows: list[dict[str, Any]], vectors: np.ndarray, dimension: int) -> pa.Table:
    """The Arrow table of training rows with their story embeddings."""
    table = pa.Table.from_pylist(rows)
    table = table.set_column(
        table.schema.get_field_index("cutoff"), "cutoff", table["cutoff"].cast(_TS)
    )
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    return table.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, dimension))


def export_training(
    lake: Path,
    out: Path,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    cutoffs: list[datetime] | None = None,
    embedder: Embedder | None = None,
    log: EventLog | None = None,
) -> TrainingSummary:
    """Write one Parquet row per (order, cutoff): features known at the cutoff, label after it."""
    _check(horizon, cutoffs)
    with reading(lake if log is None else log) as the_log:
        head = the_log.head()  # before reading: the file holds at least the events up to it
        histories = _order_histories(the_log)
    if not histories:
        raise InvalidInputError(f"the log at {lake} has no order events to learn from")
    if cutoffs is None:
        times = [rec.occurred_at for events in histories.values() for rec, _ in events]
        cutoffs = default_cutoffs(min(times), max(times), horizon)
        if not cutoffs:
            raise InvalidInputError(
                f"the log spans {min(times).isoformat()} .. {max(times).isoformat()}: too short "
                f"for a weekly cutoff followed by a {horizon} horizon; pass --cutoffs or a shorter --horizon"
            )
    chosen = sorted({c.astimezone(UTC) for c in cutoffs})
    rows: list[dict[str, Any]] = []
    for order_id in sorted(histories):
        for row in _rows_for(order_id, histories[order_id], chosen, horizon):
            rows.append(row)
    if not rows:
        raise InvalidInputError(f"no order was known and open at the cutoffs {chosen}")
    enc = embedder if embedder is not None else SentenceTransformerEmbedder()
    texts = sorted({r["story"] for r in rows})
    index = {t: i for i, t in enumerate(texts)}
    vectors = enc.encode(texts)[[index[r["story"]] for r in rows]]
    table = training_table(rows, vectors, enc.dimension)
    table = table.replace_schema_metadata(
        {"model": enc.name, "horizon_s": str(horizon.total_seconds()), HEAD_KEY: str(head)}
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)  # noqa: PTH105 - atomic publish of the finished file
    return TrainingSummary(
        out=out,
        rows=table.num_rows,
        orders=len({r["order_id"] for r in rows}),
        positives=sum(1 for r in rows if r["label"]),
        cutoffs=chosen,
        horizon=horizon,
        model=enc.name,
        dimension=enc.dimension,
    )
