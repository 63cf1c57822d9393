"""The demo commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the demo commands to the CLI."""
    del app  # filled by the demo work
