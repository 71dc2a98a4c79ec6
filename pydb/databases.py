"""Databases of a server: create (optionally as a TEMPLATE copy), rename and drop them.

One helper for the local server's own databases, local branches and per-test databases. The
statements run on an autocommit connection to the server's `postgres` database, because
CREATE/DROP DATABASE cannot run inside a transaction block. psycopg errors are left to the
caller, which knows what the database was for (a branch, a test copy) and says so.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pydb.urls import with_database

__all__ = [
    "admin_connection",
    "create_database",
    "database_exists",
    "drop_database",
    "rename_database",
]

MAINTENANCE_DATABASE = "postgres"


def admin_connection(url: str) -> psycopg.Connection[Any]:
    """Return an autocommit connection to the `postgres` database of url's server (use it with `with`)."""
    return psycopg.connect(with_database(url, MAINTENANCE_DATABASE), autocommit=True)


def database_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    """Tell whether a database of that name exists."""
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(conn: psycopg.Connection[Any], name: str, *, template: str | None = None) -> None:
    """Create a database, as a copy of template when given (PostgreSQL waits 5 s for its sessions to leave)."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    conn.execute(query)


def drop_database(conn: psycopg.Connection[Any], name: str, *, force: bool = False, missing_ok: bool = False) -> None:
    """Drop a database; force closes its sessions first (for pydb's own throwaway copies only)."""
    query = sql.SQL("DROP DATABASE {}{}{}").format(
        sql.SQL("IF EXISTS ") if missing_ok else sql.SQL(""), sql.Identifier(name),
        sql.SQL(" WITH (FORCE)") if force else sql.SQL(""),
    )
    conn.execute(query)


def rename_database(conn: psycopg.Connection[Any], old: str, new: str, *, template: bool = False) -> None:
    """Rename a database; template marks it as a template other databases are copied from."""
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))
    if template:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(new)))
