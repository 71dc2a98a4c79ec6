"""pydb: schema-as-code for PostgreSQL and Neon, with SQLAlchemy Core access to the tables.

    from pydb import db, users, projects
    from sqlalchemy import select
    with db.connect() as conn:
        conn.execute(select(users).where(users.c.email == "ada@example.com"))

Nothing connects at import time. Module attributes resolve lazily, by this rule:
- `pydb.db` is the default Database (DATABASE_URL, else the running local database), and
  `pydb.async_db` the default AsyncDatabase of the same URL (`await async_db.query.users.find_first()`);
- a name of one of pydb's own modules (`pydb.seed`, `pydb.query`, `pydb.config`, ...) is that module;
- any other name is a table of the default database (`pydb.users`), or an AttributeError listing them.
A table whose name is one of pydb's modules is reached as `pydb.db.tables["seed"]`.

For type checkers, `db` and the tables are those of the typed module `pydb generate` writes
(pydb/schema.py): `users.c.email` is a `Column[str]` and `db.query.users.find_first(...)` returns a
`UsersRow | None`. The default database checks on first use that its tables have the column types
that module promises (pydb.types.verify).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from pydb.errors import PydbError

if TYPE_CHECKING:
    from pydb.async_database import AsyncDatabase
    from pydb.database import Database
    from pydb.schema import *  # noqa: F403  (db, async_db and the tables, typed: `pydb generate`)

__all__ = ["AsyncDatabase", "Database", "PydbError", "async_db", "connect", "connect_async", "db"]  # noqa: F405

_default: Database | None = None
_default_async: AsyncDatabase | None = None
_MODULES = frozenset(module.name for module in pkgutil.iter_modules(__path__))  # noqa: F405


def connect(url: str | None = None, **options: Any) -> Database:
    """Return a Database for url, else DATABASE_URL, else the running local database."""
    from pydb.database import connect as _connect

    return _connect(url, **options)


def connect_async(url: str | None = None, **options: Any) -> AsyncDatabase:
    """Return an AsyncDatabase for url, else DATABASE_URL, else the running local database (nothing connects yet)."""
    from pydb.async_database import connect_async as _connect_async

    return _connect_async(url, **options)


def _default_async_database() -> AsyncDatabase:
    global _default_async
    if _default_async is None:
        from pydb.types import Promises

        _default_async = connect_async(expected_columns=Promises())
    return _default_async


def _default_database() -> Database:
    global _default
    if _default is None:
        from pydb.types import Promises

        _default = connect(expected_columns=Promises())
    return _default


if not TYPE_CHECKING:  # type checkers see the typed names above; unknown names are errors for them

    def __getattr__(name: str) -> Any:
        if name == "db":
            return _default_database()
        if name == "async_db":
            return _default_async_database()
        if name == "Database":
            from pydb.database import Database

            return Database
        if name == "AsyncDatabase":
            from pydb.async_database import AsyncDatabase

            return AsyncDatabase
        if name in _MODULES:
            return importlib.import_module(f"{__name__}.{name}")
        if name.startswith("_"):
            raise AttributeError(name)
        return _default_database().table(name)
