"""Commands of the `ledgerlake` CLI for this area (see pipelines/cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
