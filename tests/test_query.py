"""Relational queries: one statement per call, right Python types, clear errors."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import pydb
from pydb.database import Database
from pydb.errors import QueryError
from tests.helpers import StatementLog


@pytest.fixture
def db(pydb_database: str) -> Iterator[Database]:
    """A Database on this test's own copy, holding Ada (2 projects, 3 usage rows) and Bob (none)."""
    database = pydb.connect(pydb_database)
    users, projects, usage = (database.tables[n] for n in ("users", "projects", "ai_usage_log"))
    with database.begin() as conn:
        ada = conn.execute(
            sa.insert(users).values(email="ada@example.com", name="Ada", role="admin").returning(users.c.id)
        ).scalar_one()
        conn.execute(sa.insert(users).values(email="bob@example.com", name="Bob"))
        conn.execute(sa.insert(projects), [
            {"owner_id": ada, "name": "Analytical engine", "status": "active"},
            {"owner_id": ada, "name": "Notes", "description": "on the engine", "status": "archived"},
        ])
        conn.execute(sa.insert(usage), [
            {"user_id": ada, "model": "m-small", "tokens_used": 10 * i, "estimated_cost": Decimal(f"0.00012{i}"),
             "endpoint": "/chat"}
            for i in range(3)
        ])
    yield database
    database.dispose()


def _plain(db: Database, table: str, where: Any, order: Any = None) -> list[dict[str, Any]]:
    t = db.tables[table]
    with db.connect() as conn:
        stmt = sa.select(t).where(where)
        if order is not None:
            stmt = stmt.order_by(order)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def test_user_with_projects_and_usage_is_one_statement(db: Database) -> None:
    users, projects, usage = db.tables["users"], db.tables["projects"], db.tables["ai_usage_log"]
    with StatementLog() as log:
        ada = db.query.users.find_first(
            where=users.c.email == "ada@example.com",
            with_={"projects": {"order_by": projects.c.name}, "ai_usage_log": {"order_by": usage.c.tokens_used}},
        )
    assert len(log.statements) == 1
    assert ada is not None
    [expected_user] = _plain(db, "users", users.c.email == "ada@example.com")
    expected_projects = _plain(db, "projects", projects.c.owner_id == ada["id"], projects.c.name)
    expected_usage = _plain(db, "ai_usage_log", usage.c.user_id == ada["id"], usage.c.tokens_used)
    assert {k: v for k, v in ada.items() if k not in ("projects", "ai_usage_log")} == expected_user
    assert ada["projects"] == expected_projects
    assert ada["ai_usage_log"] == expected_usage
    # the types survive JSON, not only the values
    row = ada["ai_usage_log"][1]
    assert isinstance(row["id"], uuid.UUID)
    assert isinstance(row["created_at"], dt.datetime) and row["created_at"].tzinfo is not None
    assert row["estimated_cost"] == Decimal("0.000121") and isinstance(row["estimated_cost"], Decimal)
    assert isinstance(row["tokens_used"], int)
    assert ada["role"] == "admin"


def test_two_levels_of_nesting_is_one_statement(db: Database) -> None:
    users, projects = db.tables["users"], db.tables["projects"]
    with StatementLog() as log:
        rows = db.query.users.find_many(
            order_by=users.c.email,
            columns=["id", "email"],
            with_={"projects": {"columns": ["name"], "order_by": projects.c.name.desc(), "limit": 1,
                                "with_": {"owner": {"columns": ["email", "role"]}}}},
        )
    assert len(log.statements) == 1
    assert [r["email"] for r in rows] == ["ada@example.com", "bob@example.com"]
    assert rows[0]["projects"] == [{"name": "Notes", "owner": {"email": "ada@example.com", "role": "admin"}}]
    assert rows[1]["projects"] == []


def test_child_to_parent_relation(db: Database) -> None:
    projects = db.tables["projects"]
    project = db.query.projects.find_first(
        where=projects.c.status == "archived", columns=["name"], with_={"owner": {"columns": ["name"]}}
    )
    assert project == {"name": "Notes", "owner": {"name": "Ada"}}


def test_where_limit_offset(db: Database) -> None:
    usage = db.tables["ai_usage_log"]
    rows = db.query.ai_usage_log.find_many(
        where=usage.c.tokens_used >= 10, order_by=usage.c.tokens_used.desc(), limit=1, offset=1,
        columns=["tokens_used"],
    )
    assert rows == [{"tokens_used": 10}]
    assert db.query.users.find_first(where=db.tables["users"].c.email == "nobody@example.com") is None


def test_unknown_names_say_what_exists(db: Database) -> None:
    with pytest.raises(QueryError, match="no table 'user'; tables: ai_usage_log, projects, users"):
        db.query.user  # noqa: B018
    with pytest.raises(QueryError, match="users has no relation 'project'; relations: ai_usage_log, projects"):
        db.query.users.find_first(with_={"project": True})
    with pytest.raises(QueryError, match="users has no column 'mail'; columns: id, email"):
        db.query.users.find_first(columns=["mail"])
    with pytest.raises(QueryError, match="unknown option"):
        db.query.users.find_first(with_={"projects": {"limt": 1}})


def test_relation_names_follow_foreign_keys(db: Database) -> None:
    relations = db.query.relations()
    assert set(relations["users"]) == {"projects", "ai_usage_log"}
    assert set(relations["projects"]) == {"owner"}
    assert set(relations["ai_usage_log"]) == {"user"}


def test_self_reference_and_two_keys_to_one_parent(pydb_database: str) -> None:
    import psycopg

    with psycopg.connect(pydb_database) as conn:
        conn.execute(
            "CREATE TABLE categories (id int PRIMARY KEY, parent_id int REFERENCES categories(id), name text);"
            "CREATE TABLE reviews (id int PRIMARY KEY, author_id uuid REFERENCES users(id),"
            " reviewer_id uuid REFERENCES users(id));"
            "INSERT INTO categories VALUES (1, NULL, 'root'), (2, 1, 'child'), (3, 1, 'other')"
        )
    db = pydb.connect(pydb_database)
    relations = db.query.relations()
    assert set(relations["categories"]) == {"parent", "categories"}
    assert {"reviews_by_author", "reviews_by_reviewer"} <= set(relations["users"])
    cats = db.tables["categories"]
    root = db.query.categories.find_first(
        where=cats.c.id == 1, columns=["name"], with_={"categories": {"columns": ["name"], "order_by": cats.c.id}}
    )
    assert root == {"name": "root", "categories": [{"name": "child"}, {"name": "other"}]}
    child = db.query.categories.find_first(where=cats.c.id == 2, columns=["name"], with_={"parent": True})
    assert child is not None and child["parent"]["name"] == "root"
    db.dispose()


def test_a_prepared_query_matches_find_first(db: Database) -> None:
    users, projects = db.tables["users"], db.tables["projects"]
    with_ = {"projects": {"order_by": projects.c.name, "with_": {"owner": {"columns": ["email"]}}}}
    prepared = db.query.users.prepare(where=users.c.email == sa.bindparam("email"), with_=with_)
    expected = db.query.users.find_first(where=users.c.email == "ada@example.com", with_=with_)
    assert prepared.first(email="ada@example.com") == expected
    assert prepared.first(email="nobody@example.com") is None
    assert [r["email"] for r in prepared.all(email="bob@example.com")] == ["bob@example.com"]


def test_find_inside_your_own_transaction(db: Database) -> None:
    users = db.tables["users"]
    with db.begin() as conn:
        conn.execute(sa.insert(users).values(email="eve@example.com", name="Eve"))
        mine = db.query.users.find_first(where=users.c.email == "eve@example.com", connection=conn)
        others = db.query.users.find_first(where=users.c.email == "eve@example.com")
        assert mine is not None and mine["name"] == "Eve"
        assert others is None  # not committed yet: another connection does not see it


def test_pydb_find_prints_a_tree(db: Database) -> None:
    from tests.helpers import run_pydb

    result = run_pydb("find", "users", "--where", "email=ada@example.com", "--with", "projects",
                      "--url", db.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "users"
    assert "  email           ada@example.com" in lines
    assert "  projects (2)" in lines
    assert sum(1 for line in lines if line.startswith("    - id")) == 2
    bad = run_pydb("find", "users", "--with", "project", "--url", db.url)
    assert bad.returncode == 1
    assert bad.stderr == "Error: users has no relation 'project'; relations: ai_usage_log, projects\n"


def test_prepared_queries_survive_a_closed_connection_and_threads_get_their_own(db: Database) -> None:
    import contextlib
    import threading

    import psutil
    import psycopg

    users = db.tables["users"]
    by_email = db.query.users.prepare(where=users.c.email == sa.bindparam("email"), columns=["name"])
    with psycopg.connect(db.url, autocommit=True) as admin:

        def readers() -> set[int]:
            """Backends of this database that ran the prepared query (pg_stat_activity keeps the last query)."""
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND query LIKE %s", (by_email.sql.split("FROM")[0].strip() + "%",)).fetchall()
            return {pid for (pid,) in rows}

        assert by_email.first(email="ada@example.com") == {"name": "Ada"}
        (mine,) = readers()
        # the server ends the session (as a suspended compute or a restart would): the next read reconnects
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (mine,))  # returns once the session is gone
        assert by_email.first(email="bob@example.com") == {"name": "Bob"}
        (current,) = readers()
        assert current != mine

        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(by_email.first(email="ada@example.com")))
        thread.start()
        thread.join()
        assert seen == [{"name": "Ada"}]
        sessions = readers()
        assert len(sessions) == 2 and current in sessions  # the thread read on a connection of its own
        db.dispose()
        # dispose closed both: their server processes end (the server notices the closed sockets)
        processes = []
        for pid in sessions:
            with contextlib.suppress(psutil.NoSuchProcess):  # already gone
                processes.append(psutil.Process(pid))
        _gone, alive = psutil.wait_procs(processes, timeout=30)
        assert alive == []


def test_nested_filters_with_values_are_never_served_from_the_statement_cache(db: Database) -> None:
    users, projects = db.tables["users"], db.tables["projects"]
    ada = users.c.email == "ada@example.com"
    cases = (("active", ["Analytical engine"]), ("archived", ["Notes"]), ("active", ["Analytical engine"]))
    for status, expected in cases:
        found = db.query.users.find_first(where=ada, with_={"projects": {
            "where": projects.c.status == status, "order_by": projects.c.name, "columns": ["name"]}})
        assert found is not None and [p["name"] for p in found["projects"]] == expected
