"""The warehouse commands of ``ledgerlake``: project, state, sql, lag (see docs/projections.md).

``state`` and ``sql`` open the warehouse read-only; ``sql`` also refuses any statement
that is not a query (an EXPLAIN's inner statement included), and runs in a sandbox:
DuckDB's external access is switched off and the setting locked, so no statement can
read or write a file outside the warehouse.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from eventlog.errors import InvalidInputError
from pipelines.cli_common import exit_codes, lake_of, print_json
from pipelines.cli_output import output_format, print_rows
from pipelines.cli_time import cli_time, optional_time

if TYPE_CHECKING:
    import duckdb

# DuckDB, the log and the projections are imported by the commands that use them: every
# ``ledgerlake`` call imports this module (docs/cli.md, "Start-up").

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

READ_STATEMENTS = {"SELECT", "EXPLAIN"}
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
ORDER_EXISTS = "SELECT count(*) FROM analytics.order_events WHERE order_id = $order_id"


EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+", re.IGNORECASE)


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse anything but queries (SELECT, WITH, FROM-first, EXPLAIN of a query): exit 2."""
    import duckdb

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
    """No file outside the warehouse can be read or written through this connection.

    The warehouse's pinned parts (``analytics.order_events`` reads them) stay readable;
    the log's files and everything else do not.
    """
    from projections.order_events import sql_literal
    from projections.warehouse import parts_root

    pinned = parts_root(con)
    if pinned is not None:
        folder = sql_literal(f"{pinned}/")
        con.execute(f"SET allowed_directories = [{folder}]")
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
        from eventlog.orders.log import reading
        from projections import plan, runner

        with exit_codes():
            names = list(only) if only else None
            plan.select(names)
            with reading(lake_of(ctx)) as log:
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
            str | None,
            typer.Option(
                "--as-of", help="Valid time T (ISO 8601 with offset, or a date: its start in UTC)."
            ),
        ] = None,
        known_at: Annotated[
            str | None,
            typer.Option(
                "--known-at", help="Transaction time K (ISO 8601 with offset, or a date)."
            ),
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """An order's state as of a time, optionally as it was known at another time."""
        from eventlog.validate import validate_stream_id
        from pipelines.cli_state import print_state, validity_window, window_json
        from projections.temporal import state_as_of
        from projections.warehouse import connect

        with exit_codes():
            validate_stream_id(order_id)
            at = cli_time(as_of, "--as-of") if as_of is not None else END_OF_TIME
            known = optional_time(known_at, "--known-at")
            con = connect(lake_of(ctx), read_only=True)
            try:
                found = con.execute(ORDER_EXISTS, {"order_id": order_id}).fetchone()
                if not found or not found[0]:
                    raise InvalidInputError(
                        f"unknown order {order_id!r}: no event of it in the warehouse "
                        "(run 'ledgerlake project' if it was just written)"
                    )
                result = state_as_of(con, order_id, at, known)
                window = validity_window(con, order_id, at, known or END_OF_TIME)
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
            print_json(result | window_json(window))
            return
        print_state(result, window)

    @app.command()
    def sql(
        ctx: typer.Context,
        query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
        json_out: JsonOpt = False,
        csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
        tsv_out: Annotated[
            bool,
            typer.Option("--tsv", help="Print TSV (the default when stdout is not a terminal)."),
        ] = False,
    ) -> None:
        """Run a read-only SQL query on the warehouse (writes are refused, exit 2).

        In a terminal the rows print as an aligned table; piped, as TSV.
        """
        import duckdb

        from projections.warehouse import connect

        with exit_codes():
            fmt = output_format(json_out=json_out, csv_out=csv_out, tsv_out=tsv_out)
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
        print_rows(names, rows, fmt)

    @app.command()
    def lag(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        """How far each warehouse table, vector store and the training set is behind the log."""
        from eventlog.orders.log import reading
        from pipelines.cli_lag import everything_behind, print_behind

        lake = lake_of(ctx)
        with exit_codes(), reading(lake) as log:
            rows = everything_behind(lake, log)
        if json_out:
            print_json([x.to_json() for x in rows])
            return
        print_behind(rows)
