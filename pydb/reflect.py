"""Reflect a schema into sqlalchemy.Table objects in a few catalog queries, cached by a catalog fingerprint."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pydb.catalog import FINGERPRINT_QUERY, FROM_PARTITIONS, INSERT_TRIGGER, PARTITION_OF, PARTITIONED
from pydb.tuning import set_update_default
from pydb.vector import Vector

log = logging.getLogger("pydb")

UPDATED_AT = "updated_at"
_CACHE_FORMAT = 2

FINGERPRINT_SQL = sa.text(FINGERPRINT_QUERY.replace("%(schema)s", ":schema"))

# What SQLAlchemy's reflection does not say about a table: partitioned or a partition (and of what),
# and whether a BEFORE INSERT row trigger may fill its columns. tgtype bits: 1 row, 2 before, 4 insert.
TABLE_FACTS_SQL = sa.text(
    """
    SELECT c.relname, c.relkind = 'p', parent.relname,
           EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgenabled <> 'D'
                   AND g.tgtype & 7 = 7)
      FROM pg_class c
      LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
      LEFT JOIN pg_class parent ON parent.oid = i.inhparent
     WHERE c.relnamespace = to_regnamespace(:schema) AND c.relkind IN ('r', 'p')
    """
)

IGNORED_TABLES = frozenset({"atlas_schema_revisions"})


def fingerprint(conn: Connection, schema: str = "public") -> str:
    """Return a hash that changes whenever the schema's tables, columns, constraints or enums change."""
    return str(conn.execute(FINGERPRINT_SQL, {"schema": schema}).scalar_one())


def register_types(dialect: Any) -> None:
    """Teach a PostgreSQL dialect the extension types pydb knows (pgvector's vector)."""
    if "vector" not in dialect.ischema_names:
        dialect.ischema_names = {**dialect.ischema_names, "vector": Vector}


def reflect(conn: Connection, schema: str = "public") -> sa.MetaData:
    """Reflect every table of a schema (SQLAlchemy 2's bulk reflection: one query per kind of object)."""
    register_types(conn.dialect)
    metadata = sa.MetaData()
    metadata.reflect(conn, schema=None if schema == "public" else schema, views=False)
    for name in list(metadata.tables):
        if name in IGNORED_TABLES:
            metadata.remove(metadata.tables[name])
    for table in metadata.tables.values():
        _refresh_updated_at(table)
    _add_table_facts(conn, metadata, schema)
    return metadata


def _add_table_facts(conn: Connection, metadata: sa.MetaData, schema: str) -> None:
    """Mark partitioned tables, partitions and trigger-filled tables; give a partitioned table its partitions' keys.

    Foreign keys declared on the partitions hold for the partitioned table as a whole: copying them onto
    it gives it its relations (named after it, not after each partition) and its place in seed order.
    """
    tables = {table.name: table for table in metadata.tables.values()}
    for name, partitioned, parent, trigger in conn.execute(TABLE_FACTS_SQL, {"schema": schema}):
        table = tables.get(name)
        if table is None:
            continue
        table.info[PARTITIONED] = bool(partitioned)
        table.info[INSERT_TRIGGER] = bool(trigger)
        if parent is not None and parent in tables:
            table.info[PARTITION_OF] = parent
    for table in tables.values():
        parent = tables.get(table.info.get(PARTITION_OF, ""))
        if parent is not None:
            _copy_foreign_keys(table, parent)


def _copy_foreign_keys(partition: sa.Table, parent: sa.Table) -> None:
    def signature(fk: sa.ForeignKeyConstraint) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        return (tuple(c.name for c in fk.columns), fk.referred_table.name,
                tuple(e.column.name for e in fk.elements))

    have = {signature(fk) for fk in parent.foreign_key_constraints}
    for fk in sorted(partition.foreign_key_constraints, key=lambda k: str(k.name)):
        columns, target, referred = signature(fk)
        if (columns, target, referred) in have or not all(c in parent.c for c in columns):
            continue
        have.add((columns, target, referred))
        parent.append_constraint(sa.ForeignKeyConstraint(
            [parent.c[c] for c in columns], [fk.referred_table.c[c] for c in referred],
            name=f"{parent.name}_{'_'.join(columns)}_fkey", ondelete=fk.ondelete, info={FROM_PARTITIONS: True},
        ))


def _refresh_updated_at(table: sa.Table) -> None:
    """Give updated_at an ON UPDATE of now(): the database's clock, unless the caller sets the column."""
    column = table.columns.get(UPDATED_AT)
    if column is not None and column.onupdate is None:
        set_update_default(column, sa.func.now())


def _cache_file(folder: Path, key: str) -> Path:
    digest = hashlib.sha256(f"{_CACHE_FORMAT}:{sa.__version__}:{key}".encode()).hexdigest()[:24]
    return folder / f"reflect-{digest}.pickle"


def load_tables(
    conn: Connection, cache_key: str, schema: str = "public", *, folder: Path | None = None,
) -> tuple[sa.MetaData, str]:
    """Return the schema's tables (from the cache in folder while its fingerprint matches) and that fingerprint."""
    current = fingerprint(conn, schema)
    path = _cache_file(folder, f"{cache_key}:{schema}") if folder else None
    if path is not None:
        try:
            with open(path, "rb") as handle:
                cached_print, metadata = pickle.load(handle)
            if cached_print == current and isinstance(metadata, sa.MetaData):
                register_types(conn.dialect)
                return metadata, current
        except FileNotFoundError:
            pass
        except Exception as err:  # a stale or foreign pickle is only a cache miss
            log.debug("ignoring reflection cache %s: %s", path, err)
    metadata = reflect(conn, schema)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                pickle.dump((current, metadata), handle, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except OSError as err:
            log.debug("cannot write reflection cache %s: %s", path, err)
    return metadata, current
