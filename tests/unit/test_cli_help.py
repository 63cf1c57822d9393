"""Every command and group of the `tre` CLI has helpful --help text."""

from __future__ import annotations

import click
import typer
from typer.testing import CliRunner

from tre.cli import app


def _all_commands(group: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if isinstance(group, click.Group):
        for name, cmd in group.commands.items():
            paths += _all_commands(cmd, (*prefix, name))
    return paths


def test_every_command_has_help_text() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    for path in _all_commands(root):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        cmd = root
        for part in path:
            assert isinstance(cmd, click.Group)
            cmd = cmd.commands[part]
        assert (cmd.help or "").strip(), f"`tre {' '.join(path)}` has no help text"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("tre ")
