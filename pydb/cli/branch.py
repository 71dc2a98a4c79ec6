"""`pydb branch create|list|url|delete|reset`: isolated copies of the database, local or on Neon."""

from __future__ import annotations

import json
import time

import click

from pydb.cli.options import json_option, pass_settings
from pydb.config import Settings
from pydb.urls import mask_password


def _elapsed(start: float) -> str:
    seconds = time.perf_counter() - start
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


@click.group()
def branch() -> None:
    """Branches: isolated copies of the database.

    Locally a branch is a copy of the app database on the local server (CREATE DATABASE … TEMPLATE);
    with NEON_API_KEY and NEON_PROJECT_ID set, it is a Neon branch of that project.

    Example: pydb branch create feature-x
    """


@branch.command("create")
@click.argument("name")
@click.option("--from", "parent", metavar="PARENT",
              help="Branch to copy (default: the app database locally, the default branch on Neon).")
@pass_settings
def create_cmd(settings: Settings, name: str, parent: str | None) -> None:
    """Create branch NAME as a copy of PARENT.

    Example: pydb branch create feature-x
    """
    from pydb.branches import backend, format_size

    where = backend(settings)
    start = time.perf_counter()
    created = where.create(name, parent)
    size = f" ({format_size(created.size)})" if created.size is not None else ""
    click.echo(f"branch {created.name} created from {created.parent}{size} in {_elapsed(start)}")
    if created.url:
        click.echo(f"url: {mask_password(created.url)}")


@branch.command("list")
@json_option("the branches")
@pass_settings
def list_cmd(settings: Settings, as_json: bool) -> None:
    """List the branches with their parent, size and creation time.

    Example: pydb branch list
    """
    from pydb.branches import backend, format_size

    branches = backend(settings).list()
    if as_json:
        click.echo(json.dumps([
            {"name": b.name, "parent": b.parent, "size": b.size, "default": b.default,
             "created_at": b.created_at.isoformat() if b.created_at else None}
            for b in branches
        ]))
        return
    if not branches:
        click.echo("no branches yet (create one with: pydb branch create NAME)")
        return
    rows = [("NAME", "PARENT", "SIZE", "CREATED")]
    for b in branches:
        created = b.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if b.created_at else "-"
        size = format_size(b.size) if b.size is not None else "-"
        rows.append((b.name + (" (default)" if b.default else ""), b.parent or "-", size, created))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]))


@branch.command("url")
@click.argument("name")
@click.option("--pooled", is_flag=True,
              help="The pooled URL, for application traffic on Neon (locally the same URL).")
@pass_settings
def url_cmd(settings: Settings, name: str, pooled: bool) -> None:
    """Print the URL of branch NAME, for Atlas, pydb and psql (direct unless --pooled).

    Example: DATABASE_URL="$(pydb branch url feature-x)" atlas schema apply --env dev
    """
    from pydb.branches import backend

    click.echo(backend(settings).url(name, pooled=pooled))


@branch.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def delete_cmd(settings: Settings, name: str, yes: bool) -> None:
    """Delete branch NAME and its data (on Neon a soft delete: recoverable for 7 days, see docs/neon.md).

    Example: pydb branch delete feature-x --yes
    """
    from pydb.branches import backend

    if not yes:
        click.confirm(f"Delete branch {name} and all its data?", abort=True)
    where = backend(settings)
    start = time.perf_counter()
    where.delete(name)
    click.echo(f"branch {name} deleted in {_elapsed(start)}")


@branch.command("reset")
@click.argument("name")
@click.option("--preserve-under", metavar="KEPT",
              help="Keep NAME's current state as branch KEPT (with NAME's child branches); "
                   "Neon needs it when NAME has children.")
@pass_settings
def reset_cmd(settings: Settings, name: str, preserve_under: str | None) -> None:
    """Make branch NAME a fresh copy of its parent again, discarding its changes (or keeping them as KEPT).

    Example: pydb branch reset feature-x --preserve-under feature-x-old
    """
    from pydb.branches import backend, format_size

    where = backend(settings)
    start = time.perf_counter()
    reset = where.reset(name, preserve_under=preserve_under)
    size = f" ({format_size(reset.size)})" if reset.size is not None else ""
    click.echo(f"branch {reset.name} reset from {reset.parent}{size} in {_elapsed(start)}")
    if preserve_under:
        click.echo(f"its previous state is branch {preserve_under}")


COMMANDS = [branch]
