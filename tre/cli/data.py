"""Custodian commands: synthetic extracts, keys, ingest and the catalogue."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the data commands to the CLI."""
    del app  # filled by the ingest/catalog work
