"""The output-request commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the output-request commands to the CLI."""
    del app  # filled by the outputs work
