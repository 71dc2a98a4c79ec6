"""Database: a Neon-aware SQLAlchemy engine, reflected tables and relational queries for one URL."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pydb.config import Settings, load_settings
from pydb.errors import ConnectError, QueryError, driver_message, driver_sqlstate, translate_driver_errors
from pydb.retry import Backoff
from pydb.urls import (
    database_name,
    host,
    is_local_host,
    is_neon_host,
    is_pooled_host,
    mask_password,
    port,
    query_params,
    to_sqlalchemy,
    username,
)

if TYPE_CHECKING:
    from pydb.query import QueryRoot

log = logging.getLogger("pydb")

DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_WAKE_SECONDS = 15.0
# SQLSTATEs that retrying cannot fix: bad password, unknown role or database, no permission.
_FATAL_SQLSTATES = {"28P01", "28000", "3D000", "42501"}


class Database:
    """One PostgreSQL database: engine, connections, reflected tables and `query.<table>`."""

    def __init__(
        self,
        url: str,
        *,
        wake_seconds: float = DEFAULT_WAKE_SECONDS,
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
        prepared_statements: bool | None = None,
        schema: str = "public",
        settings: Settings | None = None,
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
        self._engine_options = engine_options
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._read_connections: list[Any] = []
        # (MetaData, name -> Table, catalog fingerprint), read once; refresh() forgets it
        self._reflected: tuple[sa.MetaData, dict[str, sa.Table], str] | None = None
        self._query: QueryRoot | None = None

    def __repr__(self) -> str:
        return f"Database({mask_password(self.url)!r})"

    # -- engine and connections ----------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (psycopg 3), created on first use."""
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in query_params(self.url):
            connect_args["connect_timeout"] = self.connect_timeout
        if not self.prepared_statements:
            connect_args["prepare_threshold"] = None
        # No hstore columns here: skip the type lookup SQLAlchemy would make on the first connect.
        options: dict[str, Any] = {"connect_args": connect_args, "use_native_hstore": False}
        if is_neon_host(host(self.url)) or not is_local_host(host(self.url)):
            # A scaled-to-zero compute closes idle connections: test a pooled one before using it.
            options["pool_pre_ping"] = True
        options.update(self._engine_options)
        engine = sa.create_engine(to_sqlalchemy(self.url), **options)
        event.listen(engine, "do_connect", self._connect_with_retry)
        return engine

    def _connect_with_retry(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        """Open a DBAPI connection, retrying with backoff while a compute wakes up (bounded)."""
        import psycopg

        backoff = Backoff(0.25, cap=4.0, budget=self.wake_seconds)
        while True:
            try:
                return dialect.loaded_dbapi.connect(*cargs, **cparams)
            except psycopg.OperationalError as err:
                reason = driver_message(err)
                sqlstate = driver_sqlstate(err)
                # libpq reports no SQLSTATE for a refused login, only its own words for it.
                fatal = sqlstate in _FATAL_SQLSTATES or "password authentication failed" in reason
                pause = None if fatal else backoff.next_pause()
                if pause is None:
                    raise ConnectError(
                        f"cannot connect to {mask_password(self.url)}"
                        + ("" if fatal else f" after {backoff.pauses + 1} attempts")
                        + f": {mask_password(reason)}",
                        sqlstate=sqlstate, url=mask_password(self.url),
                    ) from None
                log.warning(
                    "connecting to %s failed (%s); retrying in %.2fs", mask_password(self.url),
                    mask_password(reason), pause,
                )
                backoff.wait(pause)

    def connect(self) -> Connection:
        """Return a new connection (use it as a context manager)."""
        return self.engine.connect()

    @property
    def read_engine(self) -> Engine:
        """The engine in autocommit mode, sharing the pool: reads without BEGIN/ROLLBACK round trips."""
        if self._read_engine is None:
            self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._read_engine

    def fetch_all(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one compiled SELECT on this thread's autocommit read connection; rows as dicts."""
        import psycopg

        try:
            cursor = self._read_connection().execute(sql, params, prepare=self.prepared_statements)
        except psycopg.OperationalError:
            # A suspended compute or a restarted server closes idle connections: reads retry once.
            self._close_read_connection()
            cursor = self._read_connection().execute(sql, params, prepare=self.prepared_statements)
        names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

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

    # -- tables ------------------------------------------------------------------------------

    def _reflection(self) -> tuple[sa.MetaData, dict[str, sa.Table], str]:
        if self._reflected is None:
            from pydb.reflect import load_tables

            with translate_driver_errors(self.url, "cannot read the tables"), self.connect() as conn:
                metadata, printed = load_tables(conn, _cache_key(self.url), self.schema,
                                                folder=self.settings.cache_folder)
            self._reflected = (metadata, {table.name: table for table in metadata.sorted_tables}, printed)
        return self._reflected

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
        self._query = None

    @property
    def query(self) -> QueryRoot:
        """Relational queries: `db.query.users.find_first(where=..., with_={"projects": True})`."""
        if self._query is None:
            from pydb.query import QueryRoot

            self._query = QueryRoot(self)
        return self._query


def _cache_key(url: str) -> str:
    return f"{host(url)}:{port(url)}:{database_name(url)}:{username(url)}"


def connect(url: str | None = None, *, settings: Settings | None = None, **options: Any) -> Database:
    """Return a Database for url, else DATABASE_URL, else the running local database."""
    from pydb.config import resolve_url

    settings = settings or load_settings()
    return Database(resolve_url(url, settings), settings=settings, **options)
