"""``verify``: check the log's content on disk, not just its shape; never writes.

What it checks: the catalog tiles ``[1, sealed head]``; each live part's file exists and
its size and SHA-256 match the catalog; every column of every event (parts and tail)
decodes; positions are where the catalog says; values are in range (stream ids, event
ids, known event types and schema versions, JSON objects that fit their event type,
times); versions are dense per stream, event ids unique, ``recorded_at`` never goes
back; stream heads match the events; a part's stream file, where it has one, passes its
CRCs and holds exactly the part's events. Files under ``events/`` that the catalog does not
know (strays, leftover temp files) are reported: a stray is never read by the log, but a
tool that scans the directory would count it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from eventlog.bulk import check_payloads, check_stream_ids
from eventlog.errors import LedgerLakeError
from eventlog.parts import Part, check_tiling
from eventlog.streamfiles import check_stream_file
from eventlog.values import VerifyReport, tail_table

if TYPE_CHECKING:
    from eventlog.log import EventLog

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def verify_log(log: EventLog) -> VerifyReport:
    """Every check above; problems make ``ok`` false, warnings do not."""
    problems: list[str] = []
    warnings: list[str] = []
    listed = log.store.list_files()  # listed before the snapshot: a seal may publish now
    temps = log.store.temp_files()
    markers = log.store.markers()
    with log.snapshot():
        meta = log.tail.metas()
        head, sealed = meta["head"], meta["sealed_head"]
        live = log.parts()
        known = {name for name, _ in log.replaced()} | {p.name for p in live}
        tail_rows = log.tail.tail_rows(sealed)
        heads = log.tail.stream_heads()
    problems += check_tiling(live, sealed)
    tables = []
    for part in live:
        table = _check_part(log, part, problems)
        if table is not None:
            tables.append(table)
            problems += check_stream_file(log.root, part, table)
    tail = tail_table(tail_rows)
    if tail.column("position").to_pylist() != list(range(sealed + 1, head + 1)):
        problems.append(f"the tail does not hold positions {sealed + 1}..{head} densely")
    tables.append(tail)
    everything = pa.concat_tables(tables)
    problems += _check_values(log, everything)
    if len(tables) == len(live) + 1:  # with a part unread, per-stream checks only add noise
        problems += _check_streams(log, everything, heads, meta)
    for f in listed:
        if f.name not in known:
            text = (
                f"stray file {f.name} is not in the catalog (never read by the log, but a "
                "tool scanning events/ would count it); 'ledgerlake repair' removes it"
            )
            (warnings if markers else problems).append(
                text + (" — a writer is publishing or died mid-publish" if markers else "")
            )
    for t in temps:
        text = f"orphan temp file {t.parent.name}/{t.name} (a write that never finished)"
        (warnings if markers else problems).append(text)
    return VerifyReport(
        not problems, head, sealed, everything.num_rows, len(live), problems, warnings
    )


def _check_part(log: EventLog, part: Part, problems: list[str]) -> pa.Table | None:
    where = f"part {part.name} (positions {part.first}..{part.last})"
    size = log.store.size_of(part)
    if size is None:
        problems.append(f"{where} is in the catalog but its file is missing")
        return None
    if size != part.size:
        problems.append(f"{where} is {size} bytes; the catalog says {part.size}")
        return None
    if log.store.sha256_of(part) != part.sha256:
        problems.append(f"{where}: SHA-256 differs from the catalog; the file was changed")
        return None
    try:
        table = log.store.read_whole(part)
    except Exception as exc:  # any failure to decode is the finding
        problems.append(f"{where} is unreadable: {type(exc).__name__}: {exc}")
        return None
    if table.column("position").to_pylist() != list(range(part.first, part.last + 1)):
        problems.append(f"{where} does not hold exactly those positions")
    return table


def _check_values(log: EventLog, everything: pa.Table) -> list[str]:
    problems: list[str] = []
    n = everything.num_rows
    if n == 0:
        return problems
    for name in everything.column_names:
        if everything.column(name).null_count:
            problems.append(f"column {name} holds null values")
    ids = everything.column("event_id").cast(pa.string())
    if pc.count_distinct(ids).as_py() != n:
        problems.append("event ids are not unique")
    bad_ids = pc.invert(pc.match_substring_regex(ids, UUID_PATTERN))
    if pc.any(bad_ids).as_py():
        problems.append(f"event id {ids.filter(bad_ids)[0].as_py()!r} is not a UUID")
    try:
        check_stream_ids(everything.column("stream_id").cast(pa.string()).combine_chunks())
    except LedgerLakeError as exc:
        problems.append(f"bad stream id: {exc}")
    rec = everything.column("recorded_at").cast(pa.int64()).to_numpy()
    if n > 1 and (rec[1:] < rec[:-1]).any():
        problems.append("recorded_at decreases with position")
    types = everything.column("event_type").cast(pa.string())
    stypes = everything.column("stream_type").cast(pa.string())
    versions = everything.column("schema_version")
    for etype in pc.unique(types).to_pylist():
        mine = pc.equal(types, etype)
        if etype not in log.registry:
            problems.append(f"unknown event type {etype!r} in the log")
            continue
        spec = log.registry.spec(etype)
        if pc.any(pc.not_equal(stypes.filter(mine), spec.stream_type)).as_py():
            problems.append(f"{etype} events not of stream type {spec.stream_type!r}")
        sv = versions.filter(mine)
        if pc.min(sv).as_py() < 1 or pc.max(sv).as_py() > spec.schema_version:
            problems.append(
                f"{etype} events with a schema version outside 1..{spec.schema_version}"
            )
            continue
        current = pc.equal(sv, spec.schema_version)
        try:
            check_payloads(
                log.registry, spec, everything.column("payload").filter(mine).filter(current)
            )
        except LedgerLakeError as exc:
            problems.append(f"payload that does not fit its type: {exc}")
    for text in everything.column("metadata").to_pylist():
        try:
            ok = isinstance(json.loads(text), dict)
        except (ValueError, RecursionError):
            ok = False
        if not ok:
            problems.append(f"metadata {text[:80]!r} is not a JSON object")
            break
    return problems


def _check_streams(
    log: EventLog, everything: pa.Table, heads: dict[str, int], meta: dict[str, int]
) -> list[str]:
    problems: list[str] = []
    by_stream = everything.group_by("stream_id").aggregate(
        [("version", "max"), ("version", "count"), ("version", "count_distinct")]
    )
    for sid, vmax, cnt, distinct in zip(
        by_stream.column("stream_id").to_pylist(),
        by_stream.column("version_max").to_pylist(),
        by_stream.column("version_count").to_pylist(),
        by_stream.column("version_count_distinct").to_pylist(),
        strict=True,
    ):
        if not (vmax == cnt == distinct):
            problems.append(
                f"stream {sid!r}: versions are not dense from 1 ({cnt} events, max {vmax})"
            )
    problems += check_heads(everything, by_stream, heads, meta["heads_head"], meta["head"])
    extra = set(heads) - set(by_stream.column("stream_id").to_pylist())
    if extra and not any("unreadable" in p or "missing" in p for p in problems):
        problems.append(f"{len(extra)} stream heads name streams with no events")
    return problems


def check_heads(
    everything: pa.Table,
    by_stream: pa.Table,
    heads: dict[str, int],
    heads_head: int,
    head: int,
) -> list[str]:
    """Stream heads must equal the events' maxima (or lie between the maxima up to
    ``heads_head`` and the log's, while bulk appends have left them behind)."""
    problems = []
    upto = everything.filter(pc.less_equal(everything.column("position"), heads_head))
    low_t = upto.group_by("stream_id").aggregate([("version", "max")])
    low = dict(
        zip(
            low_t.column("stream_id").to_pylist(),
            low_t.column("version_max").to_pylist(),
            strict=True,
        )
    )
    for sid, vmax in zip(
        by_stream.column("stream_id").to_pylist(),
        by_stream.column("version_max").to_pylist(),
        strict=True,
    ):
        have = heads.get(sid, 0)
        if heads_head >= head and have != vmax:
            problems.append(f"stream {sid!r}: head says {have}, events say {vmax}")
        elif heads_head < head and not (low.get(sid, 0) <= have <= vmax):
            problems.append(
                f"stream {sid!r}: head says {have}, events say {low.get(sid, 0)}..{vmax}"
            )
    return problems
