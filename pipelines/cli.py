"""The ``ledgerlake`` command line: one Typer app, commands grouped by area in cli_*.py.

Exit codes (docs/cli.md): 0 done, 1 integrity problem, 2 bad input or usage (message on
stderr, nothing written), 3 concurrency conflict, 4 business rule rejected, 5 storage
refused (disk full, read-only filesystem).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines import cli_dagster, cli_erasure, cli_log, cli_search, cli_serve, cli_warehouse
from pipelines.cli_common import LakeContext

app = typer.Typer(
    name="ledgerlake",
    help="LedgerLake: an analytics and AI data platform built on an event log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    lake: Annotated[
        Path | None,
        typer.Option(
            "--lake",
            help="Lake directory (default: $LEDGERLAKE_HOME, else ./lake).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Select the lake every command works on."""
    env_home = os.environ.get("LEDGERLAKE_HOME")
    ctx.obj = LakeContext(lake or Path(env_home or "lake"))


for _module in (cli_log, cli_warehouse, cli_search, cli_dagster, cli_serve, cli_erasure):
    _module.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
