"""Helpers shared by the command modules: the lake context, JSON output, exit codes."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from eventlog.errors import LedgerLakeError, exit_code_for

T = TypeVar("T")
STORAGE_MARKERS = ("No space left", "disk is full", "Read-only file system", "Permission denied")
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


@dataclass(frozen=True, slots=True)
class LakeContext:
    """What the top-level options chose: the lake directory."""

    lake: Path


def lake_of(ctx: typer.Context) -> Path:
    """The lake directory chosen by ``--lake`` / LEDGERLAKE_HOME / ./lake."""
    obj = ctx.find_root().obj
    assert isinstance(obj, LakeContext)
    return obj.lake


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error on stderr and exit with one of the exit codes of docs/cli.md."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn LedgerLake errors into a message on stderr and their exit code."""
    try:
        yield
    except LedgerLakeError as exc:
        fail(str(exc), exit_code_for(exc))
    except RecursionError:
        fail("the input nests too deeply (JSON objects inside objects); flatten it", 2)
    except (ValueError, TypeError) as exc:  # bad input that slipped past validation
        fail(str(exc), 2)
    except OSError as exc:  # the machine said no: a full disk, a read-only filesystem
        if exc.errno in STORAGE_ERRNOS:
            fail(f"the storage refused: {exc}; nothing more was written", 5)
        raise
    except Exception as exc:
        # DuckDB's and SQLite's own errors (a full disk under a projection, say): the
        # cause in one line, with the storage ones told apart
        if not (type(exc).__module__.startswith(("duckdb", "_duckdb", "sqlite3"))):
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if any(marker in str(exc) for marker in STORAGE_MARKERS):
            fail(f"the storage refused: {text}; what was committed before is intact", 5)
        fail(f"{type(exc).__name__}: {text}", 1)


def print_json(value: Any) -> None:
    """One JSON document on stdout (times and paths as strings)."""
    sys.stdout.write(json.dumps(value, default=str, ensure_ascii=False) + "\n")


def run_guarded(fn: Callable[[], T]) -> T:
    """Call ``fn`` translating LedgerLake errors into exit codes."""
    with exit_codes():
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover
