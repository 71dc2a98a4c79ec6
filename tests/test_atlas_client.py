"""The Atlas client against a fake Atlas binary that records its argv: exact arguments, exit codes, bad JSON.

The fake is a small Python script standing in for Atlas; it writes the arguments it got to a file
and prints the stdout, stderr and exit code a test gives it. The real binary is covered by the
end-to-end tests (test_schema, test_migrate, test_lint, test_drift).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pydb.atlas import Atlas
from pydb.atlas.client import JSON_FORMAT, SYNCED
from pydb.atlas.launcher import guard_destructive_push
from pydb.errors import AtlasError, DestructiveChangeError

FAKE = """\
import json, os, sys
with open(os.environ["FAKE_ATLAS_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sys.stdout.write(os.environ.get("FAKE_ATLAS_STDOUT", ""))
sys.stderr.write(os.environ.get("FAKE_ATLAS_STDERR", ""))
sys.exit(int(os.environ.get("FAKE_ATLAS_EXIT", "0")))
"""

FakeAtlas = Callable[..., tuple[Atlas, Path]]


@pytest.fixture
def fake_atlas(tmp_path: Path) -> FakeAtlas:
    """An Atlas client on the fake binary, answering with the given stdout, stderr and exit code."""
    binary = tmp_path / "atlas"
    binary.write_text(f"#!{sys.executable}\n{FAKE}")
    binary.chmod(0o755)
    log = tmp_path / "argv.jsonl"

    def make(stdout: str = "", stderr: str = "", exit_code: int = 0) -> tuple[Atlas, Path]:
        environ = {"FAKE_ATLAS_LOG": str(log), "FAKE_ATLAS_STDOUT": stdout, "FAKE_ATLAS_STDERR": stderr,
                   "FAKE_ATLAS_EXIT": str(exit_code)}
        return Atlas(cwd=tmp_path, environ=environ, binary=binary), log

    return make


def calls(log: Path) -> list[list[str]]:
    """Every argv the fake was started with, in order."""
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_schema_apply_argv_and_decoded_plan(fake_atlas: FakeAtlas) -> None:
    answer = {"Driver": "postgres", "Changes": {"Pending": ['ALTER TABLE "users" ADD COLUMN "x" text']}}
    atlas, log = fake_atlas(json.dumps(answer))
    plan = atlas.schema_apply(url="postgres://u@h/db", to=["file://schema.hcl"], dev_url="postgres://u@h/dev",
                              dry_run=True, variables={"allow_drop": "true"})
    assert calls(log) == [["schema", "apply", "-u", "postgres://u@h/db", "--to", "file://schema.hcl",
                           "--dev-url", "postgres://u@h/dev", "--var", "allow_drop=true", "--dry-run",
                           "--format", JSON_FORMAT]]
    assert plan.pending == ['ALTER TABLE "users" ADD COLUMN "x" text']
    assert (plan.applied, plan.error) == ([], None)


def test_schema_apply_with_an_env_auto_approves(fake_atlas: FakeAtlas) -> None:
    atlas, log = fake_atlas(json.dumps({"Changes": {"Applied": ["CREATE TABLE t (id int)"]}}))
    assert atlas.schema_apply(env="local").applied == ["CREATE TABLE t (id int)"]
    assert calls(log) == [["schema", "apply", "--env", "local", "--auto-approve", "--format", JSON_FORMAT]]


def test_a_failed_statement_is_data_of_the_result(fake_atlas: FakeAtlas) -> None:
    answer = {"Changes": {"Applied": ["CREATE TABLE a (id int)"], "Error": {"Stmt": "CREATE TABLE a (id int)",
                                                                           "Text": "relation exists"}}}
    atlas, _log = fake_atlas(json.dumps(answer))
    result = atlas.schema_apply(env="local")
    assert (result.error_statement, result.error) == ("CREATE TABLE a (id int)", "relation exists")


def test_non_zero_exit_is_an_atlas_error_with_stderr_and_code(fake_atlas: FakeAtlas) -> None:
    atlas, log = fake_atlas("", "Error: sql/migrate: connected database is not clean\n", 1)
    with pytest.raises(AtlasError) as info:
        atlas.migrate_status(url="postgres://u@h/db", directory="file://migrations", revisions_schema="revs")
    assert str(info.value) == "atlas migrate status failed: sql/migrate: connected database is not clean"
    assert info.value.exit_code == 1
    assert "not clean" in info.value.stderr
    assert calls(log) == [["migrate", "status", "--url", "postgres://u@h/db", "--dir", "file://migrations",
                           "--revisions-schema", "revs", "--format", JSON_FORMAT]]


def test_malformed_json_is_an_atlas_error(fake_atlas: FakeAtlas) -> None:
    atlas, _log = fake_atlas('{"Status": "OK"')
    with pytest.raises(AtlasError, match=r"atlas migrate status printed no JSON"):
        atlas.migrate_status(env="local")


def test_text_instead_of_json_is_an_atlas_error(fake_atlas: FakeAtlas) -> None:
    atlas, _log = fake_atlas("Migrating to version 1\n")
    with pytest.raises(AtlasError, match=r"atlas migrate apply printed no JSON: 'Migrating to version 1'"):
        atlas.migrate_apply(env="local")


def test_passwords_are_masked_in_atlas_errors(fake_atlas: FakeAtlas) -> None:
    atlas, _log = fake_atlas("", "Error: cannot connect to postgres://app:placeholder-secret@db/app\n", 1)
    with pytest.raises(AtlasError) as info:
        atlas.migrate_hash(env="local")
    assert "placeholder-secret" not in str(info.value) and "placeholder-secret" not in info.value.stderr
    assert "postgres://app:***@db/app" in str(info.value)


def test_migrate_status_decoded(fake_atlas: FakeAtlas) -> None:
    answer = {"Available": [{"Name": "1_init.sql", "Version": "1", "Description": "init"},
                            {"Name": "2_more.sql", "Version": "2", "Description": "more"}],
              "Pending": [{"Name": "2_more.sql", "Version": "2", "Description": "more"}],
              "Applied": [{"Version": "1", "Description": "init", "Applied": 3, "Total": 3}],
              "Current": "1", "Next": "2", "Status": "PENDING"}
    atlas, _log = fake_atlas(json.dumps(answer))
    status = atlas.migrate_status(env="local")
    assert [f.name for f in status.available] == ["1_init.sql", "2_more.sql"]
    assert [f.version for f in status.pending] == ["2"]
    assert [(r.version, r.applied, r.total) for r in status.applied] == [("1", 3, 3)]
    assert (status.current, status.next, status.status) == ("1", "2", "PENDING")


def test_lint_findings_with_exit_1_are_a_report(fake_atlas: FakeAtlas) -> None:
    answer = {"Env": {"Dir": "file://migrations"}, "Files": [{
        "Name": "2_drop.sql", "Text": "ALTER TABLE t DROP COLUMN c;\n", "Error": "destructive changes detected",
        "Reports": [{"Text": "destructive changes detected",
                     "Diagnostics": [{"Pos": 0, "Text": 'Dropping non-virtual column "c"', "Code": "DS103"}]}],
    }]}
    atlas, log = fake_atlas(json.dumps(answer), "Error: destructive changes detected\n", 1)
    summary = atlas.migrate_lint(env="ci", latest=1)
    assert calls(log) == [["migrate", "lint", "--env", "ci", "--latest", "1", "--format", JSON_FORMAT]]
    assert (summary.exit_code, summary.message, summary.directory) == (
        1, "destructive changes detected", "file://migrations")
    (file,) = summary.files
    assert (file.name, file.reports[0].diagnostics[0].code) == ("2_drop.sql", "DS103")


def test_lint_without_a_report_is_an_atlas_error(fake_atlas: FakeAtlas) -> None:
    atlas, log = fake_atlas("", "Error: --git-base: not a git repository\n", 1)
    with pytest.raises(AtlasError, match="atlas migrate lint failed: --git-base: not a git repository"):
        atlas.migrate_lint(env="ci", git_base="main")
    assert calls(log) == [["migrate", "lint", "--env", "ci", "--git-base", "main", "--format", JSON_FORMAT]]


def test_schema_diff_synced_is_empty(fake_atlas: FakeAtlas) -> None:
    atlas, log = fake_atlas(SYNCED + "\n")
    assert atlas.schema_diff("file://a", "file://b", dev_url="postgres://u@h/dev") == ""
    assert calls(log) == [["schema", "diff", "--from", "file://a", "--to", "file://b", "--dev-url",
                           "postgres://u@h/dev"]]


def test_migration_commands_argv(fake_atlas: FakeAtlas) -> None:
    atlas, log = fake_atlas("")
    atlas.migrate_diff("add_x", env="local")
    atlas.migrate_new("add_y", directory="file://m")
    atlas.migrate_hash(directory="file://m")
    atlas.migrate_validate(env="local")
    assert calls(log) == [["migrate", "diff", "add_x", "--env", "local"], ["migrate", "new", "add_y", "--dir",
                          "file://m"], ["migrate", "hash", "--dir", "file://m"], ["migrate", "validate", "--env",
                                                                                    "local"]]


def test_the_launcher_guard_plans_with_the_users_flags_and_refuses_drops(fake_atlas: FakeAtlas) -> None:
    plan = {"Changes": {"Pending": ['ALTER TABLE "users" DROP COLUMN "bio"', 'CREATE INDEX "i" ON "t" ("c")']}}
    atlas, log = fake_atlas(json.dumps(plan))
    args = ["schema", "apply", "--env", "dev", "--auto-approve", "--to", "file://other.hcl"]
    with pytest.raises(DestructiveChangeError, match=r'drops data:\n  ALTER TABLE "users" DROP COLUMN "bio"\n'):
        guard_destructive_push(args, atlas)
    assert calls(log) == [["schema", "apply", "--var", "allow_drop=true", "--env", "dev", "--to", "file://other.hcl",
                           "--dry-run", "--format", JSON_FORMAT]]


def test_the_launcher_guard_leaves_other_commands_alone(fake_atlas: FakeAtlas) -> None:
    atlas, log = fake_atlas(json.dumps({"Changes": {"Pending": ['DROP TABLE "t"']}}))
    guard_destructive_push(["schema", "apply", "--env", "local", "--auto-approve"], atlas)
    guard_destructive_push(["schema", "apply", "--env", "dev", "--var", "allow_drop=true"], atlas)
    guard_destructive_push(["migrate", "apply", "--env", "dev"], atlas)
    assert not log.exists()
