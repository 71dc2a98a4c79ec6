"""A readable description of what a database holds, and what of it schema.hcl cannot carry.

Tables, columns, indexes, foreign keys and CHECK constraints come from pydb's reflection; the rest
(partitions, domains, views, functions, triggers, sequences no column owns) from one catalog query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pydb.catalog import FROM_PARTITIONS

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
    checks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SchemaObject:
    """An object of the schema other than a table's columns and keys: partition, view, trigger, domain, ..."""

    kind: str  # partitioned table, partition, view, materialized view, function, trigger, domain, sequence
    name: str
    detail: str
    table: str | None = None  # the table it belongs to (partitions, triggers)


@dataclass(frozen=True)
class SchemaInfo:
    """Every table of a schema, its enum types, and its other objects."""

    tables: list[TableInfo]
    enums: dict[str, list[str]]
    objects: list[SchemaObject] = field(default_factory=list)

    def unmanaged(self) -> list[SchemaObject]:
        """The objects schema.hcl cannot express with the Atlas pydb builds (v0.13.1)."""
        return [o for o in self.objects if o.kind in UNMANAGED_KINDS]


# What `atlas schema inspect` of this Atlas build leaves out or cannot carry into schema.hcl. A push or a
# migration written from schema.hcl neither creates them nor keeps their definitions: see docs/migrations.md.
UNMANAGED_KINDS = ("partition", "view", "materialized view", "function", "trigger", "domain", "sequence")

SCHEMA_OBJECTS_SQL = r"""
    SELECT 'partitioned table', c.relname, pg_get_partkeydef(c.oid), c.relname
      FROM pg_class c WHERE c.relnamespace = to_regnamespace(%(schema)s) AND c.relkind = 'p'
    UNION ALL
    SELECT 'partition', c.relname, 'of ' || p.relname || ' ' || pg_get_expr(c.relpartbound, c.oid), c.relname
      FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class p ON p.oid = i.inhparent
     WHERE c.relnamespace = to_regnamespace(%(schema)s) AND c.relispartition AND c.relkind IN ('r', 'p')
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, c.relname,
           left(regexp_replace(pg_get_viewdef(c.oid), '\s+', ' ', 'g'), 200), NULL
      FROM pg_class c WHERE c.relnamespace = to_regnamespace(%(schema)s) AND c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'function', p.proname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', NULL
      FROM pg_proc p WHERE p.pronamespace = to_regnamespace(%(schema)s)
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                       AND d.deptype = 'e')
    UNION ALL
    SELECT 'trigger', g.tgname, pg_get_triggerdef(g.oid), c.relname
      FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
     WHERE c.relnamespace = to_regnamespace(%(schema)s) AND NOT g.tgisinternal AND g.tgparentid = 0
    UNION ALL
    SELECT 'domain', t.typname, format_type(t.typbasetype, t.typtypmod) || coalesce(' ' || (
             SELECT string_agg(pg_get_constraintdef(k.oid), ' ') FROM pg_constraint k WHERE k.contypid = t.oid), ''),
           NULL
      FROM pg_type t WHERE t.typnamespace = to_regnamespace(%(schema)s) AND t.typtype = 'd'
    UNION ALL
    SELECT 'sequence', s.relname, 'owned by no column', NULL
      FROM pg_class s WHERE s.relnamespace = to_regnamespace(%(schema)s) AND s.relkind = 'S'
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
                       AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i'))
    ORDER BY 1, 2
"""


def describe(url: str, schema: str = "public", *, settings: Settings | None = None) -> SchemaInfo:
    """Return the tables, enums, partitions, views, triggers, domains and more of a schema in a live database."""
    from sqlalchemy.pool import NullPool

    from pydb.database import Database

    db = Database(url, schema=schema, settings=settings, poolclass=NullPool)
    try:
        tables = list(db.tables.values())
        dialect = db.engine.dialect
    finally:
        db.dispose()
    return schema_info(tables, dialect, schema_objects(url, schema))


def schema_info(tables: Iterable[sa.Table], dialect: sa.Dialect, objects: list[SchemaObject] | None = None,
                ) -> SchemaInfo:
    """Describe reflected tables (by name), the enum types their columns use, and the schema's other objects."""
    ordered = sorted(tables, key=lambda t: t.name)
    return SchemaInfo([_table_info(table, dialect) for table in ordered], _enums(ordered), objects or [])


def schema_objects(url: str, schema: str = "public") -> list[SchemaObject]:
    """Partitions, views, functions, triggers, domains and unowned sequences of a schema, in one query."""
    import psycopg

    from pydb.errors import translate_driver_errors
    from pydb.urls import to_libpq

    with translate_driver_errors(url, "cannot read the schema"), psycopg.connect(to_libpq(url)) as conn:
        return [SchemaObject(*row) for row in conn.execute(SCHEMA_OBJECTS_SQL, {"schema": schema})]


def unmanaged_objects(url: str, schema: str = "public") -> list[SchemaObject]:
    """The objects of a live schema that schema.hcl cannot express with this Atlas build."""
    return [o for o in schema_objects(url, schema) if o.kind in UNMANAGED_KINDS]


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
        (f"({', '.join(c.name for c in fk.columns)}) -> {fk.referred_table.name}"
         f"({', '.join(e.column.name for e in fk.elements)}), declared on its partitions")
        if fk.info.get(FROM_PARTITIONS) else
        f"{fk.name}: ({', '.join(c.name for c in fk.columns)}) -> {fk.referred_table.name}"
        f"({', '.join(e.column.name for e in fk.elements)})"
        + (f" on delete {fk.ondelete.lower()}" if fk.ondelete else "")
        for fk in sorted(table.foreign_key_constraints, key=lambda k: str(k.name))
    ]
    found = [c for c in table.constraints if isinstance(c, sa.CheckConstraint)]
    checks = [f"{check.name}: {check.sqltext}" for check in sorted(found, key=lambda c: str(c.name))]
    return TableInfo(table.name, columns, [c.name for c in table.primary_key.columns], indexes, keys, checks)


def _default(column: sa.Column[Any]) -> str | None:
    default = column.server_default
    if default is None:
        return None
    if isinstance(default, sa.Identity):
        return f"identity ({'always' if default.always else 'by default'})"
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
    for obj in info.objects:
        if obj.kind == "domain":
            lines.append(f"domain {obj.name}: {obj.detail}")
    per_table: dict[str, list[SchemaObject]] = {}
    for obj in info.objects:
        if obj.table is not None:
            per_table.setdefault(obj.table, []).append(obj)
    for table in info.tables:
        kind = next((f" ({o.kind} {o.detail})" for o in per_table.get(table.name, [])
                     if o.kind in ("partitioned table", "partition") and o.name == table.name), "")
        lines.append(f"table {table.name}{kind}")
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
        for check in table.checks:
            lines.append(f"  check {check}")
        for obj in per_table.get(table.name, []):
            if obj.kind == "trigger":
                lines.append(f"  trigger {obj.name}: {obj.detail}")
    if not info.tables:
        lines.append("(no tables)")
    for obj in info.objects:
        if obj.kind in ("view", "materialized view", "function", "sequence"):
            lines.append(f"{obj.kind} {obj.name}: {obj.detail}")
    unmanaged = info.unmanaged()
    if unmanaged:
        lines.append("")
        lines.append(unmanaged_warning(unmanaged))
    return "\n".join(lines)


def unmanaged_warning(objects: list[SchemaObject]) -> str:
    """One paragraph naming the objects schema.hcl cannot carry, and where the workarounds are."""
    names = ", ".join(f"{o.kind} {o.name}" for o in objects)
    return (f"warning: the database holds objects that schema.hcl cannot express with this Atlas build: {names}. "
            f"Atlas does not see them: a database built from schema.hcl, or from migrations Atlas writes, will "
            f"not have them. Keep them in a hand-written migration (docs/migrations.md, "
            f"\"What schema.hcl cannot hold\").")
