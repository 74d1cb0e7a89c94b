"""Find the lake a notebook works on: one setting, LEDGERLAKE_HOME, else ``<repo root>/lake``.

Notebooks run with their own folder as the working directory, so the default is resolved
against the repository root (the nearest folder above the working directory whose
``pyproject.toml`` names the ``ledgerlake`` project), not against the working directory.
A missing lake, or one without the parts a notebook needs, raises ``LakeNotFoundError``
whose message says how to build it. ``scan_parts`` gives Polars the log's sealed parts,
on a local disk or in object storage.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eventlog.errors import InvalidInputError

HOME_VARIABLE = "LEDGERLAKE_HOME"
"""The one setting that points notebooks (and the CLI) at a lake."""

DEFAULT_LAKE_NAME = "lake"

HOW_TO_BUILD = (
    "Create it from the repository root with `make demo` (generates orders and builds every "
    "projection), or step by step: `ledgerlake generate --orders 500 --days 60 --seed 7 && "
    "ledgerlake project && ledgerlake embed`; or set LEDGERLAKE_HOME to the folder of an existing lake."
)

# What each part of the lake is and the paths that show it is there (any one of them).
_PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "events": ("the event log", ("tail.sqlite", "events", "lake.toml")),
    "warehouse": ("the DuckDB warehouse", ("warehouse.duckdb",)),
    "vectors": ("the LanceDB vectors", ("vectors",)),
}


class LakeNotFoundError(InvalidInputError):
    """The lake a notebook needs is missing or lacks a projection; the message says how to build it."""


def repo_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) holding this project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "ledgerlake"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def find_lake(
    require: Iterable[str] = ("events", "warehouse"),
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The lake folder from LEDGERLAKE_HOME (else ``<repo root>/lake``), checked to hold ``require``.

    ``require`` names the parts a notebook reads: ``events`` (the log), ``warehouse``
    (``warehouse.duckdb``) and ``vectors`` (the LanceDB folder). ``environ`` and ``cwd``
    default to the process environment and working directory; tests pass their own.
    """
    env = os.environ if environ is None else environ
    wanted = list(require)
    unknown = [name for name in wanted if name not in _PARTS]
    if unknown:
        raise InvalidInputError(
            f"unknown lake part(s) {unknown!r}; expected some of {sorted(_PARTS)!r}"
        )
    configured = env.get(HOME_VARIABLE, "").strip()
    if configured:
        lake = Path(configured).expanduser()
        if not lake.is_absolute():
            lake = (cwd or Path.cwd()) / lake
        source = f"{HOME_VARIABLE}={configured}"
    else:
        base = repo_root(cwd) or (cwd or Path.cwd())
        lake = base / DEFAULT_LAKE_NAME
        source = (
            f"the default ./{DEFAULT_LAKE_NAME} at the repository root ({HOME_VARIABLE} is not set)"
        )
    lake = lake.resolve()
    if not lake.is_dir():
        raise LakeNotFoundError(f"No LedgerLake lake at {lake} (from {source}). {HOW_TO_BUILD}")
    missing = [
        name for name in wanted if not any((lake / path).exists() for path in _PARTS[name][1])
    ]
    if missing:
        described = ", ".join(
            f"{_PARTS[name][0]} ({' or '.join(_PARTS[name][1])})" for name in missing
        )
        raise LakeNotFoundError(
            f"The lake at {lake} (from {source}) has no {described}. {HOW_TO_BUILD}"
        )
    return lake


def scan_parts(lake: Path) -> Any:
    """A Polars LazyFrame over the log's sealed parts, as the catalog lists them now.

    Parts in object storage are scanned where they are (``s3://...``, with the lake's
    endpoint and the AWS credentials of this process); the tail's newest events are not
    in it (``EventLog.read`` has them). ``ledgerlake verify`` checks the parts' bytes.
    """
    import polars as pl

    from eventlog.objectstore import ObjectPartStore
    from eventlog.orders.log import open_order_log
    from eventlog.s3 import polars_storage_options

    with open_order_log(lake, read_only=True) as log:
        parts = log.parts()
        store = log.store
    if not parts:
        from eventlog.envelope import ENVELOPE_SCHEMA

        empty = pl.from_arrow(ENVELOPE_SCHEMA.empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty.lazy()
    if isinstance(store, ObjectPartStore):
        urls = [f"s3://{p.path}" for p in parts]
        return pl.scan_parquet(urls, storage_options=polars_storage_options(store.conn))
    return pl.scan_parquet([str(p.path) for p in parts])
