"""``ledgerlake serve``: the HTTP API and the search page over one lake (docs/serve.md).

Binds 127.0.0.1 by default. Binding any other address needs a token (``--token`` or
$LEDGERLAKE_TOKEN), which every request must then carry; without one it exits 2.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipelines.cli_common import exit_codes, lake_of


def register(app: typer.Typer) -> None:
    """Add the serve command to the app."""

    @app.command()
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
        token: Annotated[
            str | None,
            typer.Option(
                help="Bearer token every request must carry (default: $LEDGERLAKE_TOKEN); "
                "required to bind beyond loopback.",
                show_default=False,
            ),
        ] = None,
        max_body: Annotated[
            int, typer.Option(help="Largest request body accepted, in bytes.")
        ] = 1_048_576,
    ) -> None:
        """Serve the JSON API (commands, events, states, search) and the search page."""
        from pipelines.serve_app import ServeSettings, check_bind, create_app

        with exit_codes():
            chosen = token or os.environ.get("LEDGERLAKE_TOKEN") or None
            check_bind(host, chosen)
            if not 1 <= port <= 65_535:
                raise ValueError(f"--port must be between 1 and 65535, got {port}")
            if max_body < 1_024:
                raise ValueError(f"--max-body must be at least 1024 bytes, got {max_body}")
            settings = ServeSettings(lake_of(ctx), token=chosen, max_body_bytes=max_body)
            application = create_app(settings)
        import uvicorn

        where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        typer.echo(
            f"serving {settings.lake} on {where} (API under /api, OpenAPI at /docs)", err=True
        )
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
