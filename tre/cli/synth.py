"""The synth commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the synth commands to the CLI."""
    del app  # filled by the synth work
