"""A scan of every file under a directory for planted values: decoded and as raw bytes.

Parquet files are decoded (every string column), every version of every Lance dataset
still on disk is decoded, every table of a DuckDB file is queried, and the raw bytes of
every file (those included) are searched, case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc


def _strings(table: pa.Table, needles: list[str], where: str) -> list[str]:
    hits = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        low = pc.utf8_lower(col)
        for n in needles:
            if pc.any(pc.match_substring(low, n)).as_py():
                hits.append(f"{where} column {name} holds {n!r}")
    return hits


def _duckdb(path: Path, needles: list[str]) -> list[str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        hits = []
        tables = con.execute(
            "SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        for cat, schema, name in tables:
            table = con.execute(f'SELECT * FROM "{cat}"."{schema}"."{name}"').to_arrow_table()
            hits += _strings(table, needles, f"{path} table {schema}.{name}")
        return hits
    finally:
        con.close()


def _lance(path: Path, needles: list[str]) -> list[str]:
    import lance

    hits = []
    for v in lance.dataset(str(path)).versions():
        table = lance.dataset(str(path), version=v["version"]).to_table()
        hits += _strings(table, needles, f"{path} version {v['version']}")
    return hits


def scan(root: Path, values: Iterable[str]) -> list[str]:
    """Every place under ``root`` that holds one of ``values`` (empty: none)."""
    needles = sorted({v.lower() for v in values})
    hits: list[str] = []
    datasets: set[Path] = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes().lower()
        hits += [f"{path} raw bytes hold {n!r}" for n in needles if n.encode() in raw]
        dataset = next((p for p in path.parents if p.suffix == ".lance"), None)
        if dataset is not None:
            datasets.add(dataset)
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            hits += _strings(pq.read_table(path), needles, str(path))
        elif path.suffix == ".duckdb":
            hits += _duckdb(path, needles)
    for dataset in sorted(datasets):
        hits += _lance(dataset, needles)
    return hits
