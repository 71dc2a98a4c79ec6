"""Drift: does a live database hold what its applied migrations say, and do migrations/ match schema.hcl?"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydb.errors import AtlasError, ConfigError
from pydb.urls import mask_password, to_atlas, to_direct

__all__ = ["DriftReport", "check_drift", "format_drift"]

REVISIONS_SCHEMA = "atlas_schema_revisions"
_SYNCED = "Schemas are synced"


@dataclass(frozen=True)
class DriftReport:
    """What `pydb drift` found: changes made by hand, migrations not yet applied, schema.hcl not versioned."""

    url: str  # password masked
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    live_sql: str = ""  # SQL that turns the live database into what its applied migrations produce
    schema_sql: str = ""  # SQL that turns migrations/ into schema.hcl (a change without a migration)

    @property
    def drifted(self) -> bool:
        """Tell whether the live database differs from its migrations, or schema.hcl from migrations/."""
        return bool(self.live_sql or self.schema_sql)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for `--format json`."""
        return {
            "drift": self.drifted, "url": self.url, "applied": self.applied, "pending": self.pending,
            "live_sql": self.live_sql, "schema_sql": self.schema_sql,
        }


def check_drift(
    url: str | None = None,
    *,
    project: Path | None = None,
    environ: dict[str, str] | None = None,
    check_schema: bool = True,
) -> DriftReport:
    """Compare a live database (default DATABASE_URL, else the local one) with migrations/ and schema.hcl."""
    from pydb.atlas import atlas_environ
    from pydb.connection import resolve_url
    from pydb.project import project_root

    root = (project or project_root()).resolve()
    migrations = root / "migrations"
    if not migrations.is_dir():
        raise ConfigError(f"no migrations/ folder in {root}")
    live = to_atlas(to_direct(resolve_url(url)))
    env = dict(environ) if environ is not None else atlas_environ("ci")
    dev = env.get("PYDB_DEV_URL", "")
    if not dev:
        raise ConfigError("no dev database for Atlas: set ATLAS_DEV_URL, or start the local one with `pydb dev up`")

    status = _migrate_status(live, migrations, root, env)
    applied = [str(r["Version"]) for r in status.get("Applied") or [] if r.get("Version")]
    available = [str(f["Version"]) for f in status.get("Available") or [] if f.get("Version")]
    pending = [str(f["Name"]) for f in status.get("Available") or [] if str(f.get("Version")) not in applied]

    with tempfile.TemporaryDirectory(prefix="pydb-drift-") as tmp:
        expected = _applied_dir(migrations, set(applied), Path(tmp), root, env)
        target = f"file://{expected}" if expected else dev
        live_sql = _schema_diff(live, target, dev, root, env)
    schema_sql = ""
    if check_schema and (root / "schema.hcl").is_file() and available:
        schema_sql = _schema_diff(f"file://{migrations}", f"file://{root / 'schema.hcl'}", dev, root, env)
    return DriftReport(url=mask_password(live), applied=applied, pending=pending, live_sql=live_sql,
                       schema_sql=schema_sql)


def _migrate_status(live: str, migrations: Path, root: Path, env: dict[str, str]) -> dict[str, Any]:
    from pydb.atlas import run_atlas

    result = run_atlas(
        ["migrate", "status", "--url", live, "--dir", f"file://{migrations}",
         "--revisions-schema", REVISIONS_SCHEMA, "--format", "{{ json . }}"],
        cwd=root, environ=env,
    )
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as err:
        raise AtlasError(f"atlas migrate status printed no JSON: {result.stdout[:200]!r}") from err
    if not isinstance(data, dict):
        raise AtlasError("atlas migrate status printed unexpected JSON")
    return data


def _applied_dir(migrations: Path, applied: set[str], tmp: Path, root: Path, env: dict[str, str]) -> Path | None:
    """A copy of migrations/ holding only the applied files (hashed again), or None if none is applied."""
    from pydb.atlas import run_atlas

    files = [f for f in sorted(migrations.glob("*.sql")) if f.name.split("_", 1)[0] in applied]
    if not files:
        return None
    dest = tmp / "migrations"
    dest.mkdir()
    for f in files:
        shutil.copy(f, dest / f.name)
    run_atlas(["migrate", "hash", "--dir", f"file://{dest}"], cwd=root, environ=env)
    return dest


def _schema_diff(source: str, target: str, dev: str, root: Path, env: dict[str, str]) -> str:
    from pydb.atlas import run_atlas

    try:
        result = run_atlas(["schema", "diff", "--from", source, "--to", target, "--dev-url", dev], cwd=root,
                           environ=env)
    except AtlasError as err:
        # A difference Atlas finds but cannot write as SQL (a removed enum value) is still drift.
        if "not supported" in str(err):
            return f"-- a difference Atlas cannot write as SQL: {str(err).split(': ', 1)[-1]}"
        raise
    text = result.stdout.strip()
    return "" if not text or text.startswith(_SYNCED) else text


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
    out.append("")
    out.append("drift found" if report.drifted else "no drift")
    return "\n".join(out)
