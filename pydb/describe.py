"""A readable description of what a database holds: tables, columns, indexes, foreign keys, enums."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from pydb.config import Settings


@dataclass(frozen=True)
class ColumnInfo:
    """One column: name, SQL type, nullability and default."""

    name: str
    type: str
    nullable: bool
    default: str | None


@dataclass(frozen=True)
class TableInfo:
    """One table with its columns, primary key, indexes and foreign keys."""

    name: str
    columns: list[ColumnInfo]
    primary_key: list[str]
    indexes: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SchemaInfo:
    """Every table of a schema, plus its enum types."""

    tables: list[TableInfo]
    enums: dict[str, list[str]]


def describe(url: str, schema: str = "public", *, settings: Settings | None = None) -> SchemaInfo:
    """Return the tables, columns, indexes, foreign keys and enums of a schema in a live database."""
    from sqlalchemy.pool import NullPool

    from pydb.database import Database

    db = Database(url, schema=schema, settings=settings, poolclass=NullPool)
    try:
        return schema_info(db.tables.values(), db.engine.dialect)
    finally:
        db.dispose()


def schema_info(tables: Iterable[sa.Table], dialect: sa.Dialect) -> SchemaInfo:
    """Describe reflected tables (by name) and the enum types their columns use."""
    ordered = sorted(tables, key=lambda t: t.name)
    return SchemaInfo([_table_info(table, dialect) for table in ordered], _enums(ordered))


def _table_info(table: sa.Table, dialect: sa.Dialect) -> TableInfo:
    columns = [
        ColumnInfo(c.name, c.type.compile(dialect=dialect), bool(c.nullable), _default(c))
        for c in table.columns
    ]
    indexes = [
        f"{index.name} ({', '.join(_index_part(e) for e in index.expressions)})" + (" unique" if index.unique else "")
        for index in sorted(table.indexes, key=lambda i: str(i.name))
    ]
    keys = [
        f"{fk.name}: ({', '.join(c.name for c in fk.columns)}) -> {fk.referred_table.name}"
        f"({', '.join(e.column.name for e in fk.elements)})"
        + (f" on delete {fk.ondelete.lower()}" if fk.ondelete else "")
        for fk in sorted(table.foreign_key_constraints, key=lambda k: str(k.name))
    ]
    return TableInfo(table.name, columns, [c.name for c in table.primary_key.columns], indexes, keys)


def _default(column: sa.Column[Any]) -> str | None:
    default = column.server_default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    return str(getattr(arg, "text", arg))


def _index_part(expression: Any) -> str:
    return expression.name if isinstance(expression, sa.Column) else str(expression)


def _enums(tables: list[sa.Table]) -> dict[str, list[str]]:
    """The enum types the tables' columns use, with their labels."""
    found: dict[str, list[str]] = {}
    for table in tables:
        for column in table.columns:
            if isinstance(column.type, sa.Enum) and column.type.name:
                found[column.type.name] = list(column.type.enums)
    return found


def format_schema(info: SchemaInfo) -> str:
    """Render a SchemaInfo as indented text for people."""
    lines: list[str] = []
    for enum, labels in sorted(info.enums.items()):
        lines.append(f"enum {enum}: {', '.join(labels)}")
    for table in info.tables:
        lines.append(f"table {table.name}")
        width = max((len(c.name) for c in table.columns), default=0)
        for col in table.columns:
            flags = []
            if col.name in table.primary_key:
                flags.append("primary key")
            flags.append("null" if col.nullable else "not null")
            if col.default is not None:
                flags.append(f"default {col.default}")
            lines.append(f"  {col.name.ljust(width)}  {col.type.lower()}  {', '.join(flags)}")
        for index in table.indexes:
            lines.append(f"  index {index}")
        for fk in table.foreign_keys:
            lines.append(f"  foreign key {fk}")
    if not info.tables:
        lines.append("(no tables)")
    return "\n".join(lines)
