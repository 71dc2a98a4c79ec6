"""Every command explains itself: help with an example, and a mention in the README."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from pydb.cli import cli
from tests.helpers import REPO, run_pydb


def _commands(group: click.Group, prefix: str = "pydb") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = list(_commands(cli))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_has_help_with_an_example_and_is_in_the_readme(path: str, command: click.Command) -> None:
    assert command.help and "Example:" in command.help, f"{path} --help has no example"
    assert path in (REPO / "README.md").read_text(), f"{path} is not in the README"


def test_help_runs() -> None:
    result = run_pydb("--help")
    assert result.returncode == 0
    assert "schema-as-code for PostgreSQL and Neon" in result.stdout
    assert "dev" in result.stdout


def test_a_usage_error_is_clicks_exit_2() -> None:
    result = run_pydb("dev", "frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr
