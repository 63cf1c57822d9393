"""Turn tre's errors into readable CLI messages and exit codes."""

from __future__ import annotations

import logging
import sys

import typer

from tre.errors import InternalError, UserError

log = logging.getLogger("tre.cli")


def run(app: typer.Typer) -> None:
    """Run the Typer app; a UserError prints its message and hint and exits 2."""
    try:
        app(standalone_mode=True)
    except UserError as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            typer.echo(f"hint: {exc.hint}", err=True)
        sys.exit(2)
    except InternalError as exc:
        log.error("internal error %s: %s", exc.error_id, exc.detail)
        typer.secho(str(exc), fg="red", err=True)
        sys.exit(3)
