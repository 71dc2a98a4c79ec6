"""`pydb seed FILE`: load a seed file (the work is done by pydb.seed.load_seed)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any

import click

from pydb.cli.options import pass_settings, url_option
from pydb.config import Settings
from pydb.urls import mask_password

_PROGRESS_MIN_ROWS = 20_000


@click.command("seed")
@click.argument("file", type=click.Path(dir_okay=False), default="seed.yaml")
@url_option
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; commit nothing.")
@click.option("--reset", is_flag=True, help="Delete the rows of the seeded tables first (same transaction).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --reset deletes rows.")
@click.option("--allow-production", is_flag=True,
              help="Allow a production target (PYDB_ENV=production, or a Neon default branch).")
@pass_settings
def seed(settings: Settings, file: str, url: str | None, dry_run: bool, reset: bool, yes: bool,
         allow_production: bool) -> None:
    """Load FILE (default seed.yaml) into the database: validated, idempotent, in one transaction.

    Rows are found again by primary key, else a unique key, else their `_id`; running it again
    changes nothing. Every problem is reported as FILE:LINE:COL before anything is written.

    Example: pydb seed seed.yaml --dry-run
    """
    from pydb.config import resolve_url
    from pydb.seed import check_production, load_seed

    target = resolve_url(url, settings)
    if reset and not dry_run and not yes:
        if not allow_production:
            check_production(target, settings)
        click.confirm(
            f"--reset deletes every row of the tables in {file} (and rows that reference them through "
            f"ON DELETE CASCADE) in {mask_password(target)}. Continue?", abort=True, err=True)
    with ExitStack() as stack:
        progress = _ProgressBar(stack) if settings.progress and sys.stderr.isatty() else None
        report = load_seed(file, target, dry_run=dry_run, reset=reset, allow_production=allow_production,
                           progress=progress, settings=settings)
    if dry_run:
        click.echo(f"dry run of {file} on {mask_password(target)} (rolled back, nothing written):")
    for table in report.tables:
        click.echo(f"{table.table}: {_counts(table.inserted, table.updated, table.unchanged, table.deleted, reset)}")
    click.echo(f"total: {_counts(report.inserted, report.updated, report.unchanged, report.deleted, reset)}")


class _ProgressBar:
    """A progress bar on stderr for loads of many rows, opened at the first report."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if total < _PROGRESS_MIN_ROWS:
            return
        if self._bar is None:
            self._bar = self._stack.enter_context(click.progressbar(length=total, label="writing rows",
                                                                    file=sys.stderr))
        self._bar.length = total  # an estimate until the whole file is read
        self._bar.update(done - self._bar.pos)


def _counts(inserted: int, updated: int, unchanged: int, deleted: int, reset: bool) -> str:
    text = f"{inserted} inserted, {updated} updated, {unchanged} unchanged"
    return text + (f" ({deleted} deleted first)" if reset else "")


COMMANDS = [seed]
