"""Commands of the `ledgerlake` CLI for Dagster: ``ui`` (dagster dev) and ``demo`` (the main job)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli_common import fail, lake_of, run_guarded

DEMO_ORDERS = 400
DEMO_DAYS = 45
EMBEDDER_HELP = "Embedder: 'sentence-transformers' (real model, default) or 'hashing' (fast)."


def ui_command(port: int) -> list[str]:
    """The `dagster dev` command line for these definitions (bound to 127.0.0.1)."""
    return [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "pipelines.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]


def ui_environment(lake: Path, home: Path, embedder: str, base: dict[str, str]) -> dict[str, str]:
    """The child's environment: DAGSTER_HOME in the lake, the lake and embedder for resources."""
    env = dict(base)
    env["DAGSTER_HOME"] = str(home)
    env["LEDGERLAKE_HOME"] = str(lake)
    env["LEDGERLAKE_EMBEDDER"] = embedder
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("LANCE_LOG", "error")
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return env


def stoppable_by_signals() -> None:
    """Let SIGINT and SIGTERM stop the ``dagster dev`` this process is about to become.

    A script that starts a job in the background (``ledgerlake ui &``) makes it ignore
    SIGINT, and an ignored signal stays ignored across exec. Python then installs no
    KeyboardInterrupt handler, and dagster dev, which gives SIGTERM the SIGINT handler,
    would ignore both and run on. With SIGINT back to its default, the new interpreter
    raises KeyboardInterrupt on SIGINT and dagster dev on SIGTERM too, and shuts its
    webserver and daemon down.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("ui")
    def ui(
        ctx: typer.Context,
        port: Annotated[int, typer.Option("--port", help="Port of the web UI.")] = 3000,
        embedder: Annotated[str, typer.Option("--embedder", help=EMBEDDER_HELP)] = (
            "sentence-transformers"
        ),
    ) -> None:
        """Open the Dagster UI for this lake (dagster dev on 127.0.0.1; Ctrl-C or SIGTERM stops it)."""
        from pipelines.instance import dagster_home
        from pipelines.resources import EMBEDDER_KINDS

        if not 1 <= port <= 65535:
            fail(f"--port must be between 1 and 65535, got {port}")
        if embedder not in EMBEDDER_KINDS:
            fail(f"--embedder must be one of {', '.join(EMBEDDER_KINDS)}, got {embedder!r}")
        lake = lake_of(ctx).resolve()
        from eventlog.orders.log import open_order_log

        run_guarded(lambda: open_order_log(lake, read_only=True).close())
        home = dagster_home(lake)
        typer.echo(f"Dagster UI for lake {lake} on http://127.0.0.1:{port} (Ctrl-C stops it)")
        sys.stdout.flush()
        env = ui_environment(lake, home, embedder, dict(os.environ))
        stoppable_by_signals()
        # exec: `ledgerlake ui` becomes `dagster dev`, which stops its children on SIGINT/SIGTERM.
        os.execve(sys.executable, ui_command(port), env)

    @app.command("demo")
    def demo(
        ctx: typer.Context,
        orders: Annotated[int, typer.Option("--orders", help="Orders to generate.")] = DEMO_ORDERS,
        days: Annotated[int, typer.Option("--days", help="Days of order history.")] = DEMO_DAYS,
        seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 7,
        embedder: Annotated[str, typer.Option("--embedder", help=EMBEDDER_HELP)] = (
            "sentence-transformers"
        ),
    ) -> None:
        """The main job: generate a lake, materialize every asset through Dagster, print a tour."""
        from pipelines.demo import run_demo
        from pipelines.resources import EMBEDDER_KINDS

        if orders < 1 or days < 1:
            fail(f"--orders and --days must be at least 1, got {orders} and {days}")
        if embedder not in EMBEDDER_KINDS:
            fail(f"--embedder must be one of {', '.join(EMBEDDER_KINDS)}, got {embedder!r}")
        lake = lake_of(ctx).resolve()
        result = run_guarded(
            lambda: run_demo(lake, orders=orders, days=days, seed=seed, embedder=embedder)
        )
        if not result.ok:
            raise typer.Exit(1)
