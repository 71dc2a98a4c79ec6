"""`pydb drift`: a live database against its applied migrations, and schema.hcl against migrations/."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.helpers import run_pydb


def _drift(project: Path, url: str, dev_url: str, *args: str) -> tuple[int, str]:
    result = run_pydb("drift", "--url", url, *args, cwd=project, env={"ATLAS_DEV_URL": dev_url})
    assert "Error:" not in result.stderr, result.stderr
    return result.returncode, result.stdout


def test_a_migrated_database_has_no_drift(project: Path, pydb_database: str, pydb_dev_database: str) -> None:
    code, out = _drift(project, pydb_database, pydb_dev_database)
    assert code == 0, out
    assert "live database matches its applied migrations" in out
    assert out.rstrip().endswith("no drift")


def test_a_column_added_by_hand_is_drift(project: Path, pydb_database: str, pydb_dev_database: str) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    code, out = _drift(project, pydb_database, pydb_dev_database)
    assert code == 1
    assert "DRIFT: the database differs from its applied migrations" in out
    assert 'ALTER TABLE "users" DROP COLUMN "nickname";' in out

    code, out = _drift(project, pydb_database, pydb_dev_database, "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert report["drift"] is True
    assert "nickname" in report["live_sql"]
    assert report["schema_sql"] == ""


def test_a_pending_migration_is_listed_but_is_not_drift(
    project: Path, pydb_database: str, pydb_dev_database: str,
) -> None:
    from pydb.atlas import Atlas, atlas_environ

    migration = project / "migrations" / "20990101000001_nickname.sql"
    migration.write_text('ALTER TABLE "users" ADD COLUMN "nickname" character varying(100) NULL;\n')
    Atlas(cwd=project, environ=atlas_environ(None)).migrate_hash(directory=f"file://{project / 'migrations'}")
    code, out = _drift(project, pydb_database, pydb_dev_database, "--no-schema")
    assert code == 0, out
    assert "pending migrations (not drift; deploy with `atlas migrate apply`): 20990101000001_nickname.sql" in out

    code, out = _drift(project, pydb_database, pydb_dev_database)
    assert code == 1
    assert "DRIFT: schema.hcl holds changes that no migration has" in out


def test_a_change_to_schema_hcl_without_a_migration_is_drift(
    project: Path, pydb_database: str, pydb_dev_database: str,
) -> None:
    schema = project / "schema.hcl"
    schema.write_text(schema.read_text().replace(
        '  column "password_hash" {\n    type = varchar(255)\n    null = true\n  }\n', ""))
    code, out = _drift(project, pydb_database, pydb_dev_database)
    assert code == 1
    assert "live database matches its applied migrations" in out
    assert 'DROP COLUMN "password_hash"' in out
