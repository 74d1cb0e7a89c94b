"""The log commands of ``ledgerlake``: init, generate, append, handle, read, seal, verify,
compact, info, repair.

Exit codes: 0 done, 1 integrity problem, 2 bad input (nothing written), 3 concurrency
conflict, 4 business rule rejected, 5 storage refused. See docs/cli.md.

Over 400 lines on purpose: ten small commands of the log, each with its options, help
and error handling, kept together so that the log's command line reads in one place.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventlog.errors import InvalidInputError
from pipelines.cli_common import exit_codes, lake_of, print_json
from pipelines.cli_output import note_empty_read

if TYPE_CHECKING:
    import pyarrow as pa

    from eventlog.codec import EventRegistry
    from eventlog.envelope import NewEvent
    from eventlog.log import AppendRequest, EventLog

# pyarrow and the log are imported by the functions that use them: every ``ledgerlake``
# call imports this module, and ``sql`` or ``state`` need neither (docs/cli.md, "Start-up").

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
APPEND_KEYS = (
    "stream_id",
    "stream_type",
    "type",
    "data",
    "expected_version",
    "occurred_at",
    "metadata",
    "event_id",
)
REQUIRED_KEYS = ("stream_id", "type", "data")


def open_existing(lake: Path) -> EventLog:
    """Open a lake that must exist, read-only: commands that only read change no file."""
    from eventlog.orders.log import open_order_log

    return open_order_log(lake, read_only=True)


def open_for_writing(lake: Path, *, create: bool = True) -> EventLog:
    """Open a lake for a write command; the tail is durable, so closing does not seal it.

    Sealing on every short CLI call would leave one tiny part per call; the size and
    age thresholds (and ``ledgerlake seal``) seal instead.
    """
    from eventlog.orders.log import open_order_log

    return open_order_log(lake, create=create, seal_on_close=False)


def _say(text: str) -> None:
    typer.echo(text)


# --- append ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    stream_id: str
    stream_type: str
    expected_version: Any
    event: NewEvent


def _parse_append_line(number: int, text: str, registry: EventRegistry) -> _Line:
    """Check one JSON line of ``append`` completely; InvalidInputError names the line."""
    from eventlog.envelope import (
        NewEvent,
        parse_time,
        validate_expected_version,
        validate_stream_id,
    )

    try:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise InvalidInputError(f"expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in obj]
        if missing:
            raise InvalidInputError(
                f"missing {', '.join(missing)}; expected keys: {', '.join(APPEND_KEYS)}"
            )
        unknown = sorted(k for k in obj if k not in APPEND_KEYS)
        if unknown:
            raise InvalidInputError(
                f"unknown keys {', '.join(unknown)}; expected keys: {', '.join(APPEND_KEYS)}"
            )
        stream_id = validate_stream_id(obj["stream_id"])
        stream_type = obj.get("stream_type", "order")
        if not isinstance(stream_type, str) or not stream_type:
            raise InvalidInputError(f"stream_type must be a non-empty string, got {stream_type!r}")
        event_type = obj["type"]
        if not isinstance(event_type, str):
            raise InvalidInputError(f"type must be a string, got {event_type!r}")
        spec = registry.spec(event_type)
        if spec.stream_type != stream_type:
            raise InvalidInputError(
                f"{event_type} belongs to stream type {spec.stream_type!r}, not {stream_type!r}"
            )
        payload = registry.validate(event_type, obj["data"])
        expected = obj.get("expected_version")
        if expected is not None:
            validate_expected_version(expected)
        occurred = obj.get("occurred_at")
        if occurred is not None and not isinstance(occurred, str):
            raise InvalidInputError(
                f"occurred_at must be an ISO 8601 string such as 2026-11-26T12:00:00Z, got {occurred!r}"
            )
        metadata = obj.get("metadata", {})
        if not isinstance(metadata, dict):
            raise InvalidInputError(
                f"metadata must be a JSON object, got {type(metadata).__name__}"
            )
        event_id = obj.get("event_id")
        if event_id is not None:
            try:
                uuid.UUID(event_id)
            except (ValueError, AttributeError, TypeError):
                raise InvalidInputError(f"event_id {event_id!r} is not a UUID") from None
        event = NewEvent(
            event_type,
            payload,
            occurred_at=parse_time(occurred) if occurred is not None else None,
            metadata=metadata,
            event_id=event_id,
        )
        return _Line(number, stream_id, stream_type, expected, event)
    except InvalidInputError as exc:
        raise type(exc)(f"line {number}: {exc}") from None


def parse_append_lines(lines: Iterable[str], registry: EventRegistry) -> list[AppendRequest]:
    """Turn JSON lines into append requests: consecutive lines of one stream form one request.

    A line with ``expected_version`` starts a new request, checked against the stream's
    version just before that line (inside the same atomic commit). Blank lines are skipped.
    """
    from eventlog.envelope import ANY
    from eventlog.log import AppendRequest

    parsed = [
        _parse_append_line(n, text, registry)
        for n, text in enumerate(lines, start=1)
        if text.strip()
    ]
    if not parsed:
        raise InvalidInputError("no events: expected one JSON object per line")
    requests: list[AppendRequest] = []
    group: list[_Line] = []

    def close_group() -> None:
        if group:
            head = group[0]
            expected = ANY if head.expected_version is None else head.expected_version
            requests.append(
                AppendRequest(
                    head.stream_id,
                    [x.event for x in group],
                    expected_version=expected,
                    stream_type=head.stream_type,
                )
            )
            group.clear()

    for line in parsed:
        if group and (
            line.stream_id != group[0].stream_id
            or line.stream_type != group[0].stream_type
            or line.expected_version is not None
        ):
            close_group()
        group.append(line)
    close_group()
    return requests


def _read_input(source: str | None) -> str:
    if source is None or source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(f"input file {source} does not exist")
    return path.read_text(encoding="utf-8")


# --- read ---------------------------------------------------------------------------------------


def _event_lines(table: pa.Table) -> Iterator[dict[str, Any]]:
    from eventlog.envelope import records_from_batch

    for rec in records_from_batch(table):
        yield rec.to_json()


def _filter_types(table: pa.Table, types: list[str] | None) -> pa.Table:
    if not types:
        return table
    import pyarrow as pa
    import pyarrow.compute as pc

    return table.filter(pc.is_in(table.column("event_type").cast(pa.string()), pa.array(types)))


def _select(table: pa.Table, stream: str | None, after: int) -> pa.Table:
    import pyarrow.compute as pc

    if stream is not None:
        table = table.filter(pc.equal(table.column("stream_id"), stream))
    if after:
        table = table.filter(pc.greater(table.column("position"), after))
    return table


def _emit(tables: Iterable[pa.Table], limit: int | None, stream: str | None, after: int) -> int:
    written = 0
    for table in tables:
        table = _select(table, stream, after)
        if limit is not None:
            table = table.slice(0, limit - written)
        for obj in _event_lines(table):
            print_json(obj)
        written += table.num_rows
        sys.stdout.flush()
        if limit is not None and written >= limit:
            break
    return written


def _non_negative(name: str, value: int | None) -> None:
    if value is not None and value < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {value}")


# --- human output -------------------------------------------------------------------------------


def _print_mapping(title: str, values: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in values.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items()
            )
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        table.add_row(key, str(value))
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the log commands to the app."""

    @app.command()
    def generate(
        ctx: typer.Context,
        orders: Annotated[int, typer.Option(help="How many orders to simulate.")] = 1000,
        days: Annotated[int, typer.Option(help="How many days the simulation covers.")] = 30,
        seed: Annotated[int, typer.Option(help="Random seed: same seed, same log.")] = 42,
        start: Annotated[
            str | None,
            typer.Option(
                help="Start of the simulated period (ISO 8601 with offset).",
                show_default="2026-01-01T00:00:00Z",
            ),
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Simulate a shop's order histories through the real command handlers."""
        from eventlog.envelope import parse_time
        from eventlog.orders.generate import generate as run_generate

        with exit_codes():
            begin = parse_time(start) if start is not None else None
            summary = run_generate(
                lake_of(ctx),
                orders=orders,
                days=days,
                seed=seed,
                start=begin,
                progress=sys.stderr.isatty() and not json_out,
            )
        if summary.rejected:
            typer.echo(
                f"warning: {summary.rejected} generated commands were rejected: "
                + "; ".join(summary.rejections[:3]),
                err=True,
            )
        if json_out:
            print_json(summary.to_json())
            return
        data = summary.to_json()
        data.pop("rejections")
        _print_mapping(f"generated into {lake_of(ctx)}", data)

    @app.command()
    def append(
        ctx: typer.Context,
        source: Annotated[
            str | None, typer.Argument(help="JSON-lines file, or - for stdin (the default).")
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Append events given as JSON lines; all lines commit atomically, or none."""
        from eventlog.orders.events import order_registry

        with exit_codes():
            requests = parse_append_lines(_read_input(source).splitlines(), order_registry())
            with open_for_writing(lake_of(ctx)) as log:
                results = log.append_many(requests)
                head = log.head()
        new = [r for r in results if not r.duplicate]
        out = {
            "appended": sum(r.last_position - r.first_position + 1 for r in new),
            "first_position": min((r.first_position for r in new), default=None),
            "last_position": max((r.last_position for r in new), default=None),
            "head": head,
            "results": [r.to_json() for r in results],
        }
        if json_out:
            print_json(out)
        elif new:
            _say(
                f"appended {out['appended']} events at positions "
                f"{out['first_position']}..{out['last_position']}"
            )
        else:
            _say("nothing appended: every request repeated an earlier one")

    @app.command()
    def handle(
        ctx: typer.Context,
        command: Annotated[
            str | None, typer.Argument(help="The command as a JSON object (default: read stdin).")
        ] = None,
        file: Annotated[
            str | None,
            typer.Option("--file", "-f", help="Read the command from a file (- for stdin)."),
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Decide an Order command, e.g. '{"command": "AddItem", "order_id": ...}', and record its events."""
        from eventlog.handler import handle as run_handle
        from eventlog.orders.commands import CreateOrder, command_from_json
        from eventlog.orders.decider import ORDER_DECIDER

        with exit_codes():
            if command is not None and file is not None:
                raise InvalidInputError("give the command as an argument or with --file, not both")
            text = command if command is not None else _read_input(file)
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"the command is not valid JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise InvalidInputError(
                    f"a command must be a JSON object, got {type(obj).__name__}"
                )
            command_id = obj.pop("command_id", None)
            if command_id is not None and (not isinstance(command_id, str) or not command_id):
                raise InvalidInputError(
                    f"command_id must be a non-empty string, got {command_id!r}"
                )
            expected = obj.pop("expected_version", None)
            if expected is not None and (
                isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
            ):
                raise InvalidInputError(
                    f"expected_version must be an integer >= 0, got {expected!r}"
                )
            metadata = obj.pop("metadata", None)
            if metadata is not None and not isinstance(metadata, dict):
                raise InvalidInputError("metadata must be a JSON object")
            cmd = command_from_json(obj, now=datetime.now(UTC))
            log = open_for_writing(lake_of(ctx), create=isinstance(cmd, CreateOrder))
            try:
                result = run_handle(
                    log,
                    ORDER_DECIDER,
                    cmd.order_id,
                    cmd,
                    command_id=command_id,
                    metadata=metadata,
                    expected_version=expected,
                )
            finally:
                log.close()
        if result.duplicate:
            typer.echo(f"command id {command_id!r} was handled before; its events:", err=True)
        elif not result.events:
            typer.echo("no change: the command repeats what the order already holds", err=True)
        for event in result.events:
            if json_out:
                print_json(event.to_json())
            else:
                payload = json.dumps(event.payload, ensure_ascii=False)
                _say(
                    f"{event.position}  {event.stream_id} v{event.version}  "
                    f"{event.event_type}  {payload}"
                )

    @app.command()
    def read(
        ctx: typer.Context,
        stream: Annotated[str | None, typer.Option(help="Only this stream's events.")] = None,
        after: Annotated[int, typer.Option(help="Only events with position > N.")] = 0,
        limit: Annotated[int | None, typer.Option(help="At most N events.")] = None,
        follow: Annotated[
            bool, typer.Option(help="Keep waiting for new events (stop with Ctrl-C).")
        ] = False,
        event_type: Annotated[
            list[str] | None, typer.Option("--type", help="Only events of this type (repeatable).")
        ] = None,
        idle_timeout: Annotated[
            float | None, typer.Option(hidden=True, help="Stop following after N idle seconds.")
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Print recorded events as JSON lines (the envelope's fields; payload as an object)."""
        del json_out  # the output is JSON lines either way; --json is accepted for symmetry
        from eventlog.envelope import validate_stream_id

        with exit_codes():
            _non_negative("--after", after)
            _non_negative("--limit", limit)
            if stream is not None:
                validate_stream_id(stream)
            log = open_existing(lake_of(ctx))
            try:
                types = list(event_type) if event_type else None
                if types:
                    for t in types:
                        log.registry.spec(t)
                try:
                    if limit == 0:
                        return
                    if follow:
                        tables: Iterable[pa.Table] = (
                            _filter_types(t, types)
                            for t in log.subscribe(after=after, idle_timeout=idle_timeout)
                        )
                    elif stream is not None:  # only that stream already
                        tables = [_filter_types(log.read_stream(stream), types)]
                    else:
                        tables = log.read(after=after, event_types=types)
                    wanted = None if stream is not None and not follow else stream
                    if not _emit(tables, limit, wanted, after) and not follow:
                        note_empty_read(stream, log.stream_version(stream) if stream else None)
                except KeyboardInterrupt:
                    pass
                except BrokenPipeError:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
            finally:
                log.close()

    @app.command()
    def init(
        ctx: typer.Context,
        tail: Annotated[
            str | None,
            typer.Option(
                "--tail",
                help="Commit to PostgreSQL: postgresql://USER@HOST:PORT/DB, without a password "
                "(give it with PGPASSWORD or ~/.pgpass). Default: <lake>/tail.sqlite.",
            ),
        ] = None,
        schema: Annotated[
            str, typer.Option(help="The PostgreSQL schema that holds this lake's tail.")
        ] = "ledgerlake",
        parts: Annotated[
            str | None,
            typer.Option(
                "--parts",
                help="Keep the parts in object storage: s3://BUCKET/PREFIX (credentials from "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never stored). Default: <lake>/events.",
            ),
        ] = None,
        parts_endpoint: Annotated[
            str | None,
            typer.Option(
                "--parts-endpoint",
                help="The S3 endpoint, http(s)://HOST[:PORT] (MinIO, R2...); default "
                "AWS_ENDPOINT_URL, else AWS itself.",
            ),
        ] = None,
        parts_region: Annotated[
            str | None,
            typer.Option("--parts-region", help="The bucket's region; default AWS_REGION."),
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Create a lake and its tail; with --tail or --parts, record where in <lake>/lake.toml."""
        from eventlog.lake import init_lake

        lake = lake_of(ctx)
        with exit_codes():
            init_lake(
                lake,
                tail=tail,
                schema=schema,
                parts=parts,
                parts_endpoint=parts_endpoint,
                parts_region=parts_region,
            )
            with open_existing(lake) as log:
                where = log.tail.describe()
                parts_at = log.store.describe()
        if json_out:
            print_json({"lake": str(lake), "tail": where, "parts": parts_at})
        else:
            _say(f"lake {lake} commits to {where}; parts in {parts_at}")

    @app.command()
    def seal(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Move every event from the tail into Parquet parts."""
        with exit_codes(), open_for_writing(lake_of(ctx), create=False) as log:
            sealed = log.seal()
            head = log.head()
        if json_out:
            print_json({"sealed_head": sealed, "head": head})
        else:
            _say(f"sealed up to position {sealed} (head {head})")

    @app.command()
    def verify(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Check the log's content (hashes, every column, tiling, strays); exit 1 on a problem.

        Reads only: it reports what it finds and changes nothing (see ``repair``).
        """
        with exit_codes(), open_existing(lake_of(ctx)) as log:
            report = log.verify()
        if json_out:
            print_json(report.to_json())
        elif report.ok:
            _say(f"ok: {report.events:,} events, head {report.head}, {report.parts} parts")
        else:
            _say(f"NOT OK: {len(report.problems)} problems (head {report.head})")
            for problem in report.problems:
                _say(f"  - {problem}")
        if not json_out:
            for warning in report.warnings:
                typer.echo(f"warning: {warning}", err=True)
        if not report.ok:
            raise typer.Exit(1)

    @app.command()
    def repair(
        ctx: typer.Context,
        stray_grace: Annotated[
            float,
            typer.Option(
                help="Remove stray files (not in the catalog) only when older than N seconds."
            ),
        ] = 3600.0,
        json_out: JsonOpt = False,
    ) -> None:
        """Repair a lake: adopt its parts into the catalog, rebuild a lost tail, clean leftovers.

        Removes only what the catalog proves dead (files of replaced parts, files a dead
        writer never committed) and stray files past the grace period; adopts parts only
        after checking their content.
        """
        from eventlog.maintenance import open_for_repair, repair_lake
        from eventlog.orders.events import REGISTRY, STREAM_TYPE

        with exit_codes():
            if stray_grace < 0:
                raise InvalidInputError(f"--stray-grace must be >= 0 seconds, got {stray_grace}")
            log = open_for_repair(lake_of(ctx), registry=REGISTRY, stream_type=STREAM_TYPE)
            try:
                report = repair_lake(log, stray_grace=timedelta(seconds=stray_grace))
            finally:
                log.close()
        if json_out:
            print_json(report.to_json())
            return
        for name in report.adopted:
            _say(f"adopted {name}")
        for line in report.removed:
            _say(f"removed {line}")
        for line in report.kept:
            _say(f"kept {line}")
        if not (report.adopted or report.removed or report.kept):
            _say("nothing to repair")

    @app.command()
    def compact(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Merge each date partition's parts into one part (never changes an event)."""
        with exit_codes(), open_for_writing(lake_of(ctx), create=False) as log:
            made = log.compact()
            parts = len(log.live_parts())
        if json_out:
            print_json({"merged_into": [str(p) for p in made], "parts": parts})
        else:
            _say(f"compacted into {len(made)} new parts; {parts} live parts")

    @app.command()
    def info(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """Heads, parts, partitions, bytes and streams of the lake."""
        with exit_codes(), open_existing(lake_of(ctx)) as log:
            data = log.info().to_json()
        data["bytes"] = data["part_bytes"] + data["tail_bytes"]
        if json_out:
            print_json(data)
        else:
            _print_mapping(f"lake {lake_of(ctx)}", data)
