"""`pydb studio`: browse and edit the data in a local web page (the work is done by pydb.studio)."""

from __future__ import annotations

import webbrowser

import click

from pydb.cli.options import pass_settings, url_option
from pydb.config import Settings


@click.command("studio")
@url_option
@click.option("--port", type=click.IntRange(0, 65535), help="Port on 127.0.0.1 (default 4980; 0: any free port).")
@click.option("--no-browser", is_flag=True, help="Print the address only; do not open a browser.")
@click.option("--allow-writes", is_flag=True,
              help="Allow changes to a production database (PYDB_ENV=production, or a Neon default branch).")
@click.option("--read-only", is_flag=True, help="Refuse every change, whatever the database.")
@pass_settings
def studio(settings: Settings, url: str | None, port: int | None, no_browser: bool, allow_writes: bool,
           read_only: bool) -> None:
    """Browse and edit the database's rows in a local web page, served on 127.0.0.1 only.

    Prints `pydb studio: http://127.0.0.1:PORT/?token=...` and opens it; the token in that address
    is the key to the page. Production databases are read-only unless --allow-writes is given.
    Ctrl-C stops it. Pages: see docs/studio.md.

    Example: pydb studio --no-browser --port 0
    """
    from pydb.studio import DEFAULT_PORT, open_studio, serve

    if allow_writes and read_only:
        raise click.UsageError("--allow-writes and --read-only contradict each other")
    app = open_studio(url, settings=settings, allow_writes=allow_writes, read_only=read_only)
    if not app.mode.writable:
        click.echo(f"pydb studio: read-only ({app.mode.reason})", err=True)

    def ready(address: str) -> None:
        click.echo(f"pydb studio: {address}")
        if not no_browser:
            webbrowser.open(address)

    serve(app, port=DEFAULT_PORT if port is None else port, on_ready=ready)
    click.echo("pydb studio: stopped", err=True)


COMMANDS = [studio]
