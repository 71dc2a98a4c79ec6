"""`pydb lint` and `pydb drift`: the migration gate and the drift check, for CI and people."""

from __future__ import annotations

import json

import click

from pydb.cli.options import pass_settings, url_option
from pydb.config import Settings


@click.command("lint")
@click.option("--latest", type=click.IntRange(min=1), help="Lint the last N migration files.")
@click.option("--git-base", metavar="BRANCH", help="Lint the migration files added since BRANCH (committed files).")
@click.option("--env", "env", default="ci", show_default=True, help="Env of atlas.hcl whose lint policy applies.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one object with every finding, for machines.")
@click.option("--no-squawk", is_flag=True, help="Run Atlas's lint only, without squawk's lock-risk rules.")
@pass_settings
@click.pass_context
def lint(ctx: click.Context, settings: Settings, latest: int | None, git_base: str | None, env: str, fmt: str,
         no_squawk: bool) -> None:
    """Lint new migrations with Atlas (destructive, data-dependent, incompatible changes) and squawk (locks).

    Prints file, statement, rule, why it is dangerous and what to do instead; exits 1 on any error.

    Example: pydb lint --git-base origin/main
    """
    from pydb.lint import format_report, lint_migrations

    if (latest is None) == (git_base is None):
        raise click.UsageError("give exactly one of --latest N or --git-base BRANCH")
    report = lint_migrations(latest=latest, git_base=git_base, env=env, squawk=not no_squawk, settings=settings)
    click.echo(json.dumps(report.to_dict(), indent=2) if fmt == "json" else format_report(report))
    if not report.ok:
        ctx.exit(1)


@click.command("drift")
@url_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one object, for machines.")
@click.option("--no-schema", is_flag=True, help="Do not compare schema.hcl with migrations/.")
@pass_settings
@click.pass_context
def drift(ctx: click.Context, settings: Settings, url: str | None, fmt: str, no_schema: bool) -> None:
    """Tell whether a live database matches its applied migrations, and migrations/ matches schema.hcl.

    Prints the difference as SQL and exits 1 on drift; pending migrations are listed, not drift.

    Example: pydb drift --url "$DATABASE_URL"
    """
    from pydb.drift import check_drift, format_drift

    report = check_drift(url, check_schema=not no_schema, settings=settings)
    click.echo(json.dumps(report.to_dict(), indent=2) if fmt == "json" else format_drift(report))
    if report.drifted:
        ctx.exit(1)


COMMANDS = [lint, drift]
