"""Maintenance of a lake: seal, compact, and repair (the only code that removes files).

Sealing moves the tail's events into parts: under the writer lock, one part per
recorded date is published, then its catalog row, the sealed head and the deletion of
the sealed tail rows commit in one tail transaction. Compaction merges a date's
consecutive parts and commits the replacement the same way.

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
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.envelope import from_micros, to_micros
from eventlog.errors import IntegrityError
from eventlog.parts import Part
from eventlog.streamfiles import remove_stream_files, write_stream_file
from eventlog.tails import TailRow
from eventlog.values import tail_table

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


def repair_locked(log: EventLog) -> list[str]:
    """Remove what dead writers left and replaced parts past their grace; returns reasons.

    Under the writer lock: no writer of this lake is mid-write, so temp files and the
    uncommitted files in a marker's span are a dead writer's. Never a catalogued live
    part, never a file because of its name.
    """
    store, tail = log.store, log.tail
    removed: list[str] = []
    temps = store.temp_files()
    for tmp in temps:
        removed.append(f"{tmp.parent.name}/{tmp.name}: temp file of a write that never finished")
    store.remove(temps)
    known = tail.catalogued_names()
    spans = store.marker_spans()
    dead = [
        p
        for p in store.list_files()
        if p.name not in known and any(lo <= p.first and p.last <= hi for lo, hi in spans)
    ]
    removed += [f"{p.name}: published by a writer that died before committing it" for p in dead]
    store.remove([p.path for p in dead])
    cutoff = to_micros(log.clock()) - log.replaced_grace // timedelta(microseconds=1)
    old = [name for name, at in tail.replaced_parts() if at <= cutoff]
    store.remove_names(old)
    remove_stream_files(log.root, old)
    for name in old:
        tail.forget_part(name)
    removed += [f"{name}: replaced by compaction" for name in old]
    return removed


def repair_lake(log: EventLog, *, stray_grace: timedelta = timedelta(hours=1)) -> RepairReport:
    """The explicit repair (see the module docstring); ``log`` opened with ``check=False``."""
    adopted: list[str] = []
    kept: list[str] = []
    with log._write():
        meta = log.tail.metas()
        live = log.tail.live_parts()
        if not live and meta["sealed_head"] > 0:
            adopted = _adopt(log, upto=meta["sealed_head"])
        elif not live and meta["head"] == 0 and log.store.list_files():
            adopted = _adopt(log, upto=None)
        removed = repair_locked(log)
        known = log.tail.catalogued_names()
        strays = [p for p in log.store.list_files() if p.name not in known]
        for p in strays:
            age = log.store.age_s(p)
            if age >= stray_grace.total_seconds():
                removed.append(f"{p.name}: stray file, not in the catalog")
                log.store.remove([p.path])
            else:
                kept.append(f"{p.name}: stray file younger than the grace period; left")
    log.store.remove_markers(log.store.markers())
    return RepairReport(adopted, removed, kept)


def _adopt(log: EventLog, *, upto: int | None) -> list[str]:
    """Catalog the parts that tile [1, upto] after checking each one's content.

    A file counts only when the positions inside it are exactly the dense range its
    name claims; among those, the tiling takes the longest part at each step (a merged
    part over the parts it replaced). With ``upto`` None (the tail was lost) the tiling
    goes as far as the parts reach and the tail is rebuilt from them.
    """
    checked: dict[int, list[tuple[Part, pa.Table]]] = {}
    for part in log.store.list_files():
        try:
            table = log.store.read_whole(
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
        size = log.store.size_of(part) or 0
        log.tail.add_part(_with_hash(log, part, size))
    if upto is None and chosen:
        _rebuild_tail(log, [t for _, t in chosen])
    return [p.name for p, _ in chosen]


def _with_hash(log: EventLog, part: Part, size: int) -> Part:
    return Part(part.first, part.last, part.date, part.path, size, log.store.sha256_of(part))


def _rebuild_tail(log: EventLog, tables: list[pa.Table]) -> None:
    """Stream heads, command ids and counters from the parts alone (the tail was lost)."""
    table = pa.concat_tables(tables)
    last = int(table.column("position")[-1].as_py())
    log.heads.bump(table)
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
    log.tail.insert_commands(
        [(cid, s, lo, hi) for cid, (s, lo, hi) in first_pos.items()], ignore_known=True
    )
    last_rec = int(pc.max(table.column("recorded_at").cast(pa.int64())).as_py())
    log.tail.set_metas(
        {"sealed_head": last, "head": last, "heads_head": last, "last_recorded_at": last_rec}
    )


def open_for_repair(root: Path, **options: Any) -> EventLog:
    """Open a lake's log for ``repair``, without the checks that would refuse it."""
    from eventlog.log import EventLog

    return EventLog.open(root, create=False, check=False, seal_on_close=False, **options)


def _date_of(micros: int) -> str:
    return from_micros(micros).date().isoformat()


def _consecutive_runs(parts: list[Part]) -> list[list[Part]]:
    runs: list[list[Part]] = []
    for part in sorted(parts):
        if runs and runs[-1][-1].last + 1 == part.first:
            runs[-1].append(part)
        else:
            runs.append([part])
    return runs


UNSEALED_KEPT = 50_000  # committed rows a handle keeps for its next seal, at most


class Maintenance:
    """Seal and compact one log handle's lake (each call inside or taking the writer lock)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._oldest_tail: tuple[int, int] = (-1, 0)  # (sealed_head, recorded_at after it)
        self._unsealed: list[TailRow] = []  # rows this handle committed, contiguous

    def keep_unsealed(self, rows: list[TailRow]) -> None:
        """Keep rows this handle just committed to the tail (immutable now): when they are
        still the whole tail at the next seal, sealing them reads nothing back."""
        kept = self._unsealed
        if kept and kept[-1][0] + 1 == rows[0][0] and len(kept) + len(rows) <= UNSEALED_KEPT:
            kept.extend(rows)
        else:
            self._unsealed = list(rows) if len(rows) <= UNSEALED_KEPT else []

    def _rows_after(self, sealed: int) -> list[TailRow]:
        """The tail rows after the sealed head: the kept ones if they are all of them."""
        kept = self._unsealed
        if kept and kept[0][0] <= sealed + 1 and kept[-1][0] == self.log.tail.meta("head"):
            return kept[max(0, sealed + 1 - kept[0][0]) :]
        return self.log.tail.tail_rows(sealed)

    def must_seal(self, tail_events: int, sealed_head: int, now: int) -> bool:
        """True when the tail holds ``seal_max_events`` or its oldest row is too old."""
        if tail_events <= 0:
            return False
        if tail_events >= self.log.seal_max_events:
            return True
        # the oldest tail row is the one after the sealed head; its recorded_at never changes
        if self._oldest_tail[0] == sealed_head:
            oldest: int | None = self._oldest_tail[1]
        else:
            oldest = self.log.tail.oldest_tail_recorded_at()
            if oldest is not None:
                self._oldest_tail = (sealed_head, oldest)
        if oldest is None:
            return False
        return now - oldest >= self.log.seal_max_age // timedelta(microseconds=1)

    def seal_locked(self) -> None:
        """Move every tail event into parts (under the writer lock), one part per date."""
        tail, store = self.log.tail, self.log.store
        sealed = tail.meta("sealed_head")
        rows = self._rows_after(sealed)
        self._unsealed = []  # sealed now (or, should this roll back, read again next time)
        if not rows:
            return
        by_date: dict[str, list[TailRow]] = defaultdict(list)
        for row in rows:
            by_date[_date_of(row[8])].append(row)
        for date in sorted(by_date, key=lambda d: by_date[d][0][0]):
            date_rows = by_date[date]
            tail.add_part(store.publish(date, tail_table(date_rows)))
            tail.delete_tail(date_rows[-1][0])
            tail.set_meta("sealed_head", date_rows[-1][0])
        if tail.replaced_parts():  # files compaction replaced: gone after the grace
            self.log._repair_locked()

    def write_bulk(self, rows: list[TailRow]) -> None:
        """Write a large append straight to a part, under the writer lock."""
        part = self.log.store.publish(_date_of(rows[0][8]), tail_table(rows))
        self.log.tail.add_part(part)
        self.log.tail.set_meta("sealed_head", rows[-1][0])

    def compact(self) -> list[Path]:
        """``EventLog.compact``: merge each date's consecutive live parts into one.

        Every part it makes, and every live part that lacks one, gets its stream file
        (``eventlog.streamfiles``): the part's events clustered by stream.
        """
        log = self.log
        made: list[Path] = []
        with log._write():
            by_date: dict[str, list[Part]] = defaultdict(list)
            for part in log.parts():
                by_date[part.date].append(part)
            for date, parts in sorted(by_date.items()):
                for run in _consecutive_runs(parts):
                    if len(run) < 2:
                        if not log.stream_files.has(run[0]):
                            log.store.check(run[0])
                            write_stream_file(log.root, run[0], log.store.read_whole(run[0]))
                        continue
                    for part in run:
                        log.store.check(part)
                    table = pa.concat_tables([log.store.read_whole(p) for p in run])
                    merged = log.store.publish(date, table)
                    write_stream_file(log.root, merged, table)
                    log.tail.replace_parts(run, merged, to_micros(log.clock()))
                    made.append(merged.path)
        log.store.forget_cached()
        if made and log.replaced_grace <= timedelta(0):
            log._repair()
        return made
