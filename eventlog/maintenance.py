"""Repair: the only code that removes files from a lake, and the catalog's adoption.

Writers call ``repair_locked`` under the writer lock when they find a dead writer's
in-flight marker, a leftover temp file or parts compaction replaced long enough ago.
``repair`` (the ``ledgerlake repair`` command) does the same and more, explicitly:

- a lake whose catalog is empty while its sealed head is not (made before the catalog
  existed) has its parts adopted after their content is checked;
- a lake whose tail is missing or empty next to part files has its tail rebuilt from
  the parts (catalog, stream heads, index, command ids), after the same check;
- stray files (named like parts, never committed to the catalog) older than a grace
  period are removed.

What may be removed: temp files; files a dead writer published inside the span its
marker names and never committed; files of replaced parts after ``replaced_grace``;
strays after the grace period, by explicit repair only. Never a catalogued live part,
and never a file because of its name.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlog import catalog
from eventlog.envelope import to_micros
from eventlog.errors import IntegrityError
from eventlog.parts import Part, file_sha256, list_parts, read_part, remove_files, temp_files

if TYPE_CHECKING:
    from eventlog.log import EventLog


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``repair`` did: parts adopted into the catalog, files removed (with why)."""

    adopted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"adopted": self.adopted, "removed": self.removed, "kept": self.kept}


def _marker_spans(log: EventLog) -> list[tuple[int, int]]:
    spans = []
    for marker in log._markers():
        try:
            text = marker.read_text().split()
        except FileNotFoundError:
            continue
        if len(text) == 2 and all(t.isdigit() for t in text):
            spans.append((int(text[0]), int(text[1])))
    return spans


def repair_locked(log: EventLog, conn: sqlite3.Connection) -> list[str]:
    """Remove what dead writers left and replaced parts past their grace; returns reasons."""
    removed: list[str] = []
    for tmp in temp_files(log.events_dir):
        removed.append(f"{tmp.parent.name}/{tmp.name}: temp file of a write that never finished")
    remove_files(temp_files(log.events_dir))
    known = catalog.catalogued_names(conn)
    spans = _marker_spans(log)
    dead = [
        p
        for p in list_parts(log.events_dir)
        if p.name not in known and any(lo <= p.first and p.last <= hi for lo, hi in spans)
    ]
    removed += [f"{p.name}: published by a writer that died before committing it" for p in dead]
    remove_files([p.path for p in dead])
    cutoff = to_micros(log.clock()) - log.replaced_grace // timedelta(microseconds=1)
    old = [name for name, at in catalog.replaced_parts(conn) if at <= cutoff]
    remove_files([log.events_dir / name for name in old])
    for name in old:
        catalog.forget_part(conn, name)
    removed += [f"{name}: replaced by compaction" for name in old]
    return removed


def repair_lake(log: EventLog, *, stray_grace: timedelta = timedelta(hours=1)) -> RepairReport:
    """The explicit repair (see the module docstring); ``log`` opened with ``check=False``."""
    adopted: list[str] = []
    kept: list[str] = []
    with log._write() as conn:
        meta = log.tail.metas()
        live = catalog.live_parts(conn, log.events_dir)
        if not live and meta["sealed_head"] > 0:
            adopted = _adopt(log, conn, upto=meta["sealed_head"])
        elif not live and meta["head"] == 0 and list_parts(log.events_dir):
            adopted = _adopt(log, conn, upto=None)
        removed = repair_locked(log, conn)
        known = catalog.catalogued_names(conn)
        now = time.time()
        strays = [p for p in list_parts(log.events_dir) if p.name not in known]
        for p in strays:
            age = now - p.path.stat().st_mtime
            if age >= stray_grace.total_seconds():
                removed.append(f"{p.name}: stray file, not in the catalog")
                remove_files([p.path])
            else:
                kept.append(f"{p.name}: stray file younger than the grace period; left")
    for marker in log._markers():
        marker.unlink(missing_ok=True)
    return RepairReport(adopted, removed, kept)


def _adopt(log: EventLog, conn: sqlite3.Connection, *, upto: int | None) -> list[str]:
    """Catalog the parts that tile [1, upto] after checking each one's content.

    A file counts only when the positions inside it are exactly the dense range its
    name claims; among those, the tiling takes the longest part at each step (a merged
    part over the parts it replaced). With ``upto`` None (the tail was lost) the tiling
    goes as far as the parts reach and the tail is rebuilt from them.
    """
    checked: dict[int, list[tuple[Part, pa.Table]]] = {}
    for part in list_parts(log.events_dir):
        try:
            table = read_part(
                part, ["position", "stream_type", "stream_id", "version", "metadata", "recorded_at"]
            )
        except Exception:  # an unreadable file is not adopted; verify names it
            continue
        if table.column("position").to_pylist() != list(range(part.first, part.last + 1)):
            continue
        checked.setdefault(part.first, []).append((part, table))
    chosen: list[tuple[Part, pa.Table]] = []
    cursor = 0
    while cursor + 1 in checked:
        fits = [c for c in checked[cursor + 1] if upto is None or c[0].last <= upto]
        if not fits:
            break
        best = max(fits, key=lambda c: c[0].last)
        chosen.append(best)
        cursor = best[0].last
    if upto is not None and cursor != upto:
        raise IntegrityError(
            f"the parts whose content checks out cover positions 1..{cursor}, but the sealed "
            f"head is {upto}: positions {cursor + 1}..{upto} are in no good part; restore "
            "them from a backup"
        )
    for part, _ in chosen:
        size = part.path.stat().st_size
        catalog.add_part(conn, _with_hash(part, size))
    if upto is None and chosen:
        _rebuild_tail(log, conn, [t for _, t in chosen])
    return [p.name for p, _ in chosen]


def _with_hash(part: Part, size: int) -> Part:
    return Part(part.first, part.last, part.date, part.path, size, file_sha256(part.path))


def _rebuild_tail(log: EventLog, conn: sqlite3.Connection, tables: list[pa.Table]) -> None:
    """Stream heads, command ids and counters from the parts alone (the tail was lost)."""
    table = pa.concat_tables(tables)
    last = int(table.column("position")[-1].as_py())
    log._bump_heads(table)
    first_pos: dict[str, tuple[str, int, int]] = {}
    for meta, pos, sid in zip(
        table.column("metadata").to_pylist(),
        table.column("position").to_pylist(),
        table.column("stream_id").to_pylist(),
        strict=True,
    ):
        cid = json.loads(meta).get("command_id")
        if cid:
            s, lo, hi = first_pos.get(cid, (sid, pos, pos))
            first_pos[cid] = (s, min(lo, pos), max(hi, pos))
    conn.executemany(
        "INSERT OR IGNORE INTO commands VALUES (?, ?, ?, ?)",
        [(cid, s, lo, hi) for cid, (s, lo, hi) in first_pos.items()],
    )
    last_rec = int(pc.max(table.column("recorded_at").cast(pa.int64())).as_py())
    log.tail.set_metas(
        {"sealed_head": last, "head": last, "heads_head": last, "last_recorded_at": last_rec}
    )


def open_for_repair(root: Path, **options: Any) -> EventLog:
    """Open a lake's log for ``repair``, without the checks that would refuse it."""
    from eventlog.log import EventLog

    return EventLog.open(root, create=False, check=False, seal_on_close=False, **options)
