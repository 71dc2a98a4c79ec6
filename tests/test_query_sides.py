"""Relational queries on both sides: the sync Database and the AsyncDatabase give the same rows, in one statement.

Each test runs twice (`side`): on `pydb.connect()` and on `pydb.connect_async()`, the async calls
awaited. Statements are counted where they leave the process, at psycopg's cursors.
"""

from __future__ import annotations

import datetime as dt
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from decimal import Decimal
from typing import Any, TypeVar, cast

import pytest
import sqlalchemy as sa

import pydb
from pydb.async_database import AsyncDatabase
from pydb.database import Database
from pydb.errors import QueryError
from tests.helpers import StatementLog, seed_ada_and_bob

pytestmark = pytest.mark.anyio

T = TypeVar("T")
AnyDatabase = Database | AsyncDatabase


async def settle(value: Awaitable[T] | T) -> T:
    """The value of a sync call, or of an awaited async one: one test body for both sides."""
    if inspect.isawaitable(value):
        return cast("T", await value)
    return value


@pytest.fixture(params=["sync", "async"])
async def db(request: pytest.FixtureRequest, pydb_database: str) -> AsyncIterator[AnyDatabase]:
    """Ada (two projects, three usage rows) and Bob (none), on a Database or an AsyncDatabase, tables read."""
    seed_ada_and_bob(pydb_database)
    if request.param == "sync":
        database = pydb.connect(pydb_database)
        assert database.tables
        yield database
        database.dispose()
    else:
        async_database = pydb.connect_async(pydb_database)
        await async_database.reflect()
        yield async_database
        await async_database.dispose()


@pytest.fixture
def sent() -> Iterator[list[str]]:
    """Every statement psycopg's cursors (sync and async) send while the test runs."""
    with StatementLog() as log:
        yield log.statements


async def _ada_tree(db: AnyDatabase) -> dict[str, Any] | None:
    users, projects, usage = (db.tables[n] for n in ("users", "projects", "ai_usage_log"))
    return await settle(db.query.users.find_first(
        where=users.c.email == "ada@example.com",
        with_={"projects": {"order_by": projects.c.name, "with_": {"owner": {"columns": ["email", "role"]}}},
               "ai_usage_log": {"order_by": usage.c.tokens_used}},
    ))


def _typed(value: Any) -> Any:
    """A value with the type of every part spelled out, so equal values of other types differ."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


async def test_a_user_with_two_levels_of_relations_is_one_statement(db: AnyDatabase, sent: list[str]) -> None:
    sent.clear()
    ada = await _ada_tree(db)
    assert len(sent) == 1 and sent[0].startswith("SELECT users.id")
    assert ada is not None
    assert [p["name"] for p in ada["projects"]] == ["Analytical engine", "Notes"]
    assert ada["projects"][1]["owner"] == {"email": "ada@example.com", "role": "admin"}
    row = ada["ai_usage_log"][1]
    assert isinstance(row["id"], uuid.UUID) and isinstance(row["tokens_used"], int)
    assert isinstance(row["created_at"], dt.datetime) and row["created_at"].tzinfo is not None
    assert row["estimated_cost"] == Decimal("0.000121") and isinstance(row["estimated_cost"], Decimal)


async def test_both_sides_return_equal_rows_of_equal_types(pydb_database: str) -> None:
    seed_ada_and_bob(pydb_database)
    sync_db, async_db = pydb.connect(pydb_database), pydb.connect_async(pydb_database)
    try:
        projects = sync_db.tables["projects"]
        await async_db.reflect()
        trees = [await _ada_tree(sync_db), await _ada_tree(async_db)]
        assert trees[0] is not None and _typed(trees[0]) == _typed(trees[1])
        lists = [await settle(d.query.projects.find_many(order_by=projects.c.name, with_={"owner": True}))
                 for d in (sync_db, async_db)]
        assert len(lists[0]) == 2 and _typed(lists[0]) == _typed(lists[1])
    finally:
        sync_db.dispose()
        await async_db.dispose()


async def test_where_in_limit_offset_and_nested_filters(db: AnyDatabase) -> None:
    users, projects, usage = (db.tables[n] for n in ("users", "projects", "ai_usage_log"))
    both = await settle(db.query.users.find_many(where=users.c.email.in_(["ada@example.com", "bob@example.com"]),
                                                 order_by=users.c.email, columns=["name"]))
    assert both == [{"name": "Ada"}, {"name": "Bob"}]
    rows = await settle(db.query.ai_usage_log.find_many(where=usage.c.tokens_used >= 10, limit=1, offset=1,
                                                        order_by=usage.c.tokens_used.desc(), columns=["tokens_used"]))
    assert rows == [{"tokens_used": 10}]
    for status, expected in (("active", ["Analytical engine"]), ("archived", ["Notes"])):
        found = await settle(db.query.users.find_first(where=users.c.email == "ada@example.com", with_={
            "projects": {"where": projects.c.status == status, "columns": ["name"]}}))
        assert found is not None and [p["name"] for p in found["projects"]] == expected
    assert await settle(db.query.users.find_first(where=users.c.email == "nobody@example.com")) is None


async def test_a_prepared_query_matches_find_first(db: AnyDatabase, sent: list[str]) -> None:
    users, projects = db.tables["users"], db.tables["projects"]
    with_ = {"projects": {"order_by": projects.c.name, "with_": {"owner": {"columns": ["email"]}}}}
    prepared = db.query.users.prepare(where=users.c.email == sa.bindparam("email"), with_=with_)
    expected = await settle(db.query.users.find_first(where=users.c.email == "ada@example.com", with_=with_))
    sent.clear()
    assert await settle(prepared.first(email="ada@example.com")) == expected
    assert len(sent) == 1
    assert await settle(prepared.first(email="nobody@example.com")) is None
    assert [r["email"] for r in await settle(prepared.all(email="bob@example.com"))] == ["bob@example.com"]


async def test_unknown_names_say_what_exists(db: AnyDatabase) -> None:
    with pytest.raises(QueryError, match="no table 'user'; tables: ai_usage_log, projects, users"):
        await settle(db.query.user.find_first())
    with pytest.raises(QueryError, match="users has no relation 'project'; relations: ai_usage_log, projects"):
        await settle(db.query.users.find_first(with_={"project": True}))
    with pytest.raises(QueryError, match="users has no column 'mail'; columns: id, email"):
        await settle(db.query.users.find_first(columns=["mail"]))


async def test_updates_set_updated_at_to_the_database_clock(db: AnyDatabase) -> None:
    users = db.tables["users"]
    change = sa.update(users).where(users.c.email == "bob@example.com").values(name="Robert")
    stamps = sa.select(sa.func.now(), users.c.created_at, users.c.updated_at).where(users.c.email == "bob@example.com")
    if isinstance(db, AsyncDatabase):
        async with db.begin() as aconn:
            await aconn.execute(change)
            now, created, updated = (await aconn.execute(stamps)).one()
    else:
        with db.begin() as conn:
            conn.execute(change)
            now, created, updated = conn.execute(stamps).one()
    assert updated == now and updated > created
    assert "updated_at=now()" in str(change.compile(dialect=db.engine.dialect))


async def test_find_inside_your_own_transaction(db: AnyDatabase) -> None:
    users = db.tables["users"]
    eve = users.c.email == "eve@example.com"
    if isinstance(db, AsyncDatabase):
        async with db.begin() as aconn:
            await aconn.execute(sa.insert(users).values(email="eve@example.com", name="Eve"))
            mine = await db.query.users.find_first(where=eve, connection=aconn)
            others = await db.query.users.find_first(where=eve)
    else:
        with db.begin() as conn:
            conn.execute(sa.insert(users).values(email="eve@example.com", name="Eve"))
            mine = db.query.users.find_first(where=eve, connection=conn)
            others = db.query.users.find_first(where=eve)
    assert mine is not None and mine["name"] == "Eve"
    assert others is None  # not committed yet: another connection does not see it
