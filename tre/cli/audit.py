"""The audit commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the audit commands to the CLI."""
    del app  # filled by the audit work
