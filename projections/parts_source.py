"""The log's sealed parts as DuckDB input, wherever they live.

Parts on this machine's disk are scanned by DuckDB itself (``read_parquet``, in
parallel, lazily). Parts in object storage are read through the log's part store
(pyarrow's S3 filesystem: one download per part, its bytes checked against the catalog
on the way, several parts at once) and handed to DuckDB as Arrow, so no DuckDB extension
is needed (``httpfs`` cannot be installed offline). Either way the live set comes from
the catalog, never from a listing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from eventlog.envelope import ENVELOPE_SCHEMA
from eventlog.errors import IntegrityError
from eventlog.parts import Part

if TYPE_CHECKING:
    from eventlog.log import EventLog

# downloads overlap: object stores answer each request with some latency
_DOWNLOADS = max(4, 2 * (os.cpu_count() or 1))


def plain_strings(table: pa.Table) -> pa.Table:
    """Dictionary columns as plain strings, as DuckDB's Parquet reader gives them."""
    cols = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)


def read_sealed(
    log: EventLog, parts: Sequence[Part], after: int, until: int, *, decrypt: bool = True
) -> pa.Table:
    """Positions (after, until] of the given live parts as one Arrow table, in order
    (each part's bytes checked against the catalog; parts read in parallel). Personal
    fields are decrypted, unless ``decrypt`` is false: the caller decrypts them later."""
    wanted = [p for p in parts if p.last > after and p.first <= until]
    if not wanted:
        return plain_strings(ENVELOPE_SCHEMA.empty_table())
    with ThreadPoolExecutor(max_workers=min(len(wanted), _DOWNLOADS)) as pool:
        tables = list(pool.map(lambda p: log.store.read_range(p, after, until, None), wanted))
    # personal fields are encrypted in the parts: decrypted here (erased once forgotten)
    table = pa.concat_tables(tables)
    if decrypt:
        table = log.shredder.decrypt_table(table)
    if table.num_rows != until - after:
        raise IntegrityError(
            f"the parts do not hold every position in {after + 1}..{until}; the log is "
            "damaged: run 'ledgerlake verify'"
        )
    return plain_strings(table)


def register_parts(con: Any, log: EventLog, name: str, parts: Sequence[Part]) -> None:
    """Register the live parts as the relation ``name`` (bytes checked against the catalog).

    Local parts stay on disk and are read when a query runs; parts in object storage are
    read now, into memory.
    """
    if not parts:
        con.register(name, plain_strings(ENVELOPE_SCHEMA.empty_table()))
    elif log.store.local:
        files = [str(log.check_part(p)) for p in parts]
        if log.shredder.encrypted(files):  # personal fields: read as Arrow, decrypted
            first, last = min(p.first for p in parts), max(p.last for p in parts)
            con.register(name, read_sealed(log, parts, first - 1, last))
        else:
            con.register(name, con.read_parquet(files, hive_partitioning=False))
    else:
        first, last = min(p.first for p in parts), max(p.last for p in parts)
        con.register(name, read_sealed(log, parts, first - 1, last))
