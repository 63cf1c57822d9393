"""The governance commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the governance commands to the CLI."""
    del app  # filled by the governance work
