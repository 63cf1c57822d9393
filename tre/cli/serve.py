"""The API server command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the serve command to the CLI."""
    del app  # filled by the api work
