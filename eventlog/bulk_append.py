"""The bulk append: an Arrow table validated column-wise, written straight to parts.

Stream ids are checked with Arrow kernels, payloads parsed by Arrow's JSON reader
against each event type's schema (on a second thread from the start), versions numbered
with numpy. Under the writer lock the tail is sealed first, then the batch becomes parts
of at most ``bulk_part_rows`` events, encoded and fsynced on parallel threads, published
in position order once every payload fits; the parts' catalog rows, the head, the
sealed head and the command id commit together. Stream heads and the index lag
(``eventlog.heads``). An in-flight marker names the whole batch: it lands whole or not
at all.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlog.bulk import (
    check_metadata,
    check_payloads,
    check_stream_ids,
    number_versions,
    uuid4_array,
)
from eventlog.codec import dumps
from eventlog.commit import check_version, result_for
from eventlog.encrypt import encrypt_batch
from eventlog.envelope import (
    COLUMNS,
    ExpectedVersion,
    from_micros,
    to_micros,
    validate_expected_version,
)
from eventlog.errors import DuplicateEventError, InvalidInputError
from eventlog.values import AppendResult

if TYPE_CHECKING:
    from eventlog.log import EventLog


def append_batch(
    log: EventLog,
    table: pa.Table,
    *,
    expected_versions: dict[str, ExpectedVersion] | None = None,
    command_id: str | None = None,
) -> AppendResult:
    """Bulk append: an Arrow table of events, validated column-wise, becomes parts.

    Columns: ``stream_id``, ``event_type``, ``payload`` (JSON text) and optionally
    ``stream_type`` (default: the log's default stream type), ``occurred_at`` (UTC timestamp, default now),
    ``metadata`` (JSON text) and ``event_id``. Row order is commit order. The tail is
    sealed first, then the batch is written straight to parts of at most
    ``bulk_part_rows`` events under the writer lock; it lands whole or not at all.
    """
    table, codes, uniques = _prepare_batch(log, table)
    n = table.num_rows
    # Payloads are parsed against their schemas on a second thread from the start
    # (pyarrow releases the GIL); the part is only published once they all fit.
    parts = -(-n // log.bulk_part_rows)
    with ThreadPoolExecutor(max_workers=2 + min(parts, os.cpu_count() or 1)) as pool:
        checking = pool.submit(_check_batch_payloads, log, table)
        new_ids = None if "event_id" in table.column_names else pool.submit(uuid4_array, n)
        if log.shredder.enabled:  # while the payloads are checked on the second thread
            # personal fields are bound to their event ids: the ids are made first
            ids = table.column("event_id") if new_ids is None else new_ids.result()
            table = encrypt_batch(log, table, ids)
        try:
            result = _append_batch_locked(
                log, pool, checking, new_ids, table, codes, uniques, expected_versions, command_id
            )
        except BaseException:
            log.shredder.drop_pending()
            raise
    return result


def _append_batch_locked(
    log: EventLog,
    pool: ThreadPoolExecutor,
    checking: Future[None],
    new_ids: Future[pa.Array] | None,
    table: pa.Table,
    codes: np.ndarray,
    uniques: pa.Array,
    expected_versions: dict[str, ExpectedVersion] | None,
    command_id: str | None,
) -> AppendResult:
    n = table.num_rows
    with log._write():
        if command_id and (hit := log.tail.command(command_id)) is not None:
            return result_for(log, hit[0], hit[1], hit[2])
        if new_ids is None:
            log.heads.catch_up_index()
            ids = table.column("event_id").to_pylist()
            if len(set(ids)) != len(ids):
                raise DuplicateEventError("the batch holds the same event id twice")
            for eid in ids:
                if (pos := log.tail.position_of_event(eid)) is not None:
                    raise DuplicateEventError(f"event id {eid} is already in the log at {pos}")
        base = log.heads.bulk_base(uniques)
        for sid, expected in (expected_versions or {}).items():
            validate_expected_version(expected)
            at = pc.index(uniques, sid).as_py()
            current = base[at] if at >= 0 else log.heads.bulk_base(pa.array([sid]))[0]
            check_version(sid, expected, int(current))
        versions = number_versions(codes, base)
        event_ids = table.column("event_id") if new_ids is None else new_ids.result()
        head = log.tail.meta("head")
        recorded = max(to_micros(log.clock()), log.tail.meta("last_recorded_at"))
        meta_col = (
            table.column("metadata")
            if "metadata" in table.column_names
            else pa.repeat(pa.scalar("{}"), n)
        )
        if command_id:
            meta_col = pa.array(
                [dumps({**json.loads(m), "command_id": command_id}) for m in meta_col.to_pylist()],
                pa.string(),
            )
        etypes = table.column("event_type").cast(pa.string())
        type_names = pc.unique(etypes).to_pylist()
        per_type = np.array(
            [log.registry.spec(t).schema_version for t in type_names], dtype=np.int16
        )
        type_codes = pc.index_in(etypes, pa.array(type_names, pa.string()))
        schema_versions = pa.array(per_type[type_codes.to_numpy(zero_copy_only=False)])
        out = pa.Table.from_arrays(
            [
                pa.array(np.arange(head + 1, head + n + 1, dtype=np.int64)),
                table.column("stream_type").cast(pa.string()).dictionary_encode(),
                table.column("stream_id"),
                pa.array(versions),
                event_ids,
                table.column("event_type").cast(pa.string()).dictionary_encode(),
                schema_versions,
                table.column("occurred_at"),
                pa.array(np.full(n, recorded, dtype=np.int64)).cast(pa.timestamp("us", "UTC")),
                table.column("payload"),
                meta_col,
            ],
            names=list(COLUMNS),
        )
        log.maintenance.seal_locked()
        # Several things overlap here (pyarrow releases the GIL): encoding and fsyncing
        # the parts under temp names, a part of at most ``bulk_part_rows`` rows per
        # thread, and parsing every payload against its schema. Only when the payloads
        # are valid are the parts published, in order; a bad payload leaves nothing but
        # temp files that are deleted at once (or by the next writer's repair after a
        # crash). The in-flight marker names the batch's positions, so that a crash
        # between two publishes is undone rather than adopted: a batch lands whole or
        # not at all. Stream heads are not written per stream here: they lag behind
        # (``heads_head``) until the next writer or reader that needs them catches up.
        log.store.mark_inflight((head + 1, head + n))
        date = from_micros(recorded).date().isoformat()
        size = -(-n // -(-n // log.bulk_part_rows))  # even parts, none over the limit
        stagings = [
            pool.submit(log.store.stage, date, out.slice(lo, size)) for lo in range(0, n, size)
        ]
        heads = base + np.bincount(codes, minlength=len(uniques))
        merging = pool.submit(log.heads.stale_after, head, head + n, uniques, heads)
        try:
            checking.result()
            staged = [staging.result() for staging in stagings]
        except BaseException:
            for staging in stagings:
                with contextlib.suppress(Exception):
                    log.store.discard(staging.result())
            raise
        log.store.published = True  # a crash between two publishes is undone by repair
        for part in staged:
            log.tail.add_part(log.store.publish_staged(part))
        log.tail.set_metas(
            {"sealed_head": head + n, "head": head + n, "last_recorded_at": recorded}
        )
        log.shredder.bind_pending()
        if command_id:
            log.tail.insert_commands([(command_id, uniques[0].as_py(), head + 1, head + n)])
    log.heads.set_stale(merging.result())
    return AppendResult(
        uniques[0].as_py() if len(uniques) == 1 else "*",
        head + 1,
        head + n,
        int(versions.min()),
        int(versions.max()),
        from_micros(recorded),
    )


def _check_batch_payloads(log: EventLog, table: pa.Table) -> None:
    """Parse every payload of a bulk table against its event type's schema."""
    etype = table.column("event_type").cast(pa.string())
    kinds = pc.unique(etype).to_pylist()
    for e in kinds:
        payloads = table.column("payload")
        if len(kinds) > 1:
            payloads = payloads.filter(pc.equal(etype, e))
        check_payloads(log.registry, log.registry.spec(e), payloads)


def _prepare_batch(log: EventLog, table: pa.Table) -> tuple[pa.Table, np.ndarray, pa.Array]:
    """Validate a bulk table column-wise; returns it normalized, with stream codes."""
    if not isinstance(table, pa.Table):
        raise InvalidInputError(f"expected a pyarrow Table, got {type(table).__name__}")
    missing = [c for c in ("stream_id", "event_type", "payload") if c not in table.column_names]
    if missing:
        raise InvalidInputError(f"bulk table lacks columns {', '.join(missing)}")
    if table.num_rows == 0:
        raise InvalidInputError("nothing to append: the table is empty")
    table = table.combine_chunks()
    n = table.num_rows
    sid = table.column("stream_id").cast(pa.string())
    if sid.null_count:
        raise InvalidInputError("stream_id has null values")
    encoded = sid.dictionary_encode().combine_chunks()
    check_stream_ids(encoded.dictionary)
    given_types = "stream_type" in table.column_names
    if not given_types:
        table = table.append_column(
            "stream_type", pa.repeat(pa.scalar(log.default_stream_type()), n)
        )
    if "occurred_at" not in table.column_names:
        now = pa.scalar(to_micros(log.clock()), pa.int64()).cast(pa.timestamp("us", "UTC"))
        table = table.append_column("occurred_at", pa.repeat(now, n))
    occ = table.column("occurred_at")
    if not pa.types.is_timestamp(occ.type) or occ.type.tz is None:
        raise InvalidInputError(
            f"occurred_at must be a timezone-aware timestamp column, got {occ.type}"
        )
    occ = occ.cast(pa.timestamp("us", "UTC"))
    if occ.null_count:
        raise InvalidInputError("occurred_at has null values")
    table = table.set_column(table.schema.get_field_index("occurred_at"), "occurred_at", occ)
    etype = table.column("event_type").cast(pa.string())
    if given_types:
        stype = table.column("stream_type").cast(pa.string())
        pairs = pa.table({"e": etype, "s": stype}).group_by(["e", "s"]).aggregate([])
        found = zip(pairs.column("e").to_pylist(), pairs.column("s").to_pylist(), strict=True)
    else:  # every row is of the default stream type
        found = zip(pc.unique(etype).to_pylist(), itertools.repeat(log.default_stream_type()))
    for e, st in found:
        spec = log.registry.spec(e)
        if spec.stream_type != st:
            raise InvalidInputError(f"{e} belongs to stream type {spec.stream_type!r}, not {st!r}")
    if table.column("payload").null_count:
        raise InvalidInputError("payload has null values; a JSON object per event expected")
    if "metadata" in table.column_names:
        check_metadata(table.column("metadata"))
    if "event_id" in table.column_names:
        for eid in table.column("event_id").to_pylist():
            try:
                uuid.UUID(eid)
            except (ValueError, AttributeError, TypeError):
                raise InvalidInputError(f"event_id {eid!r} is not a UUID") from None
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return table, codes, encoded.dictionary
