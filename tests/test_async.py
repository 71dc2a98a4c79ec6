"""AsyncDatabase under concurrency: a bounded pool, cancellation, nothing opened early, and a FastAPI app."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

import pydb
from pydb.async_database import AsyncDatabase
from pydb.config import load_settings
from tests.helpers import REPO, seed_ada_and_bob

pytestmark = pytest.mark.anyio

USERS = 50


async def _backends(url: str, admin: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    """(pid, state, transaction start, last query) of the other sessions on the test's database."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    cursor = await admin.execute(
        "SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,))
    return await cursor.fetchall()


@pytest.fixture
async def admin(pydb_database: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection of the test's own, to watch the other sessions."""
    async with await psycopg.AsyncConnection.connect(pydb_database, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def small_pool(pydb_database: str) -> AsyncIterator[AsyncDatabase]:
    """An AsyncDatabase on the test's database whose pool holds one connection (async_pool_size = 1)."""
    seed_ada_and_bob(pydb_database)
    db = pydb.connect_async(pydb_database, settings=load_settings().replace(async_pool_size=1))
    await db.reflect()
    yield db
    await db.dispose()


async def test_nothing_connects_before_the_first_query(pydb_database: str,
                                                       admin: psycopg.AsyncConnection[Any]) -> None:
    db = pydb.connect_async(pydb_database)
    assert db.engine is not None and db.query.users is not None
    assert await _backends(pydb_database, admin) == []
    assert await db.query.users.find_many() == []
    assert len(await _backends(pydb_database, admin)) == 1
    await db.dispose()
    assert repr(pydb.connect_async("postgres://app:hunter2@db.example.com/app")) == (
        "AsyncDatabase('postgres://app:***@db.example.com/app')")


async def test_200_concurrent_finds_over_a_pool_of_5(pydb_database: str, admin: psycopg.AsyncConnection[Any]) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("INSERT INTO users (email, name) SELECT 'user' || i || '@example.com', 'User ' || i "
                     "FROM generate_series(0, %s) AS i", (USERS - 1,))
        conn.execute("INSERT INTO projects (owner_id, name) SELECT id, 'project of ' || name FROM users")
    db = pydb.connect_async(pydb_database, settings=load_settings().replace(async_pool_size=5))
    pool = db.engine.sync_engine.pool
    out, most = [0], [0]

    def checkout(*_: Any) -> None:
        out[0] += 1
        most[0] = max(most[0], out[0])

    def checkin(*_: Any) -> None:
        out[0] -= 1

    sa.event.listen(pool, "checkout", checkout)
    sa.event.listen(pool, "checkin", checkin)
    users = (await db.reflect())["users"]
    by_email = db.query.users.prepare(where=users.c.email == sa.bindparam("email"), with_={"projects": True})

    async def find(i: int) -> tuple[str, list[str]]:
        email = f"user{i % USERS}@example.com"
        if i % 2:  # half of the tasks through one prepared query, interleaved with the others
            row = await by_email.first(email=email)
        else:
            row = await db.query.users.find_first(where=users.c.email == email, with_={"projects": True})
        assert row is not None
        return row["email"], [p["name"] for p in row["projects"]]

    results = await asyncio.gather(*(find(i) for i in range(200)))
    assert results == [(f"user{i % USERS}@example.com", [f"project of User {i % USERS}"]) for i in range(200)]
    assert 1 < most[0] <= 5
    assert len(await _backends(pydb_database, admin)) <= 5
    assert out[0] == 0 and pool.checkedout() == 0  # type: ignore[attr-defined]
    await db.dispose()


def _slow(db: AsyncDatabase) -> Any:
    """A where clause that keeps the server busy (pg_sleep) until the query is cancelled."""
    return sa.and_(db.tables["users"].c.email == "ada@example.com", sa.func.pg_sleep(600).is_not(None))


async def _running(url: str, admin: psycopg.AsyncConnection[Any]) -> int:
    """Wait (round trip after round trip, no timer) until a session runs pg_sleep; its pid."""
    while True:
        for pid, state, _, query in await _backends(url, admin):
            if state == "active" and "pg_sleep" in query:
                return int(pid)


async def _idle_and_reused(db: AsyncDatabase, url: str, admin: psycopg.AsyncConnection[Any], pid: int) -> None:
    """The session is idle with no transaction, and the next query runs on it."""
    [(_, state, transaction_start, _)] = [b for b in await _backends(url, admin) if b[0] == pid]
    assert (state, transaction_start) == ("idle", None)
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    ada = await db.query.users.find_first(where=db.tables["users"].c.email == "ada@example.com")
    assert ada is not None and ada["name"] == "Ada"
    [(again, state, _, query)] = await _backends(url, admin)
    assert (again, state) == (pid, "idle") and query.startswith("SELECT users.id")


async def test_a_cancelled_query_leaves_its_connection_idle_and_reusable(
    small_pool: AsyncDatabase, pydb_database: str, admin: psycopg.AsyncConnection[Any],
) -> None:
    task = asyncio.create_task(small_pool.query.users.find_first(where=_slow(small_pool)))
    pid = await _running(pydb_database, admin)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _idle_and_reused(small_pool, pydb_database, admin, pid)


async def test_a_timeout_cancels_the_query_the_same_way(
    small_pool: AsyncDatabase, pydb_database: str, admin: psycopg.AsyncConnection[Any],
) -> None:
    timeouts: list[asyncio.Timeout] = []

    async def bounded() -> None:
        async with asyncio.timeout(None) as timeout:
            timeouts.append(timeout)
            await small_pool.query.users.find_first(where=_slow(small_pool))

    task = asyncio.create_task(bounded())
    pid = await _running(pydb_database, admin)
    timeouts[0].reschedule(asyncio.get_running_loop().time())  # the deadline is now: no waiting on a clock
    with pytest.raises(TimeoutError):
        await task
    await _idle_and_reused(small_pool, pydb_database, admin, pid)


async def test_a_cancelled_transaction_is_rolled_back(
    small_pool: AsyncDatabase, pydb_database: str, admin: psycopg.AsyncConnection[Any],
) -> None:
    users = small_pool.tables["users"]

    async def write_then_wait() -> None:
        async with small_pool.begin() as conn:
            await conn.execute(sa.insert(users).values(email="eve@example.com", name="Eve"))
            await small_pool.query.users.find_first(where=_slow(small_pool), connection=conn)

    task = asyncio.create_task(write_then_wait())
    await _running(pydb_database, admin)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(state != "idle in transaction" for _, state, _, _ in await _backends(pydb_database, admin))
    assert await small_pool.query.users.find_first(where=users.c.email == "eve@example.com") is None
    assert small_pool.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def _docs_example(heading: str) -> str:
    """The Python code block under a heading of docs/python.md."""
    text = (REPO / "docs" / "python.md").read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, f"no code under {heading!r}"
    return match.group(1)


def test_the_fastapi_example_of_the_docs(pydb_database: str, tmp_path: Path) -> None:
    seed_ada_and_bob(pydb_database)
    (tmp_path / "example_app.py").write_text(_docs_example("### FastAPI"))
    client = textwrap.dedent("""
        import json
        from fastapi.testclient import TestClient
        from example_app import app

        with TestClient(app) as client:
            ada = client.get("/users/ada@example.com")
            nobody = client.get("/users/nobody@example.com")
        print(json.dumps([ada.status_code, ada.json(), nobody.status_code, nobody.json()]))
    """)
    env = dict(os.environ, DATABASE_URL=pydb_database, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    result = subprocess.run([sys.executable, "-c", client], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    status, ada, missing, error = json.loads(result.stdout)
    assert (status, ada["name"], ada["role"]) == (200, "Ada", "admin")
    assert sorted(p["name"] for p in ada["projects"]) == ["Analytical engine", "Notes"]
    assert (missing, error) == (404, {"detail": "no user nobody@example.com"})


def test_the_async_default_is_lazy_and_typed_by_the_module(pydb_database: str) -> None:
    script = textwrap.dedent("""
        import asyncio, sys
        import pydb
        from pydb import async_db
        assert "sqlalchemy" in sys.modules and async_db.engine is not None
        async def main() -> None:
            ada = await async_db.query.users.find_first(with_={"projects": True})
            print(ada is None, sorted(async_db.tables))
            await async_db.dispose()
        asyncio.run(main())
    """)
    env = dict(os.environ, DATABASE_URL=pydb_database)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True ['ai_usage_log', 'projects', 'users']\n"


def test_the_pool_has_the_size_of_the_setting(tmp_path: Path) -> None:
    (tmp_path / "schema.hcl").write_text("")
    (tmp_path / "pyproject.toml").write_text("[tool.pydb]\nasync_pool_size = 3\n")
    db = pydb.connect_async("postgresql://app@127.0.0.1/app", settings=load_settings(tmp_path, {}))
    assert db.engine.sync_engine.pool.size() == 3  # type: ignore[attr-defined]
