"""Seed data: load a declarative, validated YAML file into the database, idempotently and atomically."""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pydb.errors import ProductionGuardError, SeedError, SeedProblem
from pydb.seed.load import ProgressCallback, SeedReport, TableReport, write_plan
from pydb.seed.parse import parse_seed
from pydb.seed.plan import SeedPlan, plan_seed
from pydb.seed.validate import validate_seed

__all__ = ["SeedPlan", "SeedReport", "TableReport", "check_production", "load_seed"]


def load_seed(
    path: str | Path, url: str | None = None, *, dry_run: bool = False, reset: bool = False,
    allow_production: bool = False, progress: ProgressCallback | None = None,
) -> SeedReport:
    """Validate a seed file against the database's schema and load it in one transaction."""
    from pydb.connection import resolve_url

    target = resolve_url(url)
    if not allow_production:
        check_production(target)
    with _collector_paused():
        return _load(path, target, dry_run=dry_run, reset=reset, progress=progress)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a seed runs.

    A large seed file becomes millions of small objects that live until the load ends and form no
    cycles; with the collector on, its full passes rescan them again and again and take longer than
    the parse itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(path: str | Path, target: str, *, dry_run: bool, reset: bool,
          progress: ProgressCallback | None) -> SeedReport:
    from pydb.seed.cache import RecordingEnviron, has_plan, load_plan, store_plan

    shown = str(path)
    try:
        data = Path(path).read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SeedError([SeedProblem(shown, 1, 1, f"cannot read the seed file: {err}")]) from err
    env = RecordingEnviron(os.environ)
    doc = None
    if not has_plan(data, shown):
        # A file seen for the first time is parsed before connecting: YAML mistakes come first.
        doc, problems = parse_seed(text, shown, environ=env)
        if problems:
            raise SeedError(problems)
    engine, tables, fingerprint = _reflect(target)
    try:
        plan = load_plan(data, shown, fingerprint) if doc is None else None
        if plan is None:
            if doc is None:
                doc, problems = parse_seed(text, shown, environ=env)
                if problems:
                    raise SeedError(problems)
            checked, problems = validate_seed(doc, tables)
            plan, plan_problems = plan_seed(shown, checked)
            problems += plan_problems
            if problems:
                raise SeedError(sorted(problems, key=lambda p: (p.line, p.column)))
            fresh = True
        else:
            fresh = False
        with contextlib.closing(engine.raw_connection()) as proxy:
            conn: Any = proxy.driver_connection
            report = write_plan(conn, plan, dry_run=dry_run, reset=reset, progress=progress)
        if fresh:
            store_plan(data, shown, fingerprint, env.read, plan)
        return report
    finally:
        engine.dispose()


def _reflect(url: str) -> tuple[sa.Engine, dict[str, sa.Table], str]:
    """The engine, the public schema's tables (name -> Table) and its catalog fingerprint."""
    from pydb.database import Database
    from pydb.urls import to_direct

    # Seeds run over the direct host: one long transaction, COPY and an advisory lock.
    db = Database(to_direct(url))
    try:
        with warnings.catch_warnings():
            # Tables whose foreign keys form a cycle: plan_seed reports the cycle by name instead.
            warnings.filterwarnings("ignore", "Cannot correctly sort tables", sa.exc.SAWarning)
            return db.engine, db.tables, db.fingerprint
    except BaseException:
        db.dispose()
        raise


def check_production(url: str) -> None:
    """Refuse a production target (PYDB_ENV=production, or a Neon default branch) with ProductionGuardError."""
    from pydb.urls import host, is_neon_host, mask_password

    if os.environ.get("PYDB_ENV", "").strip().lower() == "production":
        raise ProductionGuardError(
            "refusing to seed: PYDB_ENV=production; pass --allow-production (allow_production=True) if you mean it")
    if not (os.environ.get("NEON_API_KEY") and os.environ.get("NEON_PROJECT_ID") and is_neon_host(host(url))):
        return
    from pydb.branches import is_default_branch

    if is_default_branch(url):
        raise ProductionGuardError(
            f"refusing to seed {mask_password(url)}: it is the Neon project's default (production) branch; "
            f"pass --allow-production (allow_production=True) if you mean it")
