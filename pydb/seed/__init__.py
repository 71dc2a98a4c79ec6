"""Seed data: load a declarative, validated YAML file into the database, idempotently and atomically."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pydb.config import Settings, load_settings, process_environ
from pydb.errors import ProductionGuardError, SeedError, SeedProblem, translate_driver_errors
from pydb.seed.load import ProgressCallback, SeedReport, TableReport, write_plan
from pydb.seed.parse import SeedDocument, parse_seed
from pydb.seed.plan import SeedPlan, plan_seed
from pydb.seed.validate import validate_seed

__all__ = ["SeedPlan", "SeedReport", "TableReport", "check_production", "check_seed", "load_seed"]


def load_seed(
    path: str | Path, url: str | None = None, *, dry_run: bool = False, reset: bool = False,
    allow_production: bool = False, progress: ProgressCallback | None = None, settings: Settings | None = None,
) -> SeedReport:
    """Validate a seed file against the database's schema and load it in one transaction."""
    from pydb.config import resolve_url
    from pydb.tuning import collector_paused

    settings = settings or load_settings()
    target = resolve_url(url, settings)
    if not allow_production:
        check_production(target, settings)
    with collector_paused():
        return _load(path, target, dry_run=dry_run, reset=reset, progress=progress, settings=settings)


def _load(path: str | Path, target: str, *, dry_run: bool, reset: bool,
          progress: ProgressCallback | None, settings: Settings) -> SeedReport:
    from pydb.seed.cache import PlanCache, RecordingEnviron

    shown = str(path)
    data, text = _read(path)
    env = RecordingEnviron(process_environ())
    cache = PlanCache(settings.cache_folder if settings.seed_cache else None)
    doc = None
    if not cache.has_plan(data, shown):
        # A file seen for the first time is parsed before connecting: YAML mistakes come first.
        doc, problems = parse_seed(text, shown, environ=env)
        if problems:
            raise SeedError(problems)
    engine, tables, fingerprint = _reflect(target, settings)
    try:
        plan = cache.load_plan(data, shown, fingerprint) if doc is None else None
        if plan is None:
            if doc is None:
                doc, problems = parse_seed(text, shown, environ=env)
                if problems:
                    raise SeedError(problems)
            plan = _plan(doc, tables)
            fresh = True
        else:
            fresh = False
        with translate_driver_errors(target), contextlib.closing(engine.raw_connection()) as proxy:
            conn: Any = proxy.driver_connection
            report = write_plan(conn, plan, dry_run=dry_run, reset=reset, progress=progress)
        if fresh:
            cache.store_plan(data, shown, fingerprint, env.read, plan)
        return report
    finally:
        engine.dispose()


def check_seed(path: str | Path, tables: dict[str, sa.Table], *, environ: Mapping[str, str] | None = None) -> SeedPlan:
    """Parse a seed file and check it against a schema's tables, writing nothing; SeedError lists every problem."""
    _data, text = _read(path)
    doc, problems = parse_seed(text, str(path), environ=environ)
    if problems:
        raise SeedError(problems)
    return _plan(doc, tables)


def _read(path: str | Path) -> tuple[bytes, str]:
    try:
        data = Path(path).read_bytes()
        return data, data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SeedError([SeedProblem(str(path), 1, 1, f"cannot read the seed file: {err}")]) from err


def _plan(doc: SeedDocument, tables: dict[str, sa.Table]) -> SeedPlan:
    checked, problems = validate_seed(doc, tables)
    plan, plan_problems = plan_seed(doc.path, checked)
    problems += plan_problems
    if problems:
        raise SeedError(sorted(problems, key=lambda p: (p.line, p.column)))
    return plan


def _reflect(url: str, settings: Settings) -> tuple[sa.Engine, dict[str, sa.Table], str]:
    """The engine, the public schema's tables (name -> Table) and its catalog fingerprint."""
    from pydb.database import Database
    from pydb.urls import to_direct

    # Seeds run over the direct host: one long transaction, COPY and an advisory lock.
    db = Database(to_direct(url), settings=settings)
    try:
        with warnings.catch_warnings():
            # Tables whose foreign keys form a cycle: plan_seed reports the cycle by name instead.
            warnings.filterwarnings("ignore", "Cannot correctly sort tables", sa.exc.SAWarning)
            return db.engine, db.tables, db.fingerprint
    except BaseException:
        db.dispose()
        raise


def check_production(url: str, settings: Settings | None = None) -> None:
    """Refuse a production target (PYDB_ENV=production, or a Neon default branch) with ProductionGuardError."""
    from pydb.urls import host, is_neon_host, mask_password

    settings = settings or load_settings()
    if settings.production:
        raise ProductionGuardError(
            "refusing to seed: PYDB_ENV=production; pass --allow-production (allow_production=True) if you mean it")
    if not (settings.neon and is_neon_host(host(url))):
        return
    from pydb.branches import is_default_branch

    if is_default_branch(url, settings=settings):
        raise ProductionGuardError(
            f"refusing to seed {mask_password(url)}: it is the Neon project's default (production) branch; "
            f"pass --allow-production (allow_production=True) if you mean it")
