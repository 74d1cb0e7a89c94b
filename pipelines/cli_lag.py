"""What ``ledgerlake lag`` lists: the warehouse tables, the vector stores and the training set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import typer

from eventlog.log import EventLog


@dataclass(frozen=True, slots=True)
class Behind:
    """One derived store of the lake: which kind, how far it got, what it is behind the head."""

    kind: str  # warehouse | vectors | training
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float | None
    stale: bool
    where: str | None  # the physical table or file, None when never built

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "name": self.name,
            "position": self.position,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "stale": self.stale,
            "where": self.where,
        }


def training_head(path: Path) -> int | None:
    """The log head a training-set file was exported from (None: no file, or no head recorded)."""
    from projections.training import HEAD_KEY

    if not path.is_file():
        return None
    metadata = pq.read_schema(path).metadata or {}
    value = metadata.get(HEAD_KEY.encode())
    return int(value) if value is not None else None


def everything_behind(lake: Path, log: EventLog) -> list[Behind]:
    """Every derived store of the lake and how far it is behind the log head."""
    from projections import progress, vector_store, vectors
    from projections.training import LAKE_TRAINING_FILE

    head = log.head()
    rows = [
        Behind(
            "warehouse",
            x.name,
            x.position,
            x.head,
            x.lag_events,
            x.lag_seconds,
            x.stale,
            x.table_name,
        )
        for x in progress.lag(log)
    ]
    try:
        store: vector_store.VectorStore | None = vector_store.VectorStore(lake, create=False)
    except vector_store.VectorStoreMissingError:
        store = None
    for name, behind in vectors.vector_lag(log).items():
        alias = store.alias(name) if store is not None else None
        table = f"vectors/{alias.table} ({alias.model})" if alias else None
        rows.append(Behind("vectors", name, head - behind, head, behind, None, False, table))
    path = lake / LAKE_TRAINING_FILE
    made_from = training_head(path)
    position = made_from or 0
    where = str(LAKE_TRAINING_FILE) if path.is_file() else None
    rows.append(
        Behind("training", "training_set", position, head, head - position, None, False, where)
    )
    return rows


def print_behind(rows: list[Behind]) -> None:
    """One line per store: kind, name, position of head, lag, and what to run when it is stale."""
    for x in rows:
        seconds = "" if x.lag_seconds is None else f", {x.lag_seconds:.1f}s"
        built = "" if x.where else "  (not built yet)"
        stale = " STALE (code changed; 'ledgerlake project' rebuilds it)" if x.stale else ""
        typer.echo(
            f"{x.kind:<9} {x.name:<16} at {x.position:>10} of {x.head:<10} "
            f"lag {x.lag_events} events{seconds}{built}{stale}"
        )
