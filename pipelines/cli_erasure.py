"""The erasure commands of ``ledgerlake``: forget a customer, erase what was derived (docs/erasure.md).

``forget`` destroys the customer's key and records ``CustomerErased`` in the log: from
then on every read path shows ``[erased]`` in place of their personal fields. ``erase
--apply`` carries every pending erasure into the warehouse, the vectors, the training
exports and the tail's free pages, and writes a receipt.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli_common import exit_codes, lake_of, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    """Add the erasure commands to the app."""

    @app.command()
    def forget(
        ctx: typer.Context,
        customer_id: Annotated[str, typer.Argument(help="The customer to forget.")],
        json_out: JsonOpt = False,
    ) -> None:
        """Forget a customer: destroy their key and record the erasure in the log."""
        from eventlog.orders.log import forget_customer, open_order_log  # lazy: start-up

        with exit_codes(), open_order_log(lake_of(ctx), create=False, seal_on_close=False) as log:
            result = forget_customer(log, customer_id)
        if json_out:
            print_json(
                {
                    "customer_id": result.subject,
                    "key_id": result.key_id,
                    "already_forgotten": result.already,
                    "position": result.position,
                }
            )
        elif result.already:
            typer.echo(f"customer {customer_id} was already forgotten; nothing changed")
        else:
            typer.echo(
                f"forgot customer {customer_id}: key {result.key_id} destroyed, erasure "
                f"recorded at position {result.position}; run 'ledgerlake erase --apply' "
                "to erase the derived copies"
            )

    @app.command()
    def erase(
        ctx: typer.Context,
        apply: Annotated[
            bool, typer.Option("--apply", help="Apply the pending erasures (default: list them).")
        ] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Erase forgotten customers from the warehouse, vectors, exports and free pages."""
        from eventlog.orders.log import open_order_log
        from projections import erasure

        lake = lake_of(ctx)
        options = {"create": False, "seal_on_close": False} if apply else {"read_only": True}
        with exit_codes(), open_order_log(lake, **options) as log:
            todo = erasure.pending(log, lake)
            receipt = erasure.apply_erasures(log, lake) if apply and todo else None
        if json_out:
            print_json(
                receipt
                if receipt is not None
                else {"pending": [e.customer_id for e in todo], "applied": False}
            )
            return
        if not todo:
            typer.echo("no erasure pending")
        elif receipt is None:
            names = ", ".join(e.customer_id for e in todo)
            typer.echo(f"{len(todo)} erasure(s) pending: {names}; run with --apply")
        else:
            typer.echo(
                f"erased {len(todo)} customer(s) from the derived copies in "
                f"{receipt['seconds']['total']:.2f}s; receipt {receipt['receipt']}"
            )
