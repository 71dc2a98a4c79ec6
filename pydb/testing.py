"""Databases for tests: a template migrated once, and a fresh clone of it per test."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import filelock

from pydb.databases import admin_connection, create_database, database_exists, drop_database, rename_database
from pydb.errors import translate_driver_errors
from pydb.local import DEV_DATABASE, LocalServer
from pydb.urls import to_atlas, with_database

__all__ = ["TEMPLATE_PREFIX", "migrated_template", "migrations_fingerprint", "scratch_database"]

TEMPLATE_PREFIX = "pydb_tpl_"


def migrations_fingerprint(migrations: Path) -> str:
    """Return a short hash of a migrations folder (its atlas.sum, else every file in it)."""
    digest = hashlib.sha256()
    for path in sorted(migrations.glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def migrated_template(server: LocalServer, migrations: Path) -> str:
    """Return the name of a template database with migrations/ applied, creating it once per content."""
    from pydb.atlas import Atlas, atlas_environ

    name = TEMPLATE_PREFIX + migrations_fingerprint(migrations)
    base = server.url()
    with filelock.FileLock(server.state / f"{name}.lock"), translate_driver_errors(base):
        with admin_connection(base) as conn:
            if database_exists(conn, name):
                return name
            building = name + "_building"
            drop_database(conn, building, force=True, missing_ok=True)
            create_database(conn, building, template=DEV_DATABASE)
        try:
            Atlas(environ=atlas_environ(None)).migrate_apply(
                url=to_atlas(with_database(base, building)), directory=f"file://{migrations.resolve()}",
                revisions_schema="atlas_schema_revisions",
            )
            with admin_connection(base) as conn:
                rename_database(conn, building, name, template=True)
        except BaseException:
            with admin_connection(base) as conn:
                drop_database(conn, building, force=True, missing_ok=True)
            raise
    return name


@contextlib.contextmanager
def scratch_database(server_url: str, template: str, prefix: str = "pydb_test_") -> Iterator[str]:
    """Yield the URL of a new copy of template, dropped afterwards."""
    name = prefix + uuid.uuid4().hex[:10]
    with translate_driver_errors(server_url), admin_connection(server_url) as conn:
        create_database(conn, name, template=template)
    try:
        yield with_database(server_url, name)
    finally:
        with translate_driver_errors(server_url), admin_connection(server_url) as conn:
            drop_database(conn, name, force=True, missing_ok=True)
