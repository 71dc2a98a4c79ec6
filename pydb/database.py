"""Database: a Neon-aware SQLAlchemy engine, reflected tables and relational queries for one URL.

`BaseDatabase` is what the sync `Database` here and `pydb.async_database.AsyncDatabase` share: the
URL and its Neon facts, the engine options, the bounded wake-up retry, and the reflected tables
with the check of a typed module's promises. Relational queries are planned and decoded by
pydb.query; the classes at the end of this module (QueryRoot, TableQuery, PreparedQuery) only run
those plans on a connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, Unpack, cast

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pydb.config import Settings, load_settings
from pydb.errors import (
    QueryError,
    TypesError,
    translate_driver_errors,
)
from pydb.query import Compiled, Plan, Planner, QueryOptions, Row, RowT, first_of
from pydb.relations import Relation
from pydb.retry import DEFAULT_CONNECT_TIMEOUT, DEFAULT_WAKE_SECONDS, connect_retrying, connect_timeout
from pydb.types import Promises
from pydb.urls import (
    database_name,
    host,
    is_local_host,
    is_neon_host,
    is_pooled_host,
    mask_password,
    port,
    username,
)

__all__ = ["BaseDatabase", "Database", "PreparedQuery", "QueryRoot", "TableQuery", "connect", "find_rows"]

log = logging.getLogger("pydb")



class BaseDatabase:
    """What a sync and an async database share: URL, Neon options, wake-up retry, tables and their check."""

    def __init__(
        self,
        url: str,
        *,
        wake_seconds: float = DEFAULT_WAKE_SECONDS,
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
        prepared_statements: bool | None = None,
        schema: str = "public",
        settings: Settings | None = None,
        expected_columns: Mapping[str, Mapping[str, str]] | Promises | None = None,
        **engine_options: Any,
    ) -> None:
        self.url = url
        self.schema = schema
        self.settings = settings or load_settings()
        self.wake_seconds = wake_seconds
        self.connect_timeout = connect_timeout
        hostname = host(url)
        self.pooled = is_pooled_host(hostname)
        # PgBouncer in transaction mode cannot keep server-side prepared statements per client.
        self.prepared_statements = (not self.pooled) if prepared_statements is None else prepared_statements
        # table -> column -> Python type a typed module promises; checked when the tables are read
        promised = expected_columns
        self.promises = promised if promised is None or isinstance(promised, Promises) else Promises(promised)
        self._engine_options = engine_options
        # (MetaData, name -> Table, catalog fingerprint), read once; refresh() forgets it
        self._reflected: tuple[sa.MetaData, dict[str, sa.Table], str] | None = None
        self._planner: Planner | None = None
        self._setup()

    def _setup(self) -> None:
        """Set up what the sync or async side keeps of its own (nothing connects here)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({mask_password(self.url)!r})"

    # -- engines ------------------------------------------------------------------------------

    def _engine_kwargs(self, **defaults: Any) -> dict[str, Any]:
        """The options of this database's engine (sync or async): Neon-aware connect arguments, then the caller's."""
        connect_args: dict[str, Any] = connect_timeout(self.url, self.connect_timeout)
        if not self.prepared_statements:
            connect_args["prepare_threshold"] = None
        # No hstore columns here: skip the type lookup SQLAlchemy would make on the first connect.
        options: dict[str, Any] = {"connect_args": connect_args, "use_native_hstore": False, **defaults}
        if is_neon_host(host(self.url)) or not is_local_host(host(self.url)):
            # A scaled-to-zero compute closes idle connections: test a pooled one before using it.
            options["pool_pre_ping"] = True
        options.update(self._engine_options)
        return options

    def _listen(self, engine: Engine) -> None:
        event.listen(engine, "do_connect", self._connect_with_retry)

    def _pause(self, seconds: float) -> None:
        """Wait between two connection attempts (the async database waits without blocking its loop)."""
        time.sleep(seconds)

    def _connect_with_retry(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        """Open a DBAPI connection, retrying with backoff while a compute wakes up (bounded)."""
        return connect_retrying(self.url, lambda: dialect.loaded_dbapi.connect(*cargs, **cparams),
                                wake_seconds=self.wake_seconds, sleep=self._pause)

    # -- tables ------------------------------------------------------------------------------

    def _reflection(self) -> tuple[sa.MetaData, dict[str, sa.Table], str]:
        raise NotImplementedError

    def _keep(self, metadata: sa.MetaData, printed: str) -> tuple[sa.MetaData, dict[str, sa.Table], str]:
        """Keep what reflection read, after checking it against the typed module's promises."""
        tables = {table.name: table for table in metadata.sorted_tables}
        mark = self._checked_mark(printed)
        checked = self.promises is None or (mark is not None and mark.exists())
        expected = None if checked or self.promises is None else self.promises.columns()
        if expected is not None:
            from pydb.types.verify import mismatches

            problems = mismatches(expected, tables)
            if problems:
                raise TypesError(
                    f"the typed module pydb/schema.py does not match {self!r}: {'; '.join(problems)}. Bring the "
                    "database up to schema.hcl (`atlas schema apply --env local`, or `atlas migrate apply`), or "
                    "the module up to the schema (`pydb generate`)"
                )
            if mark is not None:
                with contextlib.suppress(OSError):
                    mark.parent.mkdir(parents=True, exist_ok=True)
                    mark.touch()
        self._reflected = (metadata, tables, printed)
        self._planner = None
        return self._reflected

    def _checked_mark(self, printed: str) -> Path | None:
        """The file that says this typed module was checked against this catalog already (None: no cache)."""
        folder = self.settings.cache_folder
        digest = self.promises.digest if self.promises is not None else None
        if folder is None or digest is None:
            return None
        name = hashlib.sha256(f"{self._cache_key}:{self.schema}:{printed}:{digest}".encode()).hexdigest()[:24]
        return folder / f"checked-{name}"

    @property
    def _cache_key(self) -> str:
        return f"{host(self.url)}:{port(self.url)}:{database_name(self.url)}:{username(self.url)}"

    @property
    def metadata(self) -> sa.MetaData:
        """The reflected MetaData of the schema (cached; refreshed by refresh())."""
        return self._reflection()[0]

    @property
    def tables(self) -> dict[str, sa.Table]:
        """Table name → sqlalchemy.Table for every table of the schema, in foreign-key order."""
        return self._reflection()[1]

    @property
    def fingerprint(self) -> str:
        """The catalog fingerprint (pydb.reflect) of the schema the tables were read from."""
        return self._reflection()[2]

    def table(self, name: str) -> sa.Table:
        """Return one table; an unknown name raises QueryError (an AttributeError) listing the tables."""
        tables = self.tables
        if name not in tables:
            raise QueryError(f"no table {name!r} in {self!r}; tables: {', '.join(sorted(tables)) or 'none'}")
        return tables[name]

    def refresh(self) -> None:
        """Forget the reflected schema so the next use reads it again."""
        self._reflected = None
        self._planner = None

    def _planner_for(self, dialect: sa.Dialect) -> Planner:
        if self._planner is None:
            self._planner = Planner(self.tables, dialect)
        return self._planner


class Database(BaseDatabase):
    """One PostgreSQL database: engine, connections, reflected tables and `query.<table>`."""

    def _setup(self) -> None:
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._read_connections: list[Any] = []
        self._query: QueryRoot | None = None

    # -- engine and connections ----------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (psycopg 3), created on first use."""
        if self._engine is None:
            from pydb.urls import to_sqlalchemy

            self._engine = sa.create_engine(to_sqlalchemy(self.url), **self._engine_kwargs())
            self._listen(self._engine)
        return self._engine

    def connect(self) -> Connection:
        """Return a new connection (use it as a context manager)."""
        return self.engine.connect()

    @property
    def read_engine(self) -> Engine:
        """The engine in autocommit mode, sharing the pool: reads without BEGIN/ROLLBACK round trips."""
        if self._read_engine is None:
            self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._read_engine

    def select(self, sql: str, params: Mapping[str, Any],
               connection: Connection | None = None) -> list[dict[str, Any]]:
        """Run a compiled SELECT on your connection (your transaction), else as fetch_all does; rows as mappings."""
        if connection is not None:
            return [dict(row) for row in connection.exec_driver_sql(sql, params).mappings()]
        return self.fetch_all(sql, params)

    def fetch_all(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run one compiled SELECT on this thread's autocommit read connection; rows as dicts."""
        with translate_driver_errors(self.url):
            driver = self._read_connection()
            try:
                return _fetch(driver, sql, params, self.prepared_statements)
            except psycopg.OperationalError:
                if not driver.closed:
                    raise
                # A suspended compute or a restarted server closes idle connections: reads retry once.
                self._close_read_connection()
                return _fetch(self._read_connection(), sql, params, self.prepared_statements)

    def _read_connection(self) -> Any:
        """This thread's (and process's) own driver connection in autocommit, for prepared queries."""
        held = getattr(self._local, "read", None)
        if held is not None and held[0] == os.getpid() and not held[1].closed:
            return held[1]
        pooled = self.engine.raw_connection()
        driver: Any = pooled.driver_connection
        pooled.detach()  # ours from now on (we close it): the pool opens another when it needs one
        driver.autocommit = True
        self._local.read = (os.getpid(), driver)
        with self._lock:
            self._read_connections.append(driver)
        return driver

    def _close_read_connection(self) -> None:
        held = getattr(self._local, "read", None)
        self._local.read = None
        if held is not None and held[0] == os.getpid():
            with contextlib.suppress(Exception):
                held[1].close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """Yield a connection in a transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection, and the read connections of prepared queries."""
        with self._lock:
            held, self._read_connections = self._read_connections, []
        for driver in held:
            with contextlib.suppress(Exception):
                driver.close()
        if self._engine is not None:
            self._engine.dispose()

    # -- tables and queries ----------------------------------------------------------------------

    def _reflection(self) -> tuple[sa.MetaData, dict[str, sa.Table], str]:
        if self._reflected is None:
            from pydb.reflect import load_tables

            with translate_driver_errors(self.url, "cannot read the tables"), self.connect() as conn:
                metadata, printed = load_tables(conn, self._cache_key, self.schema,
                                                folder=self.settings.cache_folder)
            return self._keep(metadata, printed)
        return self._reflected

    @property
    def planner(self) -> Planner:
        """The query planner of this database's tables (pydb.query)."""
        return self._planner_for(self.engine.dialect)

    def refresh(self) -> None:
        """Forget the reflected schema so the next use reads it again."""
        super().refresh()
        self._query = None

    @property
    def query(self) -> QueryRoot:
        """Relational queries: `db.query.users.find_first(where=..., with_={"projects": True})`."""
        if self._query is None:
            self._query = QueryRoot(self)
        return self._query


def _fetch(driver: psycopg.Connection[Any], sql: str, params: Mapping[str, Any], prepare: bool) -> list[dict[str, Any]]:
    with driver.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql, params, prepare=prepare)
        return cursor.fetchall()


class QueryRoot:
    """`db.query`: one TableQuery per table, by attribute."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def relations(self) -> dict[str, dict[str, Relation]]:
        """Table name → relation name → Relation."""
        return self._db.planner.relations()

    def table(self, name: str) -> TableQuery:
        """The queries of one table, by name (QueryError listing the tables when there is none)."""
        return TableQuery(self._db, self._db.planner.table(name))

    def __getattr__(self, name: str) -> TableQuery:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.table(name)

    def __dir__(self) -> list[str]:
        return sorted(self._db.tables)


class TableQuery:
    """Queries rooted at one table: planned by pydb.query, run on this database."""

    def __init__(self, db: Database, table: sa.Table) -> None:
        self._db = db
        self.table = table

    def statement(self, **options: Unpack[QueryOptions]) -> sa.Select[Any]:
        """Return the one SELECT that find_many would send."""
        return self._db.planner.plan(self.table, options).statement

    def find_many(self, *, connection: Connection | None = None, **options: Unpack[QueryOptions]) -> list[Row]:
        """Return the matching rows, each with the relations named in with_, in one round trip.

        Pass `connection` to read inside your own transaction; otherwise a pooled connection is used
        in autocommit mode (no BEGIN/ROLLBACK round trips for a read).
        """
        sql, params, decoder = self._db.planner.call(self.table, options)
        return decoder.rows(self._db.select(sql, params, connection))

    def find_first(self, *, connection: Connection | None = None, **options: Unpack[QueryOptions]) -> Row | None:
        """Return the first matching row with its relations, or None."""
        rows = self.find_many(connection=connection, **first_of(options))
        return rows[0] if rows else None

    def prepare(self, **options: Unpack[QueryOptions]) -> PreparedQuery[Row]:
        """Compile a query once, with `sqlalchemy.bindparam("name")` placeholders, for hot paths.

        `q = db.query.users.prepare(where=users.c.id == bindparam("id"))`, then `q.first(id=...)`
        or `q.all(id=...)`: the SQL is compiled once and sent as a server-side prepared statement
        (off on pooled hosts).
        """
        plan = self._db.planner.plan(self.table, options)
        return PreparedQuery(self._db, plan, Compiled(plan.statement, self._db.engine.dialect))


class PreparedQuery(Generic[RowT]):
    """A query compiled once; run it with values for its bindparam placeholders."""

    def __init__(self, db: Database, plan: Plan, compiled: Compiled) -> None:
        self._db = db
        self._plan = plan
        self._compiled = compiled
        self.statement = plan.statement
        self.sql = compiled.sql

    def all(self, **params: Any) -> list[RowT]:
        """Return every matching row (with relations) for these parameter values."""
        sql, values = self._compiled.render(params)
        return cast("list[RowT]", self._plan.decoder.rows(self._db.fetch_all(sql, values)))

    def first(self, **params: Any) -> RowT | None:
        """Return the first matching row, or None."""
        rows = self.all(**params)
        return rows[0] if rows else None


def find_rows(
    table: str, equal: Mapping[str, str], relations: Iterable[str] = (), *, limit: int = 1,
    url: str | None = None, settings: Settings | None = None,
) -> list[Row]:
    """Rows of a table whose columns equal text values (as typed on a command line), with relations: `pydb find`."""
    from pydb.query import where_equal

    db = connect(url, settings=settings)
    try:
        query = db.query.table(table)
        return query.find_many(where=where_equal(query.table, equal), limit=limit,
                               with_={name: True for name in relations})
    finally:
        db.dispose()


def connect(url: str | None = None, *, settings: Settings | None = None, **options: Any) -> Database:
    """Return a Database for url, else DATABASE_URL, else the running local database."""
    from pydb.config import resolve_url

    settings = settings or load_settings()
    return Database(resolve_url(url, settings), settings=settings, **options)
