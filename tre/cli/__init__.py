"""The `tre` command-line tool.

Each module in this package adds its commands with `register(app)`; `--help` works on every
command and group.
"""

from __future__ import annotations

import importlib

import typer

from tre import __version__

# Modules whose `register(app)` adds commands; each owns one area of the CLI.
COMMAND_MODULES = (
    "tre.cli.synth",
    "tre.cli.data",
    "tre.cli.governance",
    "tre.cli.audit",
    "tre.cli.serve",
    "tre.cli.outputs",
    "tre.cli.demo",
)

app = typer.Typer(
    name="tre",
    help=(
        "tre: a Trusted Research Environment. Custodians ingest pseudonymised data, "
        "researchers ask aggregate questions under differential privacy or disclosure "
        "control, output checkers release results."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tre {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print tre's version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """tre: a Trusted Research Environment."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point of the `tre` console script; user errors exit 2 with a readable message."""
    from tre.cli._errors import run

    run(app)
