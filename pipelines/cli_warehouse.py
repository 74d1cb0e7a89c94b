"""The warehouse commands of ``ledgerlake``: project, state, sql, lag (see docs/projections.md).

``state`` and ``sql`` open the warehouse read-only; ``sql`` also refuses any statement
that is not a query (an EXPLAIN's inner statement included), and runs in a sandbox:
DuckDB's external access is switched off and the setting locked, so no statement can
read or write a file outside the warehouse.
"""

from __future__ import annotations

import csv
import re
import sys
from datetime import UTC, date, datetime
from typing import Annotated, Any

import duckdb
import typer

from eventlog.envelope import validate_stream_id
from eventlog.errors import InvalidInputError
from eventlog.orders.log import open_order_log
from pipelines.cli_common import exit_codes, fail, lake_of, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

READ_STATEMENTS = {"SELECT", "EXPLAIN"}
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
ORDER_EXISTS = "SELECT count(*) FROM analytics.order_events WHERE order_id = $order_id"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+", re.IGNORECASE)


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse anything but queries (SELECT, WITH, FROM-first, EXPLAIN of a query): exit 2."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidInputError(f"cannot parse the query: {exc}") from None
    if not statements:
        raise InvalidInputError("the query is empty")
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise InvalidInputError(
                f"'sql' is read-only: a {kind} statement is refused; "
                "only queries (SELECT, WITH, FROM, EXPLAIN) are allowed"
            )
        if kind == "EXPLAIN":  # EXPLAIN ANALYZE runs what it explains: check that too
            inner = EXPLAIN_PREFIX.sub("", statement.query, count=1)
            if inner == statement.query:
                raise InvalidInputError(f"cannot read the EXPLAIN statement {inner[:60]!r}")
            check_read_only(con, inner)


def sandbox(con: duckdb.DuckDBPyConnection) -> None:
    """No file outside the warehouse can be read or written through this connection."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def register(app: typer.Typer) -> None:
    """Add the warehouse commands to the app."""

    @app.command()
    def project(
        ctx: typer.Context,
        rebuild: Annotated[
            bool, typer.Option("--rebuild", help="Rebuild blue-green instead of catching up.")
        ] = False,
        only: Annotated[
            list[str] | None,
            typer.Option("--only", help="Only this projection (and what it needs); repeatable."),
        ] = None,
        batch_size: Annotated[
            int, typer.Option(help="Events per catch-up transaction.")
        ] = 1_000_000,
        json_out: JsonOpt = False,
    ) -> None:
        """Catch up every projection of the warehouse with the log (or rebuild them)."""
        from projections import runner

        with exit_codes():
            names = list(only) if only else None
            runner.select(names)
            with open_order_log(lake_of(ctx), read_only=True) as log:
                run = runner.rebuild if rebuild else runner.catch_up
                reports = run(log, None, names, batch_size=batch_size)
        if json_out:
            print_json([r.to_json() for r in reports])
            return
        for r in reports:
            verb = "rebuilt" if r.rebuilt else "caught up"
            typer.echo(
                f"{r.name:<13} {verb} {r.from_position} -> {r.to_position} "
                f"({r.events_applied:,} events, {r.rows:,} rows, {r.duration_s:.2f}s, "
                f"lag {r.lag_events})"
            )

    @app.command()
    def state(
        ctx: typer.Context,
        order_id: Annotated[str, typer.Argument(help="The order id.")],
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="Valid time T (ISO 8601 with offset).")
        ] = None,
        known_at: Annotated[
            str | None,
            typer.Option("--known-at", help="Transaction time K (ISO 8601 with offset)."),
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """An order's state as of a time, optionally as it was known at another time."""
        from projections.temporal import as_time, state_as_of
        from projections.warehouse import connect

        with exit_codes():
            validate_stream_id(order_id)
            at = as_time(as_of, "--as-of") if as_of is not None else END_OF_TIME
            known = as_time(known_at, "--known-at") if known_at is not None else None
            con = connect(lake_of(ctx), read_only=True)
            try:
                found = con.execute(ORDER_EXISTS, {"order_id": order_id}).fetchone()
                if not found or not found[0]:
                    raise InvalidInputError(
                        f"unknown order {order_id!r}: no event of it in the warehouse "
                        "(run 'ledgerlake project' if it was just written)"
                    )
                result = state_as_of(con, order_id, at, known)
            finally:
                con.close()
        if result is None:  # a valid answer, not an error: it did not exist then
            if json_out:
                print_json(None)
            else:
                when = f"as of {as_of}" + (f" as known at {known_at}" if known_at else "")
                typer.echo(f"order {order_id!r} did not exist {when}")
            return
        if json_out:
            print_json(result)
            return
        for key, value in result.items():
            typer.echo(f"{key:<18} {value}")

    @app.command()
    def sql(
        ctx: typer.Context,
        query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
        json_out: JsonOpt = False,
        csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    ) -> None:
        """Run a read-only SQL query on the warehouse (writes are refused, exit 2)."""
        from projections.warehouse import connect

        if json_out and csv_out:
            fail("choose one of --json and --csv", 2)
        with exit_codes():
            con = connect(lake_of(ctx), read_only=True)
            try:
                sandbox(con)
                check_read_only(con, query)
                try:
                    cur = con.execute(query)
                    names = [d[0] for d in cur.description or []]
                    rows = cur.fetchall()
                except duckdb.Error as exc:
                    raise InvalidInputError(f"query failed: {exc}") from None
            finally:
                con.close()
        if json_out:
            print_json([{n: _plain(v) for n, v in zip(names, r, strict=True)} for r in rows])
        elif csv_out:
            writer = csv.writer(sys.stdout)
            writer.writerow(names)
            writer.writerows([[_plain(v) for v in r] for r in rows])
        else:
            typer.echo("\t".join(names))
            for r in rows:
                typer.echo("\t".join("" if v is None else str(_plain(v)) for v in r))

    @app.command()
    def lag(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """How far each projection is behind the log, in events and seconds; stale ones."""
        from projections import runner

        with exit_codes(), open_order_log(lake_of(ctx), read_only=True) as log:
            lags = runner.lag(log)
        if json_out:
            print_json([x.to_json() for x in lags])
            return
        for x in lags:
            stale = " STALE (code changed; 'ledgerlake project' rebuilds it)" if x.stale else ""
            typer.echo(
                f"{x.name:<13} at {x.position:>10} of {x.head:<10} "
                f"lag {x.lag_events} events, {x.lag_seconds:.1f}s{stale}"
            )
