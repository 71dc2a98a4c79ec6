"""What the command modules share: the settings of the run, and the --url option."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pydb.config import Settings

__all__ = ["json_option", "pass_settings", "url_option"]

F = TypeVar("F", bound=Callable[..., Any])

pass_settings = click.make_pass_decorator(Settings)
"""Hand a command the Settings the `pydb` group read (flags applied)."""


def url_option(command: F) -> F:
    """The --url option: which database a command works on."""
    return click.option("--url", help="Database URL (default: DATABASE_URL, else the local database).")(command)


def json_option(what: str) -> Callable[[F], F]:
    """The --json flag (parameter as_json): print what the command reports as JSON, for machines."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")
