"""The `pydb` command line: parse options, call one library function, print the result."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import click

from pydb.cli_branch import branch
from pydb.cli_migrate import drift, lint
from pydb.cli_seed import seed
from pydb.errors import PydbError
from pydb.urls import mask_password


class _Group(click.Group):
    """Turns a PydbError into one line on stderr and exit status 1 (the traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as err:
            if ctx.params.get("debug") or os.environ.get("PYDB_DEBUG"):
                raise
            if isinstance(err, PydbError):
                _fail(str(err))
            if _is_database_error(err):
                _fail(f"database error: {_first_line(err)}")
            raise


def _is_database_error(err: BaseException) -> bool:
    module = type(err).__module__
    return module.startswith(("psycopg", "sqlalchemy.exc"))


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {mask_password(message)}", err=True)
    sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.version_option(package_name="pydb")
def cli(debug: bool) -> None:
    """pydb: schema-as-code for PostgreSQL and Neon.

    The schema lives in schema.hcl and is applied with Atlas (`atlas schema apply --env local`);
    pydb runs the local database, loads seed data, makes branches and gives Python access.
    """


# -- pydb dev ----------------------------------------------------------------------------------


@cli.group()
def dev() -> None:
    """The local PostgreSQL server of this repository (data in .pydb/, no Docker, no root needed)."""


@dev.command("up")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def dev_up(quiet: bool) -> None:
    """Start the local database (idempotent); creates the app and Atlas dev databases.

    Example: pydb dev up
    """
    from pydb.local import LocalServer

    result = LocalServer().up()
    if quiet:
        return
    words = {"started": "started", "running": "already running", "recovered": "recovered after a crash; started"}
    click.echo(f"local database {words[result.action]}: {mask_password(result.url)}")
    if result.created:
        click.echo(f"created databases: {', '.join(result.created)}")


@dev.command("down")
def dev_down() -> None:
    """Stop the local database (data is kept in .pydb/).

    Example: pydb dev down
    """
    from pydb.local import LocalServer

    stopped = LocalServer().down()
    click.echo("local database stopped" if stopped else "local database was not running")


@dev.command("url")
@click.option("--dev", "dev_db", is_flag=True, help="Print the Atlas dev database's URL instead.")
@click.option("--json", "as_json", is_flag=True, help="Print both URLs (and their Atlas forms) as JSON.")
def dev_url(dev_db: bool, as_json: bool) -> None:
    """Print the local database's URL, starting the server if needed.

    Example: psql "$(pydb dev url)"
    """
    from pydb.local import LocalServer
    from pydb.urls import to_atlas

    result = LocalServer().up()
    if as_json:
        click.echo(json.dumps({
            "url": result.url, "dev_url": result.dev_url,
            "atlas_url": to_atlas(result.url), "atlas_dev_url": to_atlas(result.dev_url),
        }))
    else:
        click.echo(result.dev_url if dev_db else result.url)


@dev.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def dev_status(as_json: bool) -> None:
    """Say whether the local database runs, where, which PostgreSQL, and its tables with row counts.

    Example: pydb dev status
    """
    from pydb.local import LocalServer

    status = LocalServer().status()
    if as_json:
        click.echo(json.dumps({
            "running": status.running, "state_dir": str(status.state_dir), "port": status.port,
            "pid": status.pid, "postgres": status.version,
            "url": status.url and mask_password(status.url), "tables": status.tables,
        }))
        return
    click.echo(f"local database: {'running' if status.running else 'stopped'}")
    click.echo(f"  data:       {status.state_dir}")
    click.echo(f"  postgresql: {status.version}")
    if status.url:
        click.echo(f"  url:        {mask_password(status.url)}")
    if status.pid:
        click.echo(f"  pid:        {status.pid}")
    if status.running:
        if status.tables:
            click.echo("  tables:")
            width = max(len(name) for name in status.tables)
            for name, count in status.tables.items():
                click.echo(f"    {name.ljust(width)}  {count} rows")
        else:
            click.echo("  tables:     none yet (run: atlas schema apply --env local)")
    elif not status.url:
        click.echo("  start it with: pydb dev up")


# -- pydb describe ----------------------------------------------------------------------------


@cli.command("describe")
@click.option("--url", help="Database URL (default: DATABASE_URL, else the local database).")
def describe_cmd(url: str | None) -> None:
    """Show the tables, columns, indexes, foreign keys and enums a database holds now.

    Example: pydb describe
    """
    from pydb.connection import resolve_url
    from pydb.describe import describe, format_schema

    click.echo(format_schema(describe(resolve_url(url))))


@cli.command("find")
@click.argument("table")
@click.option("--where", multiple=True, metavar="COLUMN=VALUE", help="Keep rows whose column equals the value.")
@click.option("--with", "relations", multiple=True, metavar="RELATION", help="Load a relation too (repeatable).")
@click.option("--limit", type=int, default=1, show_default=True, help="How many rows to show.")
@click.option("--url", help="Database URL (default: DATABASE_URL, else the local database).")
def find_cmd(table: str, where: tuple[str, ...], relations: tuple[str, ...], limit: int, url: str | None) -> None:
    """Show rows of TABLE with their related rows, loaded in one query, as a tree.

    Example: pydb find users --where email=admin@example.com --with projects --with ai_usage_log
    """
    from pydb.database import connect
    from pydb.query import where_equal

    pairs = {}
    for item in where:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not COLUMN=VALUE", param_hint="--where")
        pairs[name] = value
    db = connect(url)
    try:
        query = getattr(db.query, table)
        rows = query.find_many(
            where=where_equal(query.table, pairs), limit=limit, with_={name: True for name in relations}
        )
    finally:
        db.dispose()
    if not rows:
        click.echo(f"no row of {table} matches")
    for row in rows:
        click.echo(table)
        click.echo(_tree(row, "  "))


def _tree(row: dict[str, Any], indent: str) -> str:
    lines = []
    width = max((len(k) for k, v in row.items() if not isinstance(v, dict | list)), default=0)
    for key, value in row.items():
        if isinstance(value, list):
            lines.append(f"{indent}{key} ({len(value)})")
            for item in value:
                sub = _tree(item, indent + "    ").splitlines()
                lines.append(f"{indent}  - " + sub[0].lstrip() if sub else f"{indent}  - {{}}")
                lines.extend(sub[1:])
        elif isinstance(value, dict):
            lines.append(f"{indent}{key}")
            lines.append(_tree(value, indent + "  "))
        else:
            lines.append(f"{indent}{key.ljust(width)}  {value}")
    return "\n".join(lines)


cli.add_command(seed)
cli.add_command(branch)
cli.add_command(lint)
cli.add_command(drift)


def main() -> None:
    """Entry point of the `pydb` console script."""
    cli(prog_name="pydb")
