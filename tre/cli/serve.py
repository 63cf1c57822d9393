"""The API server command: `tre serve` runs uvicorn on `tre.api.create_app`."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="Server processes."),
    migrate: bool = typer.Option(
        True, "--migrate/--no-migrate", help="Upgrade the control-plane schema first."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level (warning for less noise)."),
) -> None:
    """Serve the tre API (OpenAPI docs at /docs) with settings from TRE_* variables."""
    import uvicorn

    from tre.config import load_settings
    from tre.db import Database

    if migrate:
        # Once, here, before any worker starts: workers never run migrations concurrently.
        db = Database.from_settings(load_settings())
        try:
            db.upgrade()
        finally:
            db.dispose()
    uvicorn.run(
        "tre.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    """Add the serve command to the CLI."""
    app.command("serve")(serve)
