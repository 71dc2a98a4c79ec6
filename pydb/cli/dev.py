"""`pydb dev up|down|url|status`: the local PostgreSQL server of the repository."""

from __future__ import annotations

import json

import click

from pydb.cli.options import json_option, pass_settings
from pydb.config import Settings
from pydb.urls import mask_password


@click.group()
def dev() -> None:
    """The local PostgreSQL server of this repository (data in .pydb/, no Docker, no root needed).

    Example: pydb dev up
    """


@dev.command("up")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@pass_settings
def dev_up(settings: Settings, quiet: bool) -> None:
    """Start the local database (idempotent); creates the app and Atlas dev databases.

    Example: pydb dev up
    """
    from pydb.local import LocalServer

    result = LocalServer(settings.state).up()
    if quiet:
        return
    words = {"started": "started", "running": "already running", "recovered": "recovered after a crash; started"}
    click.echo(f"local database {words[result.action]}: {mask_password(result.url)}")
    if result.created:
        click.echo(f"created databases: {', '.join(result.created)}")
    if result.port_note:
        click.echo(result.port_note)


@dev.command("down")
@pass_settings
def dev_down(settings: Settings) -> None:
    """Stop the local database (data is kept in .pydb/).

    Example: pydb dev down
    """
    from pydb.local import LocalServer

    stopped = LocalServer(settings.state).down()
    click.echo("local database stopped" if stopped else "local database was not running")


@dev.command("url")
@click.option("--dev", "dev_db", is_flag=True, help="Print the Atlas dev database's URL instead.")
@json_option("both URLs (and their Atlas forms)")
@pass_settings
def dev_url(settings: Settings, dev_db: bool, as_json: bool) -> None:
    """Print the local database's URL, starting the server if needed.

    Example: psql "$(pydb dev url)"
    """
    from pydb.local import LocalServer
    from pydb.urls import to_atlas

    result = LocalServer(settings.state).up()
    if as_json:
        click.echo(json.dumps({
            "url": result.url, "dev_url": result.dev_url,
            "atlas_url": to_atlas(result.url), "atlas_dev_url": to_atlas(result.dev_url),
        }))
    else:
        click.echo(result.dev_url if dev_db else result.url)


@dev.command("status")
@json_option("the status")
@pass_settings
def dev_status(settings: Settings, as_json: bool) -> None:
    """Say whether the local database runs, where, which PostgreSQL, and its tables with row counts.

    Example: pydb dev status
    """
    from pydb.local import LocalServer

    status = LocalServer(settings.state).status()
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


COMMANDS = [dev]
