"""`pydb describe` and `pydb find`: what a database holds, and rows with their relations."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import click

from pydb.cli.options import pass_settings, url_option
from pydb.config import Settings


@click.command("describe")
@url_option
@pass_settings
def describe_cmd(settings: Settings, url: str | None) -> None:
    """Show the tables, columns, indexes, foreign keys and enums a database holds now.

    Example: pydb describe
    """
    from pydb.config import resolve_url
    from pydb.describe import describe, format_schema

    click.echo(format_schema(describe(resolve_url(url, settings), settings=settings)))


@click.command("find")
@click.argument("table")
@click.option("--where", multiple=True, metavar="COLUMN=VALUE", help="Keep rows whose column equals the value.")
@click.option("--with", "relations", multiple=True, metavar="RELATION", help="Load a relation too (repeatable).")
@click.option("--limit", type=int, default=1, show_default=True, help="How many rows to show.")
@url_option
@pass_settings
def find_cmd(settings: Settings, table: str, where: tuple[str, ...], relations: tuple[str, ...], limit: int,
             url: str | None) -> None:
    """Show rows of TABLE with their related rows, loaded in one query, as a tree.

    Example: pydb find users --where email=admin@example.com --with projects --with ai_usage_log
    """
    from pydb.query import find_rows

    pairs = {}
    for item in where:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not COLUMN=VALUE", param_hint="--where")
        pairs[name] = value
    rows = find_rows(table, pairs, relations, limit=limit, url=url, settings=settings)
    if not rows:
        click.echo(f"no row of {table} matches")
    for row in rows:
        click.echo(table)
        click.echo(_tree(row, "  ", set(relations)))


def _tree(row: dict[str, Any], indent: str, relations: Collection[str] = ()) -> str:
    """Rows as an indented tree: relation values as nested rows, everything else (arrays too) as a value."""
    lines = []
    width = max((len(k) for k in row if k not in relations), default=0)
    for key, value in row.items():
        if key in relations and isinstance(value, list):
            lines.append(f"{indent}{key} ({len(value)})")
            for item in value:
                sub = _tree(item, indent + "    ").splitlines()
                lines.append(f"{indent}  - " + sub[0].lstrip() if sub else f"{indent}  - {{}}")
                lines.extend(sub[1:])
        elif key in relations and isinstance(value, dict):
            lines.append(f"{indent}{key}")
            lines.append(_tree(value, indent + "  "))
        elif key in relations:
            lines.append(f"{indent}{key}  (none)")
        else:
            lines.append(f"{indent}{key.ljust(width)}  {value}")
    return "\n".join(lines)


COMMANDS = [describe_cmd, find_cmd]
