"""`pydb generate`: the typed module of schema.hcl, written or checked."""

from __future__ import annotations

from pathlib import Path

import click

from pydb.cli.options import pass_settings
from pydb.config import Settings


@click.command("generate")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 with a diff when the module is out of date with schema.hcl.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the module there instead of pydb/schema.py.")
@pass_settings
def generate_cmd(settings: Settings, check: bool, output: Path | None) -> None:
    """Write pydb/schema.py, the types of schema.hcl: rows, inserts, updates, typed tables and queries.

    schema.hcl is applied by Atlas to a scratch copy of the local dev database and read back, so the
    types are those of the tables PostgreSQL made. `from pydb import db, users` is typed by it.

    Example: pydb generate --check
    """
    from pydb.types import generate

    click.echo(generate(settings, output=output, check=check).summary(settings.root))


COMMANDS = [generate_cmd]
