"""Drift: does a live database hold what its applied migrations say, and do migrations/ match schema.hcl?"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydb.atlas.environ import atlas_environ
from pydb.config import Settings, load_settings
from pydb.describe import unmanaged_objects, unmanaged_warning
from pydb.errors import AtlasError, ConfigError
from pydb.urls import mask_password, to_atlas, to_direct

if TYPE_CHECKING:
    from pydb.atlas import Atlas

__all__ = ["DriftReport", "check_drift", "diff_from_schema", "format_drift"]

REVISIONS_SCHEMA = "atlas_schema_revisions"


@dataclass(frozen=True)
class DriftReport:
    """What `pydb drift` found: changes made by hand, migrations not yet applied, schema.hcl not versioned."""

    url: str  # password masked
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    live_sql: str = ""  # SQL that turns the live database into what its applied migrations produce
    schema_sql: str = ""  # SQL that turns migrations/ into schema.hcl (a change without a migration)
    unmanaged: list[str] = field(default_factory=list)  # objects Atlas cannot see (views, triggers, ...)

    @property
    def drifted(self) -> bool:
        """Tell whether the live database differs from its migrations, or schema.hcl from migrations/."""
        return bool(self.live_sql or self.schema_sql)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for `--format json`."""
        return {
            "drift": self.drifted, "url": self.url, "applied": self.applied, "pending": self.pending,
            "live_sql": self.live_sql, "schema_sql": self.schema_sql, "unmanaged": self.unmanaged,
        }


def check_drift(
    url: str | None = None,
    *,
    project: Path | None = None,
    environ: dict[str, str] | None = None,
    check_schema: bool = True,
    settings: Settings | None = None,
) -> DriftReport:
    """Compare a live database (default DATABASE_URL, else the local one) with migrations/ and schema.hcl."""
    from pydb.config import resolve_url

    settings = settings or load_settings(project)
    root = (project or settings.root).resolve()
    migrations = root / "migrations"
    if not migrations.is_dir():
        raise ConfigError(f"no migrations/ folder in {root}")
    direct = to_direct(resolve_url(url, settings))
    unmanaged = unmanaged_objects(direct)
    atlas, live, dev = _atlas_for(direct, root, environ, settings)
    status = atlas.migrate_status(url=live, directory=f"file://{migrations}", revisions_schema=REVISIONS_SCHEMA)
    applied = [r.version for r in status.applied if r.version]
    pending = [f.name for f in status.available if f.version not in applied]

    with tempfile.TemporaryDirectory(prefix="pydb-drift-") as tmp:
        expected = _applied_dir(atlas, migrations, set(applied), Path(tmp))
        target = f"file://{expected}" if expected else dev
        try:
            live_sql = _schema_diff(atlas, live, target, dev)
        except AtlasError as err:
            if not unmanaged:
                raise
            raise AtlasError(f"{err}\n{unmanaged_warning(unmanaged)}", stderr=err.stderr,
                             exit_code=err.exit_code) from err
    schema_sql = ""
    if check_schema and (root / "schema.hcl").is_file() and status.available:
        schema_sql = _schema_diff(atlas, f"file://{migrations}", f"file://{root / 'schema.hcl'}", dev)
    return DriftReport(url=mask_password(live), applied=applied, pending=pending, live_sql=live_sql,
                       schema_sql=schema_sql, unmanaged=[f"{o.kind} {o.name}" for o in unmanaged])


def diff_from_schema(
    url: str | None = None, *, project: Path | None = None, environ: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> str:
    """Return the SQL that would make a live database match schema.hcl ('' when it matches)."""
    from pydb.config import resolve_url

    settings = settings or load_settings(project)
    root = (project or settings.root).resolve()
    if not (root / "schema.hcl").is_file():
        raise ConfigError(f"no schema.hcl in {root}")
    atlas, live, dev = _atlas_for(to_direct(resolve_url(url, settings)), root, environ, settings)
    return _schema_diff(atlas, live, f"file://{root / 'schema.hcl'}", dev)


def _atlas_for(
    direct: str, root: Path, environ: dict[str, str] | None, settings: Settings,
) -> tuple[Atlas, str, str]:
    """The Atlas client for a project, the live database's URL for Atlas and the dev database's."""
    from pydb.atlas import Atlas

    live = to_atlas(direct)
    atlas = Atlas(cwd=root, settings=settings,
                  environ=environ if environ is not None else atlas_environ("ci", settings))
    dev = atlas.environ("ci").get("PYDB_DEV_URL", "")
    if not dev:
        raise ConfigError("no dev database for Atlas: set ATLAS_DEV_URL, or start the local one with `pydb dev up`")
    return atlas, live, dev


def _applied_dir(atlas: Atlas, migrations: Path, applied: set[str], tmp: Path) -> Path | None:
    """A copy of migrations/ holding only the applied files (hashed again), or None if none is applied."""
    files = [f for f in sorted(migrations.glob("*.sql")) if f.name.split("_", 1)[0] in applied]
    if not files:
        return None
    dest = tmp / "migrations"
    dest.mkdir()
    for f in files:
        shutil.copy(f, dest / f.name)
    atlas.migrate_hash(directory=f"file://{dest}")
    return dest


def _schema_diff(atlas: Atlas, source: str, target: str, dev: str) -> str:
    try:
        return atlas.schema_diff(source, target, dev_url=dev)
    except AtlasError as err:
        # When the source diffs cleanly against itself, the failure came from the difference: one Atlas
        # finds but cannot write as SQL (a removed enum value). That is drift too, not a broken input.
        try:
            atlas.schema_diff(source, source, dev_url=dev)
        except AtlasError:
            raise err from None
        return f"-- a difference Atlas cannot write as SQL: {str(err).split(': ', 1)[-1]}"


def format_drift(report: DriftReport) -> str:
    """Return the report as text for people."""
    out = [f"database: {report.url}"]
    out.append(f"applied migrations: {len(report.applied)}" + (f" (latest {report.applied[-1]})" if report.applied
                                                               else ""))
    if report.pending:
        out.append(f"pending migrations (not drift; deploy with `atlas migrate apply`): {', '.join(report.pending)}")
    if report.live_sql:
        out += ["", "DRIFT: the database differs from its applied migrations (a change made by hand?).",
                "SQL that would bring it back to what migrations/ says:", "", report.live_sql]
    else:
        out.append("live database matches its applied migrations")
    if report.schema_sql:
        out += ["", "DRIFT: schema.hcl holds changes that no migration has; version them with",
                "`atlas migrate diff NAME --env local`. The missing migration would be:", "", report.schema_sql]
    if report.unmanaged:
        out += ["", "warning: the database holds objects that schema.hcl cannot express with this Atlas build "
                f"(Atlas does not compare them): {', '.join(report.unmanaged)}. See docs/migrations.md, "
                "\"What schema.hcl cannot hold\"."]
    out.append("")
    out.append("drift found" if report.drifted else "no drift")
    return "\n".join(out)
