"""Seed data: load a declarative, validated YAML file into the database, idempotently and atomically.

The file is read as a stream (pydb/seed/parse.py, pydb/seed/data.py for `!csv` and `!jsonl` tables)
and each row is checked, planned and written as it comes (pydb/seed/pipeline.py), in one
transaction that is committed only when the whole file was read without a problem. A refusal by
the database rolls that back and runs the load again carefully: every row kept until the file is
read, domain values asked about first, a refused row found by halving.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from pydb.config import Settings, load_settings, process_environ
from pydb.errors import ProductionGuardError, PydbError, SeedError, translate_driver_errors
from pydb.seed.load import Progress, ProgressCallback, SeedReport, StaleCopyData, TableReport
from pydb.seed.parse import FileFacts, parse_seed, scan_seed_file
from pydb.seed.plan import SeedPlan
from pydb.seed.rows import ReadAgain

if TYPE_CHECKING:
    import sqlalchemy as sa

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
    facts = _scan(path, shown)
    env = RecordingEnviron(process_environ())
    cache = PlanCache(settings.cache_folder if settings.seed_cache else None)
    if cache.has(facts.digest, shown):
        replayed = _replay(cache, facts.digest, shown, target, settings, dry_run=dry_run, reset=reset,
                           progress=progress)
        if replayed is not None:
            return replayed
    try:
        engine, tables, fingerprint = _reflect(target, settings)
    except PydbError:
        _raise_file_problems(path, shown, facts, env)  # a mistake in the file is told first
        raise
    report = SeedReport(shown, dry_run=dry_run, reset=reset)
    try:
        with translate_driver_errors(target), contextlib.closing(engine.raw_connection()) as proxy:
            conn: Any = proxy.driver_connection
            report.tables = _load_file(conn, path, shown, facts, env, tables, fingerprint, cache,
                                       dry_run=dry_run, reset=reset, progress=progress)
            return report
    finally:
        engine.dispose()


def _load_file(conn: psycopg.Connection[Any], path: str | Path, shown: str, facts: FileFacts, env: Any,
               tables: dict[str, sa.Table], fingerprint: str, cache: Any, *, dry_run: bool, reset: bool,
               progress: ProgressCallback | None) -> list[TableReport]:
    """Read and write the file: streamed first; read by the event reader, or carefully, when that is needed."""
    from pydb.seed.pipeline import seed_pass

    events, careful = facts.anchors, False
    while True:
        stream = parse_seed(Path(path), shown, environ=env, events=events)
        recorder = cache.recorder()
        try:
            with conn.cursor() as cur:
                result = seed_pass(stream, tables, cur, progress=Progress(progress, facts.rows), sink=recorder,
                                   careful=careful, reset=reset, dry_run=dry_run, file_tables=facts.tables)
            _end(conn, dry_run)
        except ReadAgain:
            conn.rollback()
            recorder.discard()
            events = True
            continue
        except psycopg.Error:
            conn.rollback()
            recorder.discard()
            if careful:
                raise
            careful = True  # the database refused something: find out what, and where
            continue
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            recorder.discard()
            raise
        cache.store(recorder, facts.digest, shown, fingerprint, env.read, stream.data_files, result.tables)
        return result.reports


def _replay(cache: Any, digest: str, shown: str, target: str, settings: Settings, *, dry_run: bool, reset: bool,
            progress: ProgressCallback | None) -> SeedReport | None:
    """Load an unchanged file from the cache on a plain psycopg connection; None when the cache does not fit.

    This path reads no tables and imports no SQLAlchemy: the catalog fingerprint says the schema is the one
    the cache was made for, and the cached COPY text is written as the file's rows were.
    """
    from pydb.catalog import fingerprint_of
    from pydb.retry import connect_retrying, connect_timeout
    from pydb.seed.pipeline import replay
    from pydb.urls import to_direct, to_libpq

    url = to_direct(target)  # seeds run over the direct host: one long transaction, COPY and an advisory lock
    with translate_driver_errors(url), connect_retrying(
            url, lambda: psycopg.connect(to_libpq(url), **connect_timeout(url))) as conn:
        cached = cache.load(digest, shown, fingerprint_of(conn))
        conn.rollback()
        if cached is None:
            return None
        try:
            with conn.cursor() as cur:
                tables = replay(cur, cached, progress=Progress(progress, 0), reset=reset, dry_run=dry_run)
            _end(conn, dry_run)
        except (StaleCopyData, psycopg.Error):
            conn.rollback()  # the cached text no longer fits this database: read the file
            return None
    report = SeedReport(shown, dry_run=dry_run, reset=reset)
    report.tables = tables
    return report


def _end(conn: psycopg.Connection[Any], dry_run: bool) -> None:
    if dry_run:
        conn.rollback()
    else:
        conn.commit()


def check_seed(path: str | Path, tables: dict[str, sa.Table], *, environ: Mapping[str, str] | None = None) -> SeedPlan:
    """Parse a seed file and check it against a schema's tables, writing nothing; SeedError lists every problem."""
    from pydb.seed.pipeline import seed_pass

    shown = str(path)
    facts = _scan(path, shown)
    events = facts.anchors
    while True:
        stream = parse_seed(Path(path), shown, environ=environ, events=events)
        try:
            return SeedPlan(shown, seed_pass(stream, tables, None, progress=Progress(None, 0)).tables)
        except ReadAgain:
            events = True


def _scan(path: str | Path, shown: str) -> FileFacts:
    facts = scan_seed_file(path, shown)
    if facts.problem is not None:
        raise SeedError([facts.problem])
    return facts


def _raise_file_problems(path: str | Path, shown: str, facts: FileFacts, env: Mapping[str, str]) -> None:
    """Raise SeedError for what is wrong in the file itself (its YAML, data files, `!env`), if anything."""
    events = facts.anchors
    while True:
        stream = parse_seed(Path(path), shown, environ=env, events=events)
        try:
            for table in stream:
                for _row in table.rows:
                    pass
        except ReadAgain:
            events = True
            continue
        if stream.problems:
            raise SeedError(list(stream.problems))
        return


def _reflect(url: str, settings: Settings) -> tuple[sa.Engine, dict[str, sa.Table], str]:
    """The engine, the public schema's tables (name -> Table) and its catalog fingerprint."""
    import sqlalchemy as sa

    from pydb.database import Database
    from pydb.urls import to_direct

    # Seeds run over the direct host: one long transaction, COPY and an advisory lock.
    db = Database(to_direct(url), settings=settings)
    try:
        with warnings.catch_warnings():
            # Tables whose foreign keys form a cycle: the seed reports the cycle by name instead.
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

