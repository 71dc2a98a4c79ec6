"""Facts about the catalog that need no SQLAlchemy: the schema's fingerprint, and the marks reflection leaves.

pydb.reflect reads tables with SQLAlchemy; what a command needs before (or instead of) that, such as
an unchanged seed re-run checking that the schema is still the one its cache was made for, is here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FINGERPRINT_QUERY", "FROM_PARTITIONS", "INSERT_TRIGGER", "PARTITIONED", "PARTITION_OF", "fingerprint_of"]

# Table.info keys pydb.reflect sets (kept in the reflection cache with the tables).
PARTITIONED = "pydb_partitioned"
PARTITION_OF = "pydb_partition_of"
INSERT_TRIGGER = "pydb_insert_trigger"
FROM_PARTITIONS = "pydb_from_partitions"  # ForeignKeyConstraint.info: copied from the partitions

# One round trip that changes whenever a table, column, default, constraint, index or enum of the
# schema changes: every DDL statement writes a new row version (xmin) into one of these catalogs.
FINGERPRINT_QUERY = """
    SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
      SELECT 'c' || c.oid || ':' || c.xmin FROM pg_class c WHERE c.relnamespace = to_regnamespace(%(schema)s)
      UNION ALL
      SELECT 'a' || a.attrelid || ':' || a.attnum || ':' || a.xmin
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       WHERE c.relnamespace = to_regnamespace(%(schema)s) AND a.attnum > 0
      UNION ALL
      SELECT 'k' || k.oid || ':' || k.xmin FROM pg_constraint k WHERE k.connamespace = to_regnamespace(%(schema)s)
      UNION ALL
      SELECT 'd' || d.oid || ':' || d.xmin
        FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = to_regnamespace(%(schema)s)
      UNION ALL
      SELECT 't' || t.oid || ':' || t.xmin FROM pg_type t WHERE t.typnamespace = to_regnamespace(%(schema)s)
      UNION ALL
      SELECT 'e' || e.oid || ':' || e.xmin
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typnamespace = to_regnamespace(%(schema)s)
      UNION ALL
      SELECT 'g' || g.oid || ':' || g.xmin
        FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE c.relnamespace = to_regnamespace(%(schema)s)
    ) AS catalog(x)
"""


def fingerprint_of(conn: Any, schema: str = "public") -> str:
    """The schema's fingerprint (as pydb.reflect.fingerprint gives it), on a psycopg connection."""
    row = conn.execute(FINGERPRINT_QUERY, {"schema": schema}).fetchone()
    return str(row[0])
