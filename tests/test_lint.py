"""The CI gate: `atlas migrate diff`, then `pydb lint` and `atlas migrate lint --env ci` on the new file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, AtlasRunner, Run, add_migration, git, run_pydb

DROP_PASSWORD = ('  column "password_hash" {\n    type = varchar(255)\n    null = true\n  }\n', "")
USAGE_TABLE_START = 'table "ai_usage_log" {'
NARROW_MODEL = ('  column "model" {\n    type = varchar(100)', '  column "model" {\n    type = varchar(50)')
PROJECT_DESCRIPTION = '  column "description" {\n    type = text\n    null = true\n  }\n'
ADD_BUDGET = (PROJECT_DESCRIPTION, PROJECT_DESCRIPTION + '  column "budget" {\n    type = integer\n  }\n')
ADD_NICKNAME = (PROJECT_DESCRIPTION, PROJECT_DESCRIPTION + '  column "nickname" {\n    type = varchar(100)\n'
                                                           '    null = true\n  }\n')
STATUS_INDEX = '  index "idx_projects_status" {\n    columns = [column.status]\n  }\n'
ADD_UNIQUE = (STATUS_INDEX, STATUS_INDEX + '  index "projects_name_key" {\n    unique  = true\n'
                                           '    columns = [column.name]\n  }\n')
TEAMS_TABLE = '''
table "teams" {
  schema = schema.public
  column "id" {
    type    = uuid
    default = sql("gen_random_uuid()")
  }
  column "owner_id" {
    type = uuid
  }
  column "name" {
    type = varchar(255)
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "teams_owner_id_fkey" {
    columns     = [column.owner_id]
    ref_columns = [table.users.column.id]
    on_delete   = CASCADE
  }
  index "idx_teams_owner_id" {
    columns = [column.owner_id]
  }
}
'''
CONCURRENT_INDEX = '''-- atlas:txmode none

-- An index on a table in use: built without blocking writes, outside a transaction.
CREATE INDEX CONCURRENTLY "idx_users_name" ON "users" ("name");
'''


def _edit_schema(project: Path, old: str, new: str) -> None:
    path = project / "schema.hcl"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _drop_usage_table(project: Path) -> None:
    path = project / "schema.hcl"
    text = path.read_text()
    start = text.index(USAGE_TABLE_START)
    end = text.index("\n}\n", start) + 3
    path.write_text(text[:start] + text[end:])


def _new_migration(atlas: AtlasRunner, project: Path, name: str) -> Path:
    before = set((project / "migrations").glob("*.sql"))
    atlas("migrate", "diff", name, "--env", "local", cwd=project)
    (created,) = set((project / "migrations").glob("*.sql")) - before
    return created


def _pydb_lint(project: Path, dev_url: str, *args: str) -> Run:
    return run_pydb("lint", *args, cwd=project, env={"ATLAS_DEV_URL": dev_url})


def _findings(project: Path, dev_url: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = _pydb_lint(project, dev_url, *args, "--format", "json")
    return result.returncode, json.loads(result.stdout)


UNSAFE: dict[str, tuple[Callable[[Path], None], str, set[str]]] = {
    "drop_column": (lambda p: _edit_schema(p, *DROP_PASSWORD), 'DROP COLUMN "password_hash"',
                    {"DS103", "ban-drop-column"}),
    "drop_table": (_drop_usage_table, 'DROP TABLE "ai_usage_log"', {"DS102", "ban-drop-table"}),
    "narrow_type": (lambda p: _edit_schema(p, *NARROW_MODEL), 'TYPE character varying(50)', {"changing-column-type"}),
    "not_null_without_default": (lambda p: _edit_schema(p, *ADD_BUDGET), 'ADD COLUMN "budget" integer NOT NULL',
                                 {"MF103", "adding-required-field"}),
    "unique_constraint": (lambda p: _edit_schema(p, *ADD_UNIQUE), 'CREATE UNIQUE INDEX "projects_name_key"',
                          {"MF101", "require-concurrent-index-creation"}),
}


@pytest.mark.parametrize("change", list(UNSAFE))
def test_an_unsafe_change_fails_pydb_lint_naming_statement_and_rule(
    change: str, atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    edit, statement, rules = UNSAFE[change]
    edit(project)
    created = _new_migration(atlas, project, change)
    assert statement in created.read_text()

    code, report = _findings(project, pydb_dev_database, "--latest", "1")
    assert code == 1
    assert report["ok"] is False
    assert report["files"] == [created.name]
    findings = report["findings"]
    assert isinstance(findings, list)
    errors = {f["rule"]: f for f in findings if f["severity"] == "error"}
    assert rules <= set(errors), errors
    for rule in rules:
        assert errors[rule]["file"] == created.name
        assert statement in errors[rule]["statement"]
        assert errors[rule]["fix"]

    text = _pydb_lint(project, pydb_dev_database, "--latest", "1")
    assert text.returncode == 1
    assert f"{created.name}:" in text.stdout
    assert statement in text.stdout
    assert "pydb lint FAILED" in text.stdout


@pytest.mark.parametrize("change", ["drop_column", "drop_table", "not_null_without_default", "unique_constraint"])
def test_an_unsafe_change_fails_atlas_own_ci_lint(change: str, atlas: AtlasRunner, project: Path) -> None:
    edit, _statement, rules = UNSAFE[change]
    edit(project)
    created = _new_migration(atlas, project, change)
    result = atlas("migrate", "lint", "--env", "ci", "--latest", "1", cwd=project, check=False)
    assert result.exit_code == 1
    assert created.name in result.stdout
    code = next(rule for rule in rules if rule[:2] in ("DS", "MF"))
    json_result = atlas("migrate", "lint", "--env", "ci", "--latest", "1", "--format", "{{ json . }}",
                        cwd=project, check=False)
    assert code in json_result.stdout


def test_atlas_alone_lets_a_narrowed_type_through_and_pydb_lint_does_not(
    atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    # Atlas v0.13.1 has no analyzer for type changes: squawk's changing-column-type is the gate here.
    _edit_schema(project, *NARROW_MODEL)
    _new_migration(atlas, project, "narrow")
    assert atlas("migrate", "lint", "--env", "ci", "--latest", "1", cwd=project, check=False).exit_code == 0
    assert _pydb_lint(project, pydb_dev_database, "--latest", "1").returncode == 1


def _add_teams_table(project: Path) -> None:
    (project / "schema.hcl").write_text((project / "schema.hcl").read_text() + TEAMS_TABLE)


SAFE: dict[str, Callable[[Path], None]] = {
    "nullable_column": lambda p: _edit_schema(p, *ADD_NICKNAME),
    "new_table": _add_teams_table,
}


@pytest.mark.parametrize("change", list(SAFE))
def test_a_safe_change_passes_both_lints(
    change: str, atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    SAFE[change](project)
    created = _new_migration(atlas, project, change)
    result = _pydb_lint(project, pydb_dev_database, "--latest", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pydb lint passed: 0 error(s), 0 warning(s) in {created.name}" in result.stdout
    assert atlas("migrate", "lint", "--env", "ci", "--latest", "1", cwd=project, check=False).exit_code == 0


def test_an_index_built_concurrently_outside_a_transaction_passes(
    atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    add_migration(atlas, project, "users_name_index", CONCURRENT_INDEX)
    result = _pydb_lint(project, pydb_dev_database, "--latest", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout
    assert atlas("migrate", "lint", "--env", "ci", "--latest", "1", cwd=project, check=False).exit_code == 0


def test_the_same_index_without_the_txmode_directive_is_flagged(
    atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    add_migration(atlas, project, "users_name_index",
                            CONCURRENT_INDEX.replace("-- atlas:txmode none\n\n", ""))
    code, report = _findings(project, pydb_dev_database, "--latest", "1")
    assert code == 1
    # Atlas calls it a warning (and squawk 2.70 misses a lone statement), but Atlas wraps the file in a
    # transaction, where CONCURRENTLY cannot run: pydb makes PG103 an error.
    errors = {f["rule"] for f in report["findings"] if f["severity"] == "error"}
    assert "PG103" in errors


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_base_lints_the_migrations_added_on_the_branch(
    atlas: AtlasRunner, project: Path, pydb_dev_database: str,
) -> None:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "base")
    assert _pydb_lint(project, pydb_dev_database, "--git-base", "main").returncode == 0

    git(project, "checkout", "-q", "-b", "feature")
    _edit_schema(project, *DROP_PASSWORD)
    created = _new_migration(atlas, project, "drop_password")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "drop password_hash")

    result = _pydb_lint(project, pydb_dev_database, "--git-base", "main")
    assert result.returncode == 1
    assert f"{created.name}:2: error DS103 (atlas)" in result.stdout
    atlas_result = atlas("migrate", "lint", "--env", "ci", "--git-base", "main", cwd=project, check=False)
    assert atlas_result.exit_code == 1
    assert "Dropping non-virtual column \"password_hash\"" in atlas_result.stdout


def test_the_repository_squawk_config_is_what_pydb_lint_uses(tmp_path: Path) -> None:
    from pydb.lint import DEFAULT_SQUAWK_EXCLUDES

    config = (REPO / ".squawk.toml").read_text()
    for rule in DEFAULT_SQUAWK_EXCLUDES:
        assert f'"{rule}"' in config


def test_lint_needs_latest_or_git_base(project: Path) -> None:
    result = run_pydb("lint", cwd=project)
    assert result.returncode == 2
    assert "give exactly one of --latest N or --git-base BRANCH" in result.stderr
