"""The erasure cascade: after ``forget``, every derived copy of a customer's personal data goes.

``forget`` destroys a customer's key and appends ``CustomerErased``; from then on the log
reads ``[erased]`` in place of their personal fields. This module carries that into what
was derived before, for every erasure not yet applied, in one batch:

1. the DuckDB warehouse is rebuilt blue-green, then copied into a fresh file that replaces
   the old one (deleted rows linger in a DuckDB file's free blocks; a copy has none);
2. the LanceDB narratives and stories of the customers' orders are rendered again,
   re-embedded, and every older version and file removed (``projections.erasure_vectors``);
3. training exports inside the lake holding their orders are written again;
4. the tail's database is vacuumed with ``secure_delete`` and its WAL truncated;
5. a receipt (JSON, under ``<lake>/erasure/receipts/``) lists what was done where and when,
   never an erased value; ``<lake>/erasure/applied.json`` remembers the last erasure applied.

Dagster's run storage never holds personal fields: the assets' previews leave them out.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eventlog.envelope import records_from_batch
from eventlog.log import EventLog
from eventlog.orders.events import ERASURE_EVENT_TYPES
from projections import runner
from projections.embeddings import Embedder, embedder_for
from projections.erasure_vectors import erase_vectors
from projections.snapshot import drop_pinned
from projections.training import HEAD_KEY, export_training
from projections.warehouse import connect, pinned_dir, warehouse_path

ERASURE_DIR = "erasure"
APPLIED_FILE = "applied.json"
SKIP_DIRS = {"events", "vectors", ERASURE_DIR}


@dataclass(frozen=True, slots=True)
class Erasure:
    """One recorded erasure: where the log holds it, whom it forgot, with which key."""

    position: int
    customer_id: str
    key_id: str
    recorded_at: datetime


def erasure_dir(lake: Path) -> Path:
    """``<lake>/erasure``: the receipts and the last erasure applied."""
    return Path(lake) / ERASURE_DIR


def applied_position(lake: Path) -> int:
    """The position of the last erasure the cascade applied (0: none yet)."""
    path = erasure_dir(lake) / APPLIED_FILE
    if not path.exists():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8"))["position"])


def pending(log: EventLog, lake: Path) -> list[Erasure]:
    """The erasures recorded in the log that the cascade has not applied yet."""
    found = []
    for table in log.read(after=applied_position(lake), event_types=list(ERASURE_EVENT_TYPES)):
        for rec in records_from_batch(table):
            found.append(
                Erasure(
                    rec.position,
                    str(rec.payload["customer_id"]),
                    str(rec.payload["key_id"]),
                    rec.recorded_at,
                )
            )
    return found


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def rewrite_warehouse(log: EventLog, lake: Path) -> dict[str, Any]:
    """Rebuild every projection blue-green, then swap in a fresh copy of the file."""
    path = warehouse_path(lake)
    if not path.exists():
        return {"skipped": "no warehouse"}
    # no pinned part may be carried over into the new build: the files pinned before
    # hold the forgotten fields decrypted (the rebuild pins every part again, and keeps
    # no earlier build, since none is left)
    drop_pinned(pinned_dir(path))
    reports = runner.rebuild(log, None, None)
    fresh = path.with_name(path.name + ".erasing")
    fresh.unlink(missing_ok=True)
    con = connect(lake)
    try:
        con.execute("CHECKPOINT")
        name = con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        con.execute(f"ATTACH {_sql_path(fresh)} AS erasing_copy")
        con.execute(f'COPY FROM DATABASE "{name}" TO erasing_copy')
        con.execute("DETACH erasing_copy")
    finally:
        con.close()
    os.replace(fresh, path)  # noqa: PTH105 - atomic swap of the finished copy
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return {
        "file": str(path.relative_to(lake)),
        "projections_rebuilt": [r.name for r in reports],
        "rows": {r.name: r.rows for r in reports},
        "bytes": path.stat().st_size,
    }


def _training_exports(lake: Path) -> list[Path]:
    found = []
    for path in sorted(Path(lake).rglob("*.parquet")):
        if path.relative_to(lake).parts[0] in SKIP_DIRS:
            continue
        meta = pq.read_schema(path).metadata or {}
        if HEAD_KEY.encode() in meta and b"model" in meta:
            found.append(path)
    return found


def rewrite_training(
    log: EventLog, lake: Path, customers: list[str], embedder: Embedder | None
) -> list[dict[str, Any]]:
    """Write again every training export in the lake that holds a forgotten customer's order."""
    done = []
    for path in _training_exports(lake):
        table = pq.read_table(path, columns=["customer_id", "cutoff"])
        hit = pc.is_in(table.column("customer_id"), value_set=pa.array(customers))
        if not pc.any(hit).as_py():
            continue
        schema = pq.read_schema(path)
        meta = schema.metadata or {}
        model = meta[b"model"].decode()
        dimension = schema.field("embedding").type.list_size
        enc = (
            embedder
            if embedder is not None and embedder.name == model
            else embedder_for(model, dimension)
        )
        cutoffs = sorted(set(table.column("cutoff").to_pylist()))
        horizon = timedelta(seconds=float(meta[b"horizon_s"].decode()))
        summary = export_training(
            lake, path, horizon=horizon, cutoffs=cutoffs, embedder=enc, log=log
        )
        done.append({"file": str(path.relative_to(lake)), "rows": summary.rows})
    return done


def apply_erasures(
    log: EventLog,
    lake: Path,
    *,
    embedder: Embedder | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any] | None:
    """Apply every pending erasure in one batch; the receipt (None: nothing pending).

    ``log`` is a writer (the tail is vacuumed).
    """
    todo = pending(log, lake)
    if not todo:
        return None
    started = time.perf_counter()
    customers = sorted({e.customer_id for e in todo})
    steps: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> None:
        began = time.perf_counter()
        steps[name] = fn()
        timings[name] = round(time.perf_counter() - began, 3)

    step("warehouse", lambda: rewrite_warehouse(log, lake))
    step("vectors", lambda: erase_vectors(lake, log, customers, embedder))
    step("training_exports", lambda: rewrite_training(log, lake, customers, embedder))
    step("tail", lambda: _purge_tail(log))
    receipt = {
        "applied_at": clock().isoformat(),
        "lake": str(lake),
        "erasures": [
            {
                "customer_id": e.customer_id,
                "key_id": e.key_id,
                "position": e.position,
                "forgotten_at": e.recorded_at.isoformat(),
            }
            for e in todo
        ],
        "fields": sorted(log.registry.personal_fields),
        "steps": steps,
        "seconds": timings | {"total": round(time.perf_counter() - started, 3)},
        "dagster": "materialization previews carry no personal fields; nothing to purge",
    }
    out = erasure_dir(lake) / "receipts"
    out.mkdir(parents=True, exist_ok=True)
    stamp = clock().strftime("%Y%m%dT%H%M%S%fZ")
    path = out / f"{stamp}-{todo[-1].position}.json"
    path.write_text(json.dumps(receipt, indent=2, sort_keys=True), encoding="utf-8")
    (erasure_dir(lake) / APPLIED_FILE).write_text(
        json.dumps({"position": todo[-1].position, "receipt": path.name}), encoding="utf-8"
    )
    receipt["receipt"] = str(path)
    return receipt


def _purge_tail(log: EventLog) -> dict[str, Any]:
    store = log.shredder.store
    if store is None:
        return {"skipped": "this tail keeps no keys"}
    store.purge()
    return {"vacuumed": log.tail.describe(), "secure_delete": True, "wal": "truncated"}
