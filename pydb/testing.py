"""Databases for tests: a template migrated once, and a fresh clone of it per test."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from pydb.local import DEV_DATABASE, LocalServer
from pydb.urls import to_atlas, with_database

TEMPLATE_PREFIX = "pydb_tpl_"


def migrations_fingerprint(migrations: Path) -> str:
    """Return a short hash of a migrations folder (its atlas.sum, else every file in it)."""
    digest = hashlib.sha256()
    for path in sorted(migrations.glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def database_exists(url: str, name: str) -> bool:
    """Tell whether a database of that name exists on the server of url."""
    import psycopg

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def create_database(url: str, name: str, template: str | None = None) -> str:
    """Create a database (a copy of template when given) and return its URL."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(query)
    return with_database(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop a database if it exists, closing its connections (tests' own databases only)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrated_template(server: LocalServer, migrations: Path) -> str:
    """Return the name of a template database with migrations/ applied, creating it once per content."""
    from pydb.atlas import atlas_environ, run_atlas

    name = TEMPLATE_PREFIX + migrations_fingerprint(migrations)
    base = server.url()
    lock = server.state / f"{name}.lock"
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if database_exists(base, name):
            return name
        building = name + "_building"
        drop_database(base, building)
        url = create_database(base, building, template=DEV_DATABASE)
        try:
            run_atlas(
                ["migrate", "apply", "--url", to_atlas(url), "--dir", f"file://{migrations.resolve()}",
                 "--revisions-schema", "atlas_schema_revisions"],
                environ=atlas_environ(None),
            )
            import psycopg
            from psycopg import sql

            with psycopg.connect(with_database(base, "postgres"), autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(name)))
                conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name)))
        except BaseException:
            drop_database(base, building)
            raise
    return name


@contextlib.contextmanager
def scratch_database(server_url: str, template: str, prefix: str = "pydb_test_") -> Iterator[str]:
    """Yield the URL of a new copy of template, dropped afterwards."""
    name = prefix + uuid.uuid4().hex[:10]
    url = create_database(server_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(server_url, name)
