"""pydb seed: validation (every error with its file:line:col, nothing written), idempotence, refs, order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from pydb.errors import SeedError
from pydb.seed import check_seed, load_seed
from tests.helpers import GOOD, snapshot


def problems_of(url: str, path: str) -> list[str]:
    """Load a seed file that must fail; return its problems, and check that nothing was written."""
    before = snapshot(url)
    with pytest.raises(SeedError) as info:
        load_seed(path, url)
    assert snapshot(url) == before
    return [str(p) for p in info.value.problems]


def checked_problems(tables: dict[str, sa.Table], path: str) -> list[str]:
    """Check a seed file that must fail against the schema, without a database; return its problems."""
    with pytest.raises(SeedError) as info:
        check_seed(Path(path), tables)
    return [str(p) for p in info.value.problems]


# -- validation: one test per kind of error ---------------------------------------------------------


def test_unknown_table(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD + "userz:\n  - name: x\n")
    assert checked_problems(schema_tables, path) == ['seed.yaml:19:1: userz: no such table (did you mean "users"?)']


def test_unknown_column_suggests_the_closest(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file("users:\n  - email: a@example.com\n    name: A\n    emial_verified: true\n")
    assert checked_problems(schema_tables, path) == [
        'seed.yaml:4:5: users.emial_verified: no such column (did you mean "email_verified"?)']


def test_wrong_uuid(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file("projects:\n  - owner_id: not-a-uuid\n    name: P\n")
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:2:15: projects.owner_id: expected a uuid, got 'not-a-uuid'"]


def test_wrong_integer(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("tokens_used: 1200", "tokens_used: lots"))
    assert checked_problems(schema_tables, path) == ["seed.yaml:16:18: ai_usage_log.tokens_used: expected an integer, "
                                                "got 'lots'"]


def test_integer_out_of_range(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("tokens_used: 1200", "tokens_used: 3000000000"))
    assert checked_problems(schema_tables, path) == ["seed.yaml:16:18: ai_usage_log.tokens_used: 3000000000 is out of "
                                                "range for INTEGER"]


def test_wrong_numeric(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("estimated_cost: 0.0123", "estimated_cost: cheap"))
    assert checked_problems(schema_tables, path) == ["seed.yaml:17:21: ai_usage_log.estimated_cost: expected a number, "
                                                "got 'cheap'"]


def test_wrong_boolean(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file("users:\n  - email: a@example.com\n    name: A\n    email_verified: yes\n")
    assert checked_problems(schema_tables, path) == ["seed.yaml:4:21: users.email_verified: expected true or false, "
                                                "got 'yes'"]


def test_wrong_timestamp(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("created_at: 2025-01-06T09:30:00Z", "created_at: yesterday"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:18:17: ai_usage_log.created_at: expected a timestamp (ISO 8601, e.g. 2025-01-31T09:30:00Z), "
        "got 'yesterday'"]


def test_wrong_enum_label(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("role: admin", "role: boss"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:5:11: users.role: 'boss' is not a value of user_role (one of: user, admin)"]


def test_missing_required_column(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("    name: Ada\n", ""))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:6:5: users: missing required column 'name' (NOT NULL, no default)"]


def test_null_in_not_null_column(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("name: Ada", "name: null"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:8:11: users.name: cannot be null (the column is NOT NULL)"]


def test_too_long_for_varchar(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("model: gpt-4o", "model: " + "m" * 101))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:15:12: ai_usage_log.model: 101 characters, longer than the column's 100"]


def test_duplicate_id(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("_id: launch", "_id: ada"))
    assert checked_problems(schema_tables, path) == ["seed.yaml:10:10: duplicate _id 'ada' (first at seed.yaml:6:10)"]


def test_unknown_ref(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("!ref admin", "!ref admn"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:11:15: projects.owner_id: !ref admn: no row has _id 'admn' (did you mean \"admin\"?)"]


def test_ref_to_a_row_of_the_wrong_table(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("user_id: !ref ada", "user_id: !ref launch"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:14:14: ai_usage_log.user_id: !ref launch: is a row of projects, but the column references users"]


def test_duplicate_rows_under_a_unique_key(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file(GOOD.replace("ada@example.com", "admin@example.com"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:6:5: users: duplicate row: unique key (email) = (admin@example.com) is already used by the row "
        "at seed.yaml:2:5"]


def test_duplicate_rows_by_content(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    row = "  - user_id: !ref ada\n    model: m\n    tokens_used: 1\n"
    path = seed_file(GOOD + row + row)
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:22:5: ai_usage_log: duplicate row: the same values as the row at seed.yaml:19:5"]


def test_yaml_syntax_error(schema_tables: dict[str, sa.Table], seed_file: Any) -> None:
    path = seed_file("users:\n  - email: a@example.com\n    name: [unclosed\n")
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:4:1: YAML syntax error: while parsing a flow sequence: did not find expected ',' or ']'"]


def test_env_unset_is_an_error(
    schema_tables: dict[str, sa.Table], seed_file: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SEED_TEST_HASH", raising=False)
    path = seed_file(GOOD.replace("name: Admin", "name: Admin\n    password_hash: !env SEED_TEST_HASH"))
    assert checked_problems(schema_tables, path) == [
        "seed.yaml:5:20: users.password_hash: environment variable SEED_TEST_HASH is not set "
        "(set it, or give a default: `!env SEED_TEST_HASH:-VALUE`)"]


def test_env_value_and_default(pydb_database: str, seed_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_TEST_HASH", "from-env")
    monkeypatch.delenv("SEED_TEST_OTHER", raising=False)
    path = seed_file(GOOD.replace("name: Admin", "name: Admin\n    password_hash: !env SEED_TEST_HASH")
                     .replace("name: Ada", "name: Ada\n    password_hash: !env SEED_TEST_OTHER:-fallback"))
    load_seed(path, pydb_database)
    with psycopg.connect(pydb_database) as conn:
        rows = conn.execute("SELECT email, password_hash FROM users ORDER BY email").fetchall()
    assert rows == [("ada@example.com", "fallback"), ("admin@example.com", "from-env")]


def test_all_problems_at_once_in_file_order(pydb_database: str, seed_file: Any) -> None:
    text = (GOOD.replace("role: admin", "role: boss").replace("name: Launch plan", "nme: Launch plan")
            .replace("!ref ada", "!ref nobody"))
    path = seed_file(text)
    assert problems_of(pydb_database, path) == [
        "seed.yaml:5:11: users.role: 'boss' is not a value of user_role (one of: user, admin)",
        "seed.yaml:10:5: projects: missing required column 'name' (NOT NULL, no default)",
        'seed.yaml:12:5: projects.nme: no such column (did you mean "name"?)',
        "seed.yaml:14:14: ai_usage_log.user_id: !ref nobody: no row has _id 'nobody' (_id: ada, admin, launch)",
    ]


def test_error_names_the_cycle(pydb_database: str, seed_file: Any) -> None:
    with psycopg.connect(pydb_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE cyc_a (id uuid PRIMARY KEY, b_id uuid)")
        conn.execute("CREATE TABLE cyc_b (id uuid PRIMARY KEY, a_id uuid REFERENCES cyc_a)")
        conn.execute("ALTER TABLE cyc_a ADD FOREIGN KEY (b_id) REFERENCES cyc_b")
    path = seed_file(GOOD + "cyc_a:\n  - _id: a1\n    b_id: !ref b1\ncyc_b:\n  - _id: b1\n    a_id: !ref a1\n")
    assert problems_of(pydb_database, path) == [
        "seed.yaml:19:1: foreign keys form a cycle: cyc_a -> cyc_b -> cyc_a (cyc_a.b_id -> cyc_b, "
        "cyc_b.a_id -> cyc_a); seed these tables from separate files, or drop one of these foreign keys"]


# -- loading ------------------------------------------------------------------------------------------


def test_first_run_inserts_and_second_run_changes_nothing(pydb_database: str, seed_file: Any) -> None:
    path = seed_file(GOOD)
    first = load_seed(path, pydb_database)
    assert [(t.table, t.inserted, t.updated, t.unchanged) for t in first.tables] == [
        ("users", 2, 0, 0), ("projects", 1, 0, 0), ("ai_usage_log", 1, 0, 0)]
    before = snapshot(pydb_database)
    second = load_seed(path, pydb_database)
    assert [(t.table, t.inserted, t.updated, t.unchanged) for t in second.tables] == [
        ("users", 0, 0, 2), ("projects", 0, 0, 1), ("ai_usage_log", 0, 0, 1)]
    assert snapshot(pydb_database) == before  # same row versions: not even a no-op UPDATE


def test_changed_value_updates_exactly_that_row(pydb_database: str, seed_file: Any) -> None:
    load_seed(seed_file(GOOD), pydb_database)
    before = snapshot(pydb_database)
    with psycopg.connect(pydb_database) as conn:
        old_stamp = conn.execute("SELECT updated_at FROM users WHERE email = 'ada@example.com'").fetchone()
    report = load_seed(seed_file(GOOD.replace("name: Ada", "name: Ada Lovelace")), pydb_database)
    assert [(t.table, t.inserted, t.updated, t.unchanged) for t in report.tables] == [
        ("users", 0, 1, 1), ("projects", 0, 0, 1), ("ai_usage_log", 0, 0, 1)]
    after = snapshot(pydb_database)
    assert after["projects"] == before["projects"] and after["ai_usage_log"] == before["ai_usage_log"]
    changed = [row for row in after["users"] if row not in before["users"]]
    assert len(changed) == 1 and changed[0][3] == "Ada Lovelace"
    with psycopg.connect(pydb_database) as conn:
        stamp = conn.execute("SELECT updated_at, now() FROM users WHERE email = 'ada@example.com'").fetchone()
    assert old_stamp is not None and stamp is not None and old_stamp[0] < stamp[0] <= stamp[1]


def test_refs_forward_and_across_tables(pydb_database: str, seed_file: Any) -> None:
    text = """\
        ai_usage_log:
          - user_id: !ref grace
            model: m
            tokens_used: 5
        projects:
          - owner_id: !ref grace
            name: Compiler
        users:
          - _id: grace
            email: grace@example.com
            name: Grace
        """
    load_seed(seed_file(text), pydb_database)
    with psycopg.connect(pydb_database) as conn:
        (user_id,) = conn.execute("SELECT id FROM users").fetchone() or (None,)
        assert conn.execute("SELECT owner_id FROM projects").fetchall() == [(user_id,)]
        assert conn.execute("SELECT user_id FROM ai_usage_log").fetchall() == [(user_id,)]


def test_row_found_by_unique_key_keeps_its_id_and_refs_follow(pydb_database: str, seed_file: Any) -> None:
    with psycopg.connect(pydb_database) as conn:
        row = conn.execute("INSERT INTO users (email, name) VALUES ('ada@example.com', 'Old') RETURNING id").fetchone()
    assert row is not None
    report = load_seed(seed_file(GOOD.replace("!ref admin", "!ref ada")), pydb_database)
    assert next((t.table, t.inserted, t.updated, t.unchanged) for t in report.tables) == ("users", 1, 1, 0)
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT name FROM users WHERE id = %s", (row[0],)).fetchone() == ("Ada",)
        assert conn.execute("SELECT owner_id FROM projects").fetchall() == [(row[0],)]
        assert conn.execute("SELECT user_id FROM ai_usage_log").fetchall() == [(row[0],)]


def test_explicit_primary_key_is_used(pydb_database: str, seed_file: Any) -> None:
    text = "users:\n  - id: 0b2f3c4d-0000-4000-8000-000000000001\n    email: e@example.com\n    name: E\n"
    load_seed(seed_file(text), pydb_database)
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT id::text FROM users").fetchall() == [("0b2f3c4d-0000-4000-8000-000000000001",)]


def test_dry_run_writes_nothing_and_reports(pydb_database: str, seed_file: Any) -> None:
    path = seed_file(GOOD)
    load_seed(path, pydb_database)
    changed = seed_file(GOOD.replace("name: Ada", "name: Ada L.") + "  - user_id: !ref admin\n    model: x\n"
                        "    tokens_used: 1\n")
    before = snapshot(pydb_database)
    report = load_seed(changed, pydb_database, dry_run=True)
    assert report.dry_run
    assert [(t.table, t.inserted, t.updated, t.unchanged) for t in report.tables] == [
        ("users", 0, 1, 1), ("projects", 0, 0, 1), ("ai_usage_log", 1, 0, 1)]
    assert snapshot(pydb_database) == before


def test_reset_deletes_rows_of_seeded_tables_first(pydb_database: str, seed_file: Any) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES ('stray@example.com', 'Stray')")
    report = load_seed(seed_file(GOOD), pydb_database, reset=True)
    assert [(t.table, t.deleted, t.inserted) for t in report.tables] == [
        ("users", 1, 2), ("projects", 0, 1), ("ai_usage_log", 0, 1)]
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE email = 'stray@example.com'").fetchone() == (0,)


def test_yaml_merge_keys_and_typed_text(pydb_database: str, seed_file: Any) -> None:
    text = """\
        users:
          - &base
            email: a@example.com
            name: 01234
            email_verified: false
          - <<: *base
            email: b@example.com
        """
    load_seed(seed_file(text), pydb_database)
    with psycopg.connect(pydb_database) as conn:
        rows = conn.execute("SELECT email, name, email_verified FROM users ORDER BY email").fetchall()
    assert rows == [("a@example.com", "01234", False), ("b@example.com", "01234", False)]


def test_self_reference_roots_first(pydb_database: str, seed_file: Any) -> None:
    with psycopg.connect(pydb_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE categories (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
                     " name text UNIQUE NOT NULL, parent_id uuid REFERENCES categories)")
    text = """\
        categories:
          - _id: leaf
            name: Leaf
            parent_id: !ref root
          - _id: root
            name: Root
        """
    path = seed_file(text)
    load_seed(path, pydb_database)
    assert [(t.inserted, t.unchanged) for t in load_seed(path, pydb_database).tables] == [(0, 2)]
    with psycopg.connect(pydb_database) as conn:
        rows = conn.execute("SELECT c.name, p.name FROM categories c LEFT JOIN categories p ON p.id = c.parent_id"
                            " ORDER BY 1").fetchall()
    assert rows == [("Leaf", "Root"), ("Root", None)]
