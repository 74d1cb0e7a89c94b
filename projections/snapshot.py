"""The warehouse's own copy of the sealed parts: ``order_events`` reads them typed, in place.

A rebuild of ``order_events`` does not store every event as a row of the warehouse
file. It *pins* the log's sealed parts under ``<warehouse>.parts/<build>/``: each part
becomes one Parquet file of typed ``order_events`` rows (payload and metadata fields as
columns, DuckDB's ``json_transform``), and ``analytics.order_events`` is a view over
those files (then the stored typed rows of the events after them). The JSON is parsed
once, when a part is pinned, not by every query and every rebuild that reads the view.
How a part is read to be pinned:

* a local part without personal fields: by DuckDB, straight from the log's file, after
  its bytes were checked against the catalog (size and SHA-256);
* a part holding encrypted personal fields, or one in object storage: through the log
  (checked, decrypted: a forgotten customer's fields read ``[erased]``). The warehouse
  never shows ciphertext. Decrypting is the CPU's work (AES-GCM per value): on the
  embedded lake, a build with much to decrypt does it in worker processes, one per core
  (``projections.unseal``).

Either way the pinned file is the warehouse's: a compaction or a repair in the log later
changes nothing its readers see, and only the next build replaces it. The view names the
files by absolute path, so any DuckDB client can query the warehouse from anywhere; a
lake moved to another directory is re-pinned by its next catch-up
(``projections.source.pinned_elsewhere``).

A part pinned by an earlier build is linked from there (each build lists the SHA-256 of
the part behind each of its files, and the code version of ``order_events`` that typed
them): rebuilding any projection of a warehouse that exists reads, types and decrypts
only the parts sealed or compacted since.

A warehouse held in memory (no file) has nowhere to keep pinned files: every event is
stored as a typed row there.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from eventlog.errors import IntegrityError
from eventlog.log import EventLog
from eventlog.parts import Part, missing_part
from projections.ingest import SMALL_CHUNK, PartsMovedError
from projections.order_events import ORDER_EVENTS, sql_literal, typed_events
from projections.parts_source import read_sealed
from projections.unseal import unseal, workers_for

SOURCES = "sources.json"  # in each pinned build: file name -> SHA-256 of the part it pins
# a cache, read often: LZ4 is cheap to decode; row groups of 100k rows keep a scan parallel
_ROW_GROUP = 100_000
_WRITE = f"FORMAT parquet, COMPRESSION lz4, ROW_GROUP_SIZE {_ROW_GROUP}"
_PINNERS = max(2, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class PinnedParts:
    """The sealed parts pinned for one build: their directory and the last position they
    hold, in full from position 1."""

    directory: Path
    cut: int


@contextmanager
def _part_errors(log: EventLog, part: Part, dest: Path | None = None) -> Iterator[None]:
    """A part that cannot be read or pinned: one compaction replaced meanwhile is
    PartsMovedError (list again), else damage (IntegrityError). ``dest`` is removed."""
    try:
        yield
    except (FileNotFoundError, IntegrityError) as exc:
        if dest is not None:
            dest.unlink(missing_ok=True)
        if not any(p.name == part.name for p in log.parts()):
            raise PartsMovedError(0) from None
        if isinstance(exc, FileNotFoundError):
            raise missing_part(part) from None
        raise


def _check(log: EventLog, part: Part) -> None:
    """A local part's bytes against the catalog (``EventLog.check_part``)."""
    with _part_errors(log, part):
        log.check_part(part)


_local = threading.local()


def _duckdb(one_thread: bool) -> Any:
    """This thread's in-memory DuckDB connection, which types the rows it pins.

    ``one_thread``: several parts are pinned at once (in threads or worker processes),
    each on one core; splitting a part of 50k rows between cores costs more than it gains
    (typing one took 55 ms on one thread, 70 ms on two).
    """
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = _local.con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1" if one_thread else "RESET threads")
    return con


def _write_typed(rows: str, dest: Path, one_thread: bool) -> None:
    """Write the typed ``order_events`` rows of a relation of raw log rows at ``dest``."""
    target = sql_literal(str(dest))
    _duckdb(one_thread).execute(f"COPY ({typed_events(rows)}) TO {target} ({_WRITE})")


def _write_sealed(log: EventLog, part: Part, dest: Path, one_thread: bool = True) -> None:
    """One part read through ``log`` (checked), typed, decrypted and written at ``dest``
    (by a worker process, which always pins several parts: ``one_thread``).

    The personal fields are opened in their typed columns (``Shredder.decrypt_columns``):
    no JSON text is rewritten around them.
    """
    con = _duckdb(one_thread)
    con.register("sealed", read_sealed(log, [part], part.first - 1, part.last, decrypt=False))
    try:
        typed = con.sql(typed_events("sealed")).to_arrow_table()
    finally:
        con.unregister("sealed")
    typed = log.shredder.decrypt_columns(typed, stream="order_id")
    pq.write_table(typed, dest, compression="lz4", row_group_size=_ROW_GROUP)


def _failed(log: EventLog, part: Part, dest: Path, exc: BaseException) -> None:
    """A part a worker process could not pin, raised as if it had failed here."""
    with _part_errors(log, part, dest):
        raise exc


def _pin_one(log: EventLog, part: Part, dest: Path, through_log: bool, one_thread: bool) -> None:
    """Pin one part at ``dest``: read ``through_log`` (downloaded, or decrypted), else by
    DuckDB from the log's local file (its bytes checked before, by ``_check``)."""
    with _part_errors(log, part, dest):
        if through_log:
            _write_sealed(log, part, dest, one_thread)
            return
        import duckdb

        path = sql_literal(str(part.path))
        try:
            rows = f"read_parquet({path}, hive_partitioning = false)"
            _write_typed(rows, dest, one_thread)
        except duckdb.Error as exc:
            if not part.path.exists():  # a compaction removed it since it was listed
                raise FileNotFoundError(str(part.path)) from exc
            if isinstance(exc, duckdb.IOException):  # a file not opened or written (a full
                raise  # disk): no sign the part is damaged
            raise IntegrityError(
                f"part {part.name} cannot be read as Parquet ({exc}); the log is "
                "damaged: run 'ledgerlake verify'"
            ) from exc


def pin_parts(log: EventLog, root: Path, build_name: str) -> PinnedParts:
    """Pin every sealed part of ``log`` under ``root/build_name`` (checked); the cut is the
    sealed head the pinned files hold in full, from position 1."""
    with log.snapshot():
        sealed = log.sealed_head()
        parts = sorted((p for p in log.parts() if p.last <= sealed), key=lambda p: p.first)
    directory = root / build_name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    expected = 1
    for part in parts:
        if part.first != expected:
            raise IntegrityError(
                f"the parts do not hold every position in 1..{sealed} (next part starts at "
                f"{part.first}, expected {expected}); the log is damaged: run 'ledgerlake verify'"
            )
        expected = part.last + 1
    erased = log.shredder.last_destroyed()
    earlier = _earlier_pins(root, build_name, erased)
    todo = []
    for part in parts:
        dest = directory / _file_name(part)
        before = earlier.get(part.sha256)
        if before is not None:
            try:
                os.link(before, dest)  # pinned by an earlier build: the same bytes
                continue
            except OSError:
                pass
        todo.append((part, dest))
    with ThreadPoolExecutor(max_workers=_PINNERS) as pool:
        if log.store.local:  # every byte checked before anything (DuckDB too) reads it
            for job in [pool.submit(_check, log, p) for p, _ in todo]:
                job.result()
        # through the log: parts in object storage, parts holding sealed values, and a
        # few parts (a build that links the others from an earlier one), which are not
        # first scanned for sealed values: the scan would cost more than it could spare
        through_log = (
            not log.store.local
            or sum(p.count for p, _ in todo) <= SMALL_CHUNK
            or log.shredder.encrypted([str(p.path) for p, _ in todo])
        )
        workers = workers_for(log, todo) if through_log else 0
        if workers:
            unseal(log, todo, workers, _write_sealed, partial(_failed, log))
        else:
            many = len(todo) > 1
            jobs = [pool.submit(_pin_one, log, p, dest, through_log, many) for p, dest in todo]
            for job in jobs:
                job.result()
    sources = {
        "last_destroyed": erased,
        "code_version": ORDER_EVENTS.code_version,
        "files": {_file_name(p): p.sha256 for p in parts},
        # counted once from the files' footers: a report of the build's rows then needs no
        # scan of them (10M pinned rows took 0.2 s to count through the view)
        "rows": sum(pq.read_metadata(directory / _file_name(p)).num_rows for p in parts),
    }
    (directory / SOURCES).write_text(json.dumps(sources, sort_keys=True))
    return PinnedParts(directory, expected - 1)


def _file_name(part: Part) -> str:
    return f"{part.first:020d}-{part.last:020d}.parquet"


def _earlier_pins(root: Path, build_name: str, erased: int) -> dict[str, Path]:
    """The files earlier builds pinned, by the SHA-256 of the part each was made from.

    A pinned file depends on its part's bytes, on the keys (a build pinned before the
    latest key was destroyed may hold that customer's fields decrypted) and on the code
    that typed it (``order_events``' code version): a build that differs is not used.
    """
    found: dict[str, Path] = {}
    for sources in root.glob(f"*/{SOURCES}"):
        if sources.parent.name == build_name:
            continue
        listed = _listing(sources.parent)
        if listed is None or listed.get("last_destroyed") != erased:
            continue
        if listed.get("code_version") != ORDER_EVENTS.code_version:
            continue
        for name, sha in dict(listed.get("files") or {}).items():
            path = sources.parent / name
            if isinstance(sha, str) and path.is_file():
                found[sha] = path
    return found


def _listing(directory: Path) -> dict[str, Any] | None:
    """The listing (``SOURCES``) of the build pinned under ``directory``; None when it is
    missing or unreadable."""
    try:
        listed = json.loads((directory / SOURCES).read_text())
    except (OSError, ValueError):
        return None
    return listed if isinstance(listed, dict) else None


def pinned_rows(directory: Path) -> int | None:
    """The rows a build pinned under ``directory``, as it counted them; None when it did
    not (a build pinned before the count was kept, or no listing)."""
    rows = (_listing(directory) or {}).get("rows")
    return rows if isinstance(rows, int) and rows >= 0 else None


def drop_pinned(root: Path | None, *keep: str) -> None:
    """Remove every pinned build under ``root`` but those in ``keep`` (older, failed ones)."""
    if root is None or not root.is_dir():
        return
    for child in root.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)
