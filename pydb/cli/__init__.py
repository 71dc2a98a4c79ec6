"""The `pydb` command line: each command parses its options, calls one library function, prints its report.

This is the only place that turns a PydbError into output and an exit status: one message on
stderr and exit 1 (the traceback with --debug or PYDB_DEBUG=1). Usage errors stay Click's (exit 2).
"""

from __future__ import annotations

from typing import Any

import click

from pydb.cli import branch, dev, explore, migrate, seed, studio
from pydb.config import Settings, load_settings
from pydb.errors import PydbError
from pydb.urls import mask_password

__all__ = ["cli", "main"]


class _Group(click.Group):
    """The one catch site of pydb's errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PydbError as err:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            if ctx.params.get("debug") or (settings is not None and settings.debug):
                raise
            click.echo(mask_password(err.report()), err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.version_option(package_name="pydb")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """pydb: schema-as-code for PostgreSQL and Neon.

    The schema lives in schema.hcl and is applied with Atlas (`atlas schema apply --env local`);
    pydb runs the local database, loads seed data, makes branches and gives Python access.

    Example: pydb dev up
    """
    settings = load_settings()
    ctx.obj = settings.replace(debug=True) if debug else settings


for _module in (dev, seed, branch, migrate, explore, studio):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Entry point of the `pydb` console script."""
    cli(prog_name="pydb")
