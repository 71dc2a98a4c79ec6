"""The generic shapes a generated typed module fills in: JSON values, query options, typed tables and databases.

A generated module (pydb/schema.py) declares, per table, a `Columns` protocol with one typed
attribute per column, and types `db` as `TypedDatabase[Query]`, `async_db` as
`TypedAsyncDatabase[AsyncQuery]` and each table as `Table[...Columns]`. At run time these are
pydb's ordinary objects (a reflected sqlalchemy.Table, a Database): `Table`, `TypedDatabase` and
`TypedAsyncDatabase` exist for type checkers only (import them under `if TYPE_CHECKING:`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

import sqlalchemy as sa

if TYPE_CHECKING:
    from pydb.async_database import AsyncDatabase
    from pydb.database import Database

__all__ = ["Columns", "Json", "OrderBy", "Where"]  # and, for type checkers: Table, TypedDatabase, TypedAsyncDatabase

Json: TypeAlias = dict[str, "Json"] | list["Json"] | str | int | float | bool | None
"""A JSON value as psycopg decodes json and jsonb columns."""

Where: TypeAlias = sa.ColumnElement[bool]
"""The `where=` of a query: a boolean SQL expression (`users.c.email == "ada@example.com"`)."""

OrderBy: TypeAlias = sa.ColumnElement[Any] | Sequence[sa.ColumnElement[Any]]
"""The `order_by=` of a query: an expression or a list of them (`projects.c.name.desc()`)."""


class Columns(Protocol):
    """What the typed columns of every table have besides one attribute per column."""

    def __getitem__(self, key: str) -> sa.Column[Any]: ...

    def __iter__(self) -> Iterator[sa.Column[Any]]: ...

    def __contains__(self, key: str) -> bool: ...

    def keys(self) -> list[str]: ...


ColumnsT = TypeVar("ColumnsT", bound=Columns)
QueryT = TypeVar("QueryT")


if TYPE_CHECKING:

    class Table(sa.Table, Generic[ColumnsT]):
        """A reflected table whose `c` (and `columns`) has one typed attribute per column."""

        c: ColumnsT  # type: ignore[assignment]
        columns: ColumnsT  # type: ignore[assignment]

    class TypedDatabase(Database, Generic[QueryT]):
        """A Database whose `query` has one typed attribute per table."""

        query: QueryT  # type: ignore[assignment]

    class TypedAsyncDatabase(AsyncDatabase, Generic[QueryT]):
        """An AsyncDatabase whose `query` has one typed attribute per table."""

        query: QueryT  # type: ignore[assignment]
