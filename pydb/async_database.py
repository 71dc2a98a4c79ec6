"""AsyncDatabase: the async twin of pydb.database.Database, for asyncio applications.

Same URL rules, masking, Neon options and wake-up retry (pydb.database.BaseDatabase), on psycopg 3's
async driver through SQLAlchemy's AsyncEngine, with a bounded pool (`async_pool_size`, default 5,
no overflow). Relational queries are planned and decoded by pydb.query, exactly as for the sync
side; only running them differs. Reads go to psycopg directly on a pooled connection in autocommit:
when a task is cancelled mid-query, psycopg cancels the statement on the server and the connection
goes back to the pool idle, with no transaction open. Nothing connects until the first query.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, Unpack, cast

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from pydb.config import Settings, load_settings
from pydb.database import BaseDatabase
from pydb.errors import QueryError, translate_driver_errors
from pydb.query import Compiled, Plan, Planner, QueryOptions, Row, RowT, first_of
from pydb.relations import Relation
from pydb.tuning import checkin
from pydb.urls import to_sqlalchemy

__all__ = ["AsyncDatabase", "AsyncPreparedQuery", "AsyncQueryRoot", "AsyncTableQuery", "connect_async"]


class AsyncDatabase(BaseDatabase):
    """One PostgreSQL database for asyncio code: pooled AsyncEngine, reflected tables and `query.<table>`."""

    def _setup(self) -> None:
        self._engine: AsyncEngine | None = None
        self._reflecting = asyncio.Lock()
        self._query: AsyncQueryRoot | None = None

    def _pause(self, seconds: float) -> None:
        # Called by the connect retry inside SQLAlchemy's greenlet: wait on the event loop, not the thread.
        await_only(asyncio.sleep(seconds))

    # -- engine and connections ----------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy AsyncEngine (psycopg 3 async), created on first use; its pool never grows past its size."""
        if self._engine is None:
            # LIFO: the connection used last (its backend warm, its statements prepared) serves the next read.
            options = self._engine_kwargs(pool_size=self.settings.async_pool_size, max_overflow=0, pool_use_lifo=True)
            self._engine = create_async_engine(to_sqlalchemy(self.url), **options)
            self._listen(self._engine.sync_engine)
        return self._engine

    def connect(self) -> AsyncConnection:
        """Return a new connection: `async with db.connect() as conn:`."""
        return self.engine.connect()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """Yield a connection in a transaction: committed on success, rolled back on error or cancellation."""
        async with self.engine.begin() as conn:
            yield conn

    async def fetch_all(self, sql: str, params: Mapping[str, Any], *, prepare: bool | None = None,
                        connection: AsyncConnection | None = None) -> list[dict[str, Any]]:
        """Run one compiled SELECT on connection, else on a pooled connection in autocommit; rows as dicts."""
        with translate_driver_errors(self.url):
            if connection is not None:
                return await _fetch(await _driver(connection), sql, params, prepare)
            async with self._reading() as driver:
                try:
                    return await _fetch(driver, sql, params, prepare)
                except psycopg.OperationalError:
                    if not driver.closed:
                        raise
            # The server had closed that pooled connection (a suspended compute, a restart): it goes back to
            # the pool as broken, and the read runs once more on another one.
            async with self._reading() as driver:
                return await _fetch(driver, sql, params, prepare)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled driver connection in autocommit for one read, given back idle and as SQLAlchemy lent it."""
        pooled = await self.engine.raw_connection()
        driver = cast("psycopg.AsyncConnection[Any]", pooled.driver_connection)
        try:
            await driver.set_autocommit(True)
            yield driver
        except BaseException:
            # Also when cancelled: psycopg has cancelled the statement and waited for the connection to be idle.
            await asyncio.shield(_give_back(pooled, driver))
            raise
        await _give_back(pooled, driver)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._engine is not None:
            await self._engine.dispose()

    # -- tables and queries ----------------------------------------------------------------------

    async def reflect(self) -> dict[str, sa.Table]:
        """Read the tables (once; queries do it on first use) and return them by name."""
        async with self._reflecting:
            if self._reflected is None:
                from pydb.reflect import load_tables

                folder = self.settings.cache_folder
                with translate_driver_errors(self.url, "cannot read the tables"):
                    async with self.engine.connect() as conn:
                        metadata, printed = await conn.run_sync(
                            lambda sync: load_tables(sync, self._cache_key, self.schema, folder=folder))
                self._keep(metadata, printed)
        return self.tables

    @property
    def reflected(self) -> bool:
        """Whether the tables have been read (by `reflect()` or a first query)."""
        return self._reflected is not None

    def _reflection(self) -> tuple[sa.MetaData, dict[str, sa.Table], str]:
        if self._reflected is None:
            raise QueryError(f"the tables of {self!r} are not read yet: `await db.reflect()` first "
                             "(queries read them on first use)")
        return self._reflected

    async def planner(self) -> Planner:
        """The query planner of this database's tables (read on first use)."""
        if self._reflected is None:
            await self.reflect()
        return self._planner_for(self.engine.dialect)

    @property
    def query(self) -> AsyncQueryRoot:
        """Relational queries: `await db.query.users.find_first(where=..., with_={"projects": True})`."""
        if self._query is None:
            self._query = AsyncQueryRoot(self)
        return self._query


async def _give_back(pooled: Any, driver: psycopg.AsyncConnection[Any]) -> None:
    if driver.closed:
        await checkin(pooled, broken=True)
        return
    await driver.set_autocommit(False)  # as the pool lent it: SQLAlchemy's transactions rely on it
    await checkin(pooled)


async def _driver(connection: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    raw = await connection.get_raw_connection()
    return cast("psycopg.AsyncConnection[Any]", raw.driver_connection)


async def _fetch(driver: psycopg.AsyncConnection[Any], sql: str, params: Mapping[str, Any],
                 prepare: bool | None) -> list[dict[str, Any]]:
    async with driver.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql, params, prepare=prepare)
        return await cursor.fetchall()


class AsyncQueryRoot:
    """`db.query` of an AsyncDatabase: one AsyncTableQuery per table, by attribute (checked on first use)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._db = db

    async def relations(self) -> dict[str, dict[str, Relation]]:
        """Table name → relation name → Relation."""
        return (await self._db.planner()).relations()

    def table(self, name: str) -> AsyncTableQuery:
        """The queries of one table, by name (an unknown name is a QueryError on first use)."""
        return AsyncTableQuery(self._db, name)

    def __getattr__(self, name: str) -> AsyncTableQuery:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.table(name)


class AsyncTableQuery:
    """Awaited queries rooted at one table: planned by pydb.query, run on the async database."""

    def __init__(self, db: AsyncDatabase, name: str) -> None:
        self._db = db
        self.name = name

    async def statement(self, **options: Unpack[QueryOptions]) -> sa.Select[Any]:
        """Return the one SELECT that find_many would send."""
        planner = await self._db.planner()
        return planner.plan(planner.table(self.name), options).statement

    async def find_many(self, *, connection: AsyncConnection | None = None,
                        **options: Unpack[QueryOptions]) -> list[Row]:
        """Return the matching rows, each with the relations named in with_, in one round trip."""
        planner = await self._db.planner()
        sql, params, decoder = planner.call(planner.table(self.name), options)
        return decoder.rows(await self._db.fetch_all(sql, params, connection=connection))

    async def find_first(self, *, connection: AsyncConnection | None = None,
                         **options: Unpack[QueryOptions]) -> Row | None:
        """Return the first matching row with its relations, or None."""
        rows = await self.find_many(connection=connection, **first_of(options))
        return rows[0] if rows else None

    def prepare(self, **options: Unpack[QueryOptions]) -> AsyncPreparedQuery[Row]:
        """A query compiled once (on first use), with `bindparam("name")` placeholders: `await q.first(name=...)`."""
        return AsyncPreparedQuery(self, options)


class AsyncPreparedQuery(Generic[RowT]):
    """A query compiled once; await it with values for its bindparam placeholders."""

    def __init__(self, query: AsyncTableQuery, options: Mapping[str, Any]) -> None:
        self._query = query
        self._options = options
        self._ready: tuple[Plan, Compiled] | None = None
        if query._db.reflected:
            self._ready = self._compile(query._db._planner_for(query._db.engine.dialect))

    def _compile(self, planner: Planner) -> tuple[Plan, Compiled]:
        plan = planner.plan(planner.table(self._query.name), self._options)
        return plan, Compiled(plan.statement, planner.dialect)

    async def _compiled(self) -> tuple[Plan, Compiled]:
        if self._ready is None:
            self._ready = self._compile(await self._query._db.planner())
        return self._ready

    @property
    def sql(self) -> str:
        """The SQL text, once compiled (at prepare() when the tables are read, else on the first run)."""
        if self._ready is None:
            raise QueryError("this prepared query is compiled on its first run (or prepare after `await db.reflect()`)")
        return self._ready[1].sql

    async def all(self, **params: Any) -> list[RowT]:
        """Return every matching row (with relations) for these parameter values."""
        plan, compiled = await self._compiled()
        sql, values = compiled.render(params)
        db = self._query._db
        return cast("list[RowT]", plan.decoder.rows(await db.fetch_all(sql, values, prepare=db.prepared_statements)))

    async def first(self, **params: Any) -> RowT | None:
        """Return the first matching row, or None."""
        rows = await self.all(**params)
        return rows[0] if rows else None


def connect_async(url: str | None = None, *, settings: Settings | None = None, **options: Any) -> AsyncDatabase:
    """Return an AsyncDatabase for url, else DATABASE_URL, else the running local database (nothing connects yet)."""
    from pydb.config import resolve_url

    settings = settings or load_settings()
    return AsyncDatabase(resolve_url(url, settings), settings=settings, **options)
