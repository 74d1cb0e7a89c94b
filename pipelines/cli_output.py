"""How the CLI prints rows and notes: an aligned table in a terminal, TSV/CSV/JSON otherwise.

A command that prints rows asks :func:`output_format` which format the user chose (or
which one fits where stdout goes) and hands the rows to :func:`print_rows`. Notes about
the result (an empty result, how an input was read) go to stderr, so stdout stays data.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TextIO

import typer

from eventlog.errors import InvalidInputError

Format = Literal["table", "tsv", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "tsv", "csv", "json")
MAX_CELL = 60  # wider cells are cut with an ellipsis in the terminal table (never in TSV/CSV/JSON)


def plain(value: Any) -> Any:
    """A value as JSON/CSV writes it: times and dates in ISO 8601, everything else as is."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def output_format(
    *,
    json_out: bool = False,
    csv_out: bool = False,
    tsv_out: bool = False,
    stream: TextIO | None = None,
) -> Format:
    """The format asked for; without a flag, a table on a terminal and TSV into a pipe or file.

    Raises InvalidInputError (exit 2) when more than one format flag is given.
    """
    chosen = [f for f, on in (("json", json_out), ("csv", csv_out), ("tsv", tsv_out)) if on]
    if len(chosen) > 1:
        raise InvalidInputError(
            f"choose one of --json, --csv and --tsv, not {' and '.join(chosen)}"
        )
    if chosen:
        return chosen[0]  # type: ignore[return-value]
    out = stream if stream is not None else sys.stdout
    return "table" if out.isatty() else "tsv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(plain(value))
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _is_number(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in present
    )


def print_table(
    names: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    """An aligned table on stdout (rich): numbers right-aligned, NULL as an empty cell."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    for i, name in enumerate(names):
        numeric = _is_number([r[i] for r in rows])
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console = Console(file=sys.stdout, soft_wrap=False)
    console.print(table)
    noun = "row" if len(rows) == 1 else "rows"
    console.print(f"[dim]{len(rows)} {noun}[/dim]")


def print_rows(names: Sequence[str], rows: Sequence[Sequence[Any]], fmt: Format) -> None:
    """Rows with their column names in ``fmt`` on stdout."""
    if fmt == "json":
        data = [{n: plain(v) for n, v in zip(names, r, strict=True)} for r in rows]
        sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(names)
        writer.writerows([[plain(v) for v in r] for r in rows])
    elif fmt == "tsv":
        sys.stdout.write("\t".join(names) + "\n")
        for r in rows:
            sys.stdout.write("\t".join("" if v is None else str(plain(v)) for v in r) + "\n")
    else:
        print_table(names, rows)


def note(text: str) -> None:
    """A remark about the result on stderr (stdout stays data): ``note: ...``."""
    typer.echo(f"note: {text}", err=True)


def note_empty_read(stream: str | None, stream_version: int | None) -> None:
    """Say on stderr why ``read`` printed no event: an unknown stream, or nothing matched."""
    if stream is not None and not stream_version:
        note(f"no events: the log has no stream {stream!r}")
    elif stream is not None:
        note(f"no events of stream {stream!r} (version {stream_version}) match --after/--type")
    else:
        note("no events match")
