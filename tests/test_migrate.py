"""Deploying migrations: txmode directives, concurrent deploys, atlas.sum, safe pushes, pooled Neon URLs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pydb.atlas import Atlas, atlas_environ, find_atlas
from pydb.urls import to_atlas
from tests.helpers import AtlasRunner, add_migration, run_pydb

ENUM_VALUE_USED = '''-- atlas:txmode none

-- ADD VALUE commits on its own here, so the next statement may use the new value.
ALTER TYPE "user_role" ADD VALUE 'owner';
UPDATE "users" SET "role" = 'owner' WHERE "role" = 'admin';
'''
CONCURRENT_INDEX = '''-- atlas:txmode none

CREATE INDEX CONCURRENTLY "idx_users_name" ON "users" ("name");
'''
ADD_TEAMS = 'CREATE TABLE "teams" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), PRIMARY KEY ("id"));\n'
ADD_NICKNAME = 'ALTER TABLE "users" ADD COLUMN "nickname" character varying(100) NULL;\n'


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(query).fetchall())


def test_an_enum_value_added_and_used_in_one_migration_applies_with_txmode_none(
    atlas: AtlasRunner, project: Path, pydb_database: str,
) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("INSERT INTO users (email, name, role) VALUES ('ada@example.com', 'Ada', 'admin')")
    add_migration(atlas, project, "owner_role", ENUM_VALUE_USED)
    result = atlas("migrate", "apply", "--env", "local", cwd=project)
    assert "ALTER TYPE \"user_role\" ADD VALUE 'owner'" in result.stdout
    assert _rows(pydb_database, "SELECT role::text FROM users") == [("owner",)]


def test_without_the_directive_the_same_migration_fails_and_changes_nothing(
    atlas: AtlasRunner, project: Path, pydb_database: str,
) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("INSERT INTO users (email, name, role) VALUES ('ada@example.com', 'Ada', 'admin')")
    add_migration(atlas, project, "owner_role", ENUM_VALUE_USED.replace("-- atlas:txmode none\n\n", ""))
    result = atlas("migrate", "apply", "--env", "local", cwd=project, check=False)
    assert result.exit_code == 1
    assert "unsafe use of new value" in result.stdout + result.stderr
    assert _rows(pydb_database, "SELECT role::text FROM users") == [("admin",)]


def test_an_index_built_concurrently_applies(atlas: AtlasRunner, project: Path, pydb_database: str) -> None:
    add_migration(atlas, project, "users_name_index", CONCURRENT_INDEX)
    atlas("migrate", "apply", "--env", "local", cwd=project)
    rows = _rows(
        pydb_database,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'idx_users_name'",
    )
    assert rows == [(True,)]


def test_four_deploys_at_once_apply_each_migration_exactly_once(
    atlas: AtlasRunner, project: Path, empty_database: str,
) -> None:
    add_migration(atlas, project, "teams", ADD_TEAMS, version="20990101000001")
    add_migration(atlas, project, "nickname", ADD_NICKNAME, version="20990101000002")
    versions = sorted(p.name.split("_", 1)[0] for p in (project / "migrations").glob("*.sql"))
    environ = atlas_environ(None)
    args = [str(find_atlas()), "migrate", "apply", "--url", to_atlas(empty_database),
            "--dir", f"file://{project / 'migrations'}", "--revisions-schema", "atlas_schema_revisions",
            "--lock-timeout", "60s"]
    procs = [subprocess.Popen(args, cwd=project, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]

    applied = [o for o in outputs if o[0] == 0 and "Migrating to version" in o[1]]
    assert len(applied) == 1, "\n".join(map(repr, outputs))
    for code, stdout, stderr in outputs:
        # The others waited for the lock and found nothing left to do, or gave up on the lock cleanly.
        assert code == 0 or "lock" in stderr, (code, stdout, stderr)
        if code == 0 and "Migrating to version" not in stdout:
            assert "No migration files to execute" in stdout
    history = _rows(empty_database, "SELECT version, applied, total FROM atlas_schema_revisions.atlas_schema_revisions "
                                    "ORDER BY version")
    assert [v for v, _a, _t in history] == versions
    assert all(a == t for _v, a, t in history)
    tables = {t for (t,) in _rows(empty_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "projects", "ai_usage_log", "teams"} <= tables


def test_a_migration_edited_after_hashing_fails_validate_and_lint(
    atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    created = add_migration(atlas, project, "teams", ADD_TEAMS)
    created.write_text(created.read_text() + ADD_NICKNAME)
    result = atlas("migrate", "validate", "--env", "local", cwd=project, check=False)
    assert result.exit_code == 1
    assert "checksum" in (result.stdout + result.stderr).lower()
    lint = run_pydb("lint", "--latest", "1", cwd=project, env={"ATLAS_DEV_URL": pydb_dev_database})
    assert lint.returncode == 1
    assert "atlas.sum: error atlas.sum (atlas)" in lint.stdout
    assert atlas("migrate", "apply", "--env", "local", cwd=project, check=False).exit_code == 1


def _git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["git", "-c", "user.name=pydb tests", "-c", "user.email=tests@example.com", *args],
        cwd=project, capture_output=True, text=True, check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_two_branches_adding_migrations_conflict_on_atlas_sum(atlas: AtlasRunner, project: Path) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "base")
    _git(project, "checkout", "-q", "-b", "teams")
    add_migration(atlas, project, "teams", ADD_TEAMS, version="20990101000001")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "teams")
    _git(project, "checkout", "-q", "main")
    _git(project, "checkout", "-q", "-b", "nickname")
    add_migration(atlas, project, "nickname", ADD_NICKNAME, version="20990101000002")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "nickname")

    merge = _git(project, "merge", "--no-edit", "teams", check=False)
    assert merge.returncode != 0
    assert "CONFLICT (content): Merge conflict in migrations/atlas.sum" in merge.stdout
    # Taking both sides without re-hashing leaves atlas.sum invalid: validate refuses it.
    (project / "migrations" / "atlas.sum").write_text(
        "\n".join(line for line in (project / "migrations" / "atlas.sum").read_text().splitlines()
                  if not line.startswith(("<<<<<<<", "=======", ">>>>>>>"))) + "\n"
    )
    result = atlas("migrate", "validate", "--env", "local", cwd=project, check=False)
    assert result.exit_code == 1


PASSWORD_HASH_COLUMN = '  column "password_hash" {\n    type = varchar(255)\n    null = true\n  }\n'


def _user_with_a_password_hash(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, name, password_hash) VALUES ('ada@example.com', 'Ada', 'h')")


def _edit_schema(project: Path, *replacements: tuple[str, str]) -> None:
    """Apply text replacements to the project's schema.hcl, each of which must match."""
    schema = project / "schema.hcl"
    text = schema.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    schema.write_text(text)


def _dev_env_environ(target: str, dev: str) -> dict[str, str]:
    environ = atlas_environ(None)
    environ["PYDB_TARGET_URL"] = to_atlas(target)
    environ["PYDB_DEV_URL"] = to_atlas(dev)
    return environ


def test_schema_apply_on_the_shared_dev_env_holds_drops_back_without_opt_in(
    project: Path, pydb_database: str, pydb_dev_database: str,
) -> None:
    _user_with_a_password_hash(pydb_database)
    _edit_schema(project, (PASSWORD_HASH_COLUMN, ""))
    environ = _dev_env_environ(pydb_database, pydb_dev_database)

    held = Atlas(cwd=project, environ=environ).run("schema", "apply", "--env", "dev", "--auto-approve")
    assert "DROP COLUMN" not in held.stdout
    assert _rows(pydb_database, "SELECT password_hash FROM users") == [("h",)]

    dropped = Atlas(cwd=project, environ=environ).run("schema", "apply", "--env", "dev", "--auto-approve",
                                                      "--var", "allow_drop=true")
    assert 'DROP COLUMN "password_hash"' in dropped.stdout
    columns = {c for (c,) in _rows(pydb_database, "SELECT column_name FROM information_schema.columns "
                                                  "WHERE table_name = 'users'")}
    assert "password_hash" not in columns


def test_schema_apply_on_the_local_env_still_drops(atlas: AtlasRunner, project: Path, pydb_database: str) -> None:
    _edit_schema(project, (PASSWORD_HASH_COLUMN, ""))
    result = atlas("schema", "apply", "--env", "local", "--auto-approve", cwd=project)
    assert 'DROP COLUMN "password_hash"' in result.stdout


POOLED = "postgresql://app:placeholder-password@ep-cool-river-123456-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require"


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_a_neon_pooled_url_is_refused_for_deploys_with_the_direct_url(env: str, project: Path) -> None:
    launcher = Path(sys.executable).parent / "atlas"
    environ = dict(os.environ, DATABASE_URL=POOLED)
    result = subprocess.run([str(launcher), "migrate", "apply", "--env", env], cwd=project, env=environ,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "Neon pooled (-pooler) host" in result.stderr
    assert "postgresql://app:***@ep-cool-river-123456.us-east-2.aws.neon.tech/neondb?sslmode=require" in result.stderr
    assert "placeholder-password" not in result.stderr + result.stdout


def test_the_atlas_command_refuses_a_dev_push_that_drops_data(
    project: Path, pydb_database: str, pydb_dev_database: str,
) -> None:
    _user_with_a_password_hash(pydb_database)
    _edit_schema(project, (PASSWORD_HASH_COLUMN, ""), (
        '  column "endpoint" {', '  column "region" {\n    type = text\n    null = true\n  }\n  column "endpoint" {'))
    launcher = Path(sys.executable).parent / "atlas"
    environ = dict(os.environ, DATABASE_URL=pydb_database, ATLAS_DEV_URL=pydb_dev_database)

    def push(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(launcher), "schema", "apply", "--env", "dev", "--auto-approve", *extra],
                              cwd=project, env=environ, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120, check=False)

    refused = push()
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: refusing to push to the shared database of the dev env")
    assert 'ALTER TABLE "public"."users" DROP COLUMN "password_hash"' in refused.stderr
    assert "--var allow_drop=true" in refused.stderr
    columns = {c for (c,) in _rows(pydb_database, "SELECT column_name FROM information_schema.columns")}
    assert "password_hash" in columns and "region" not in columns  # nothing applied, not even the addition

    applied = push("--var", "allow_drop=true")
    assert applied.returncode == 0, applied.stderr
    columns = {c for (c,) in _rows(pydb_database, "SELECT column_name FROM information_schema.columns")}
    assert "password_hash" not in columns and "region" in columns
