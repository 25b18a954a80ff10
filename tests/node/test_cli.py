"""The console script: every command has help, and --version works."""

from __future__ import annotations

import click
from click.testing import CliRunner

from node.cli import main


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, (*prefix, name))


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("liquide, version ")


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for path, cmd in [((), main), *_all_commands(main)]:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        assert cmd.help, f"command {' '.join(path)} has no help text"
