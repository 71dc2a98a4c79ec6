"""schema.hcl and migrations/ against the real Atlas and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import AtlasRunner


def _rows(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(query, params or None).fetchall())


def test_apply_on_an_empty_database_creates_the_prd_schema(atlas: AtlasRunner, empty_database: str) -> None:
    result = atlas("schema", "apply", "--env", "local", "--auto-approve", target=empty_database)
    assert "Create \"users\" table" in result.stdout

    columns = dict(
        ((table, column), (data_type, nullable, default))
        for table, column, data_type, nullable, default in _rows(
            empty_database,
            "SELECT table_name, column_name, "
            "  CASE WHEN data_type = 'numeric' THEN format('numeric(%s,%s)', numeric_precision, numeric_scale)"
            "       WHEN data_type = 'character varying' THEN format('varchar(%s)', character_maximum_length)"
            "       WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END,"
            "  is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public'",
        )
    )
    assert columns["ai_usage_log", "tokens_used"][:2] == ("integer", "NO")
    assert columns["ai_usage_log", "estimated_cost"][:2] == ("numeric(12,6)", "YES")
    assert columns["users", "email"][:2] == ("varchar(255)", "NO")
    assert columns["users", "role"] == ("user_role", "YES", "'user'::user_role")
    assert columns["users", "email_verified"] == ("boolean", "YES", "false")
    assert columns["projects", "status"][0] == "varchar(50)"
    for table in ("users", "projects", "ai_usage_log"):
        assert columns[table, "id"] == ("uuid", "NO", "gen_random_uuid()")
        assert columns[table, "created_at"] == ("timestamp with time zone", "NO", "now()")
    for table in ("users", "projects"):
        assert columns[table, "updated_at"] == ("timestamp with time zone", "NO", "now()")

    labels = _rows(
        empty_database,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = 'user_role' ORDER BY e.enumsortorder",
    )
    assert [label for (label,) in labels] == ["user", "admin"]

    query = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
    indexes = {name for (name,) in _rows(empty_database, query)}
    assert {"users_email_key", "idx_projects_owner_id", "idx_projects_status",
            "idx_ai_usage_user_id", "idx_ai_usage_created"} <= indexes


def test_deleting_a_user_cascades_and_emails_are_unique(atlas: AtlasRunner, empty_database: str) -> None:
    atlas("schema", "apply", "--env", "local", "--auto-approve", target=empty_database)
    with psycopg.connect(empty_database) as conn:
        (user_id,) = conn.execute(
            "INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO projects (owner_id, name) VALUES (%s, 'p1'), (%s, 'p2')", (user_id, user_id))
        conn.execute(
            "INSERT INTO ai_usage_log (user_id, model, tokens_used, estimated_cost) VALUES (%s, 'm', 10, 0.5)",
            (user_id,),
        )
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM ai_usage_log").fetchone() == (0,)
        conn.execute("INSERT INTO users (email, name) VALUES ('bob@example.com', 'Bob')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO users (email, name) VALUES ('bob@example.com', 'Bobby')")


def test_a_second_apply_has_nothing_to_change(atlas: AtlasRunner, empty_database: str) -> None:
    atlas("schema", "apply", "--env", "local", "--auto-approve", target=empty_database)
    again = atlas("schema", "apply", "--env", "local", "--auto-approve", target=empty_database)
    assert "Schema is synced, no changes to be made" in again.stdout


def test_the_migrated_template_equals_schema_hcl(atlas: AtlasRunner, pydb_database: str) -> None:
    # pydb_database is a copy of the template that `atlas migrate apply` built from migrations/.
    again = atlas("schema", "apply", "--env", "local", "--dry-run", target=pydb_database)
    assert "Schema is synced, no changes to be made" in again.stdout


def test_migrations_are_in_sync_with_schema_hcl(atlas: AtlasRunner, project: Path) -> None:
    before = sorted(p.name for p in (project / "migrations").iterdir())
    result = atlas("migrate", "diff", "check", "--env", "local", cwd=project)
    assert "The migration directory is synced with the desired state" in result.stdout
    assert sorted(p.name for p in (project / "migrations").iterdir()) == before


def test_migrate_validate_passes(atlas: AtlasRunner) -> None:
    result = atlas("migrate", "validate", "--env", "local", check=False)
    assert result.exit_code == 0, result.stderr
