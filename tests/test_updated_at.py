"""updated_at follows the database's clock on every update made through pydb's tables."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

import pydb


def test_update_sets_updated_at_to_the_transactions_now(pydb_database: str) -> None:
    db = pydb.connect(pydb_database)
    users = db.tables["users"]
    with db.begin() as conn:
        uid = conn.execute(
            sa.insert(users).values(email="ada@example.com", name="Ada").returning(users.c.id)
        ).scalar_one()
        created, updated = conn.execute(sa.select(users.c.created_at, users.c.updated_at)).one()
        # an insert leaves the column to its default: the same now() as created_at
        assert updated == created
    with db.begin() as conn:
        conn.execute(sa.update(users).where(users.c.id == uid).values(name="Ada L."))
        db_now = conn.execute(sa.select(sa.func.now())).scalar_one()
        created, updated = conn.execute(sa.select(users.c.created_at, users.c.updated_at)).one()
    assert updated == db_now
    assert updated > created
    db.dispose()


def test_an_explicit_value_wins(pydb_database: str) -> None:
    db = pydb.connect(pydb_database)
    users, projects = db.tables["users"], db.tables["projects"]
    chosen = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with db.begin() as conn:
        uid = conn.execute(sa.insert(users).values(email="a@b.c", name="A").returning(users.c.id)).scalar_one()
        conn.execute(sa.insert(projects).values(owner_id=uid, name="p"))
        conn.execute(sa.update(projects).values(name="q", updated_at=chosen))
        assert conn.execute(sa.select(projects.c.updated_at)).scalar_one() == chosen


def test_the_sql_says_now_not_a_client_timestamp(pydb_database: str) -> None:
    db = pydb.connect(pydb_database)
    users = db.tables["users"]
    sql = str(sa.update(users).values(name="x").compile(db.engine))
    assert "updated_at=now()" in sql
    # tables without the column are left alone
    usage = db.tables["ai_usage_log"]
    assert "now()" not in str(sa.update(usage).values(model="x").compile(db.engine))
    db.dispose()
