"""A readable description of what a database holds: tables, columns, indexes, foreign keys, enums."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


def describe(url: str, schema: str = "public") -> SchemaInfo:
    """Return the tables, columns, indexes, foreign keys and enums of a schema in a live database."""
    from sqlalchemy import inspect
    from sqlalchemy.pool import NullPool

    from pydb.database import Database

    engine = Database(url, poolclass=NullPool).engine
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            names = sorted(n for n in insp.get_table_names(schema) if n != "atlas_schema_revisions")
            kinds = {"schema": schema, "filter_names": names}
            columns = insp.get_multi_columns(**kinds)  # type: ignore[arg-type]
            pks = insp.get_multi_pk_constraint(**kinds)  # type: ignore[arg-type]
            indexes = insp.get_multi_indexes(**kinds)  # type: ignore[arg-type]
            fks = insp.get_multi_foreign_keys(**kinds)  # type: ignore[arg-type]
            enums = {e["name"]: list(e["labels"]) for e in insp.get_enums(schema)}  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    dialect = engine.dialect
    tables = []
    for name in names:
        key = (schema, name)
        cols = [
            ColumnInfo(c["name"], c["type"].compile(dialect=dialect), bool(c["nullable"]), c.get("default"))
            for c in columns.get(key, [])
        ]
        idx = [
            f"{i['name']} ({', '.join(str(c) for c in i['column_names'])})" + (" unique" if i["unique"] else "")
            for i in indexes.get(key, [])
        ]
        fk = [
            f"{f['name']}: ({', '.join(f['constrained_columns'])}) -> {f['referred_table']}"
            f"({', '.join(f['referred_columns'])})"
            + (f" on delete {f['options']['ondelete'].lower()}" if f["options"].get("ondelete") else "")
            for f in fks.get(key, [])
        ]
        pk: dict[str, Any] = dict(pks.get(key) or {})
        tables.append(TableInfo(name, cols, list(pk.get("constrained_columns") or []), idx, fk))
    return SchemaInfo(tables, enums)


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
