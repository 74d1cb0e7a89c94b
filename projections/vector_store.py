"""The LanceDB store of the vector projections: tables, aliases, checkpoints, indexes.

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

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from eventlog.errors import IntegrityError, InvalidInputError
from projections.vector_location import vector_location

CODE_VERSION = "2"  # 2: "support agent Lars" (not "support:Lars"), "2 payments failed"
EVENT_NARRATIVES = "event_narratives"
ORDER_STORIES = "order_stories"
PROJECTIONS: tuple[str, ...] = (EVENT_NARRATIVES, ORDER_STORIES)
INDEX_THRESHOLD = 50_000
CHUNK_EVENTS = 10_000
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
