"""Local branches: databases of the local server copied with `CREATE DATABASE … TEMPLATE`.

A branch NAME is the database `branch_NAME`. What pydb knows about it (name, parent, creation time)
is JSON in the database's comment (`COMMENT ON DATABASE`), so there is no state file to keep in
step: `psql -c '\\l+'` shows it too. A database is a branch only when its comment is that JSON.

A database can be copied only while nobody else is connected to it. PostgreSQL itself waits up to
5 seconds for other sessions to leave; after that pydb reports how many are still connected and
terminates none of them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from pydb.branches import Branch, validate_name
from pydb.databases import admin_connection, create_database, database_exists, drop_database, rename_database
from pydb.errors import BranchError
from pydb.local import APP_DATABASE, LocalServer
from pydb.urls import with_database

__all__ = ["BRANCH_PREFIX", "LocalBranches", "branch_database"]

BRANCH_PREFIX = "branch_"
_MARK = "pydb-branch"


def branch_database(name: str) -> str:
    """Return the name of the database holding the branch name."""
    return BRANCH_PREFIX + validate_name(name)


@dataclass(frozen=True)
class _Meta:
    name: str
    parent: str
    parent_database: str
    created_at: datetime

    def to_json(self) -> str:
        return json.dumps({
            _MARK: 1, "name": self.name, "parent": self.parent, "parent_database": self.parent_database,
            "created_at": self.created_at.isoformat(timespec="milliseconds"),
        })

    @staticmethod
    def from_comment(comment: str | None) -> _Meta | None:
        if not comment:
            return None
        try:
            data = json.loads(comment)
            if not isinstance(data, dict) or data.get(_MARK) != 1:
                return None
            return _Meta(
                str(data["name"]), str(data["parent"]), str(data["parent_database"]),
                datetime.fromisoformat(str(data["created_at"])),
            )
        except (ValueError, KeyError, TypeError):
            return None


class LocalBranches:
    """Branches as databases of the local PostgreSQL server (started when needed)."""

    kind = "local"

    def __init__(self, server: LocalServer | None = None, *, default_parent: str = APP_DATABASE) -> None:
        self.server = server or LocalServer()
        self.default_parent = default_parent
        self._server_url: str | None = None

    # -- public API -------------------------------------------------------------------------

    def create(self, name: str, parent: str | None = None) -> Branch:
        """Create branch name as a copy of parent: a branch or a database (default: the app database)."""
        database = branch_database(name)
        with self._connect() as conn:
            parent_label, parent_database = self._resolve_parent(conn, parent or self.default_parent)
            if self._exists(conn, database):
                raise BranchError(f"branch {name} already exists (start it again with: pydb branch reset {name})")
            meta = _Meta(name, parent_label, parent_database, datetime.now(UTC))
            self._copy(conn, database, meta)
            return self._describe(conn, database)

    def list(self) -> list[Branch]:
        """Return every branch of the local server, oldest first."""
        query = sql.SQL(
            "SELECT datname, shobj_description(oid, 'pg_database'), pg_database_size(oid) "
            "FROM pg_database WHERE starts_with(datname, {}) ORDER BY oid"
        ).format(sql.Literal(BRANCH_PREFIX))
        with self._connect() as conn:
            rows = self._execute(conn, query).fetchall()
        found = [self._branch(db, _Meta.from_comment(comment), size) for db, comment, size in rows]
        branches = [branch for branch in found if branch is not None]
        return sorted(branches, key=lambda b: (b.created_at or datetime.min.replace(tzinfo=UTC), b.name))

    def get(self, name: str) -> Branch:
        """Return the branch name."""
        with self._connect() as conn:
            return self._describe(conn, branch_database(name))

    def url(self, name: str, *, pooled: bool = False) -> str:
        """Return the URL of branch name (there is no pooler locally: pooled is the same URL)."""
        branch = self.get(name)
        assert branch.url is not None
        return branch.url

    def delete(self, name: str) -> None:
        """Drop branch name; refused while other sessions are connected to it."""
        database = branch_database(name)
        with self._connect() as conn:
            self._meta(conn, database)
            self._drop(conn, database, f"branch {name}")

    def reset(self, name: str, *, preserve_under: str | None = None) -> Branch:
        """Recreate branch name from its parent, keeping the old copy as branch preserve_under if given.

        The branch is left as it was if that fails. Branches made from the old copy then count it as
        their parent, as on Neon.
        """
        database = branch_database(name)
        kept = branch_database(preserve_under) if preserve_under else None
        with self._connect() as conn:
            old = self._meta(conn, database)
            if not self._exists(conn, old.parent_database):
                raise BranchError(f"cannot reset branch {name}: its parent {old.parent} no longer exists")
            if kept and self._exists(conn, kept):
                raise BranchError(f"branch {preserve_under} already exists")
            fresh = "pydb_reset_" + uuid.uuid4().hex[:12]
            self._copy(conn, fresh, _Meta(name, old.parent, old.parent_database, datetime.now(UTC)))
            try:
                if preserve_under and kept:
                    self._keep(conn, old, database, _Meta(preserve_under, old.parent, old.parent_database,
                                                          old.created_at))
                else:
                    self._drop(conn, database, f"branch {name}")
            except BaseException:
                self._discard(conn, fresh)
                raise
            try:
                rename_database(conn, fresh, database)
            except psycopg.Error as err:
                raise BranchError(str(err).strip()) from err
            return self._describe(conn, database)

    # -- helpers ----------------------------------------------------------------------------

    def _base_url(self) -> str:
        if self._server_url is None:
            self._server_url = self.server.up().url
        return self._server_url

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return admin_connection(self._base_url())
        except psycopg.Error as err:
            raise BranchError(f"cannot connect to the local database server: {err}") from err

    @staticmethod
    def _execute(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        try:
            return conn.execute(query, params)
        except psycopg.Error as err:
            raise BranchError(str(err).strip()) from err

    def _exists(self, conn: psycopg.Connection[Any], database: str) -> bool:
        try:
            return database_exists(conn, database)
        except psycopg.Error as err:
            raise BranchError(str(err).strip()) from err

    def _comment(self, conn: psycopg.Connection[Any], database: str) -> tuple[bool, str | None]:
        row = self._execute(
            conn, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        return (row is not None, row[0] if row else None)

    def _meta(self, conn: psycopg.Connection[Any], database: str) -> _Meta:
        exists, comment = self._comment(conn, database)
        meta = _Meta.from_comment(comment)
        name = database.removeprefix(BRANCH_PREFIX)
        if not exists:
            raise BranchError(f"no branch named {name} (see: pydb branch list)")
        if meta is None:
            raise BranchError(f"database {database} exists but is not a pydb branch; pydb leaves it alone")
        return meta

    def _resolve_parent(self, conn: psycopg.Connection[Any], parent: str) -> tuple[str, str]:
        """Return (label, database) of the parent: a branch of that name, else a database of that name."""
        try:
            candidate = branch_database(parent)
        except BranchError:
            candidate = None
        if candidate is not None:
            exists, comment = self._comment(conn, candidate)
            if exists and _Meta.from_comment(comment) is not None:
                return parent, candidate
        if self._exists(conn, parent):
            return parent, parent
        raise BranchError(f"no branch or database named {parent!r} to branch from (see: pydb branch list)")

    def _sessions(self, conn: psycopg.Connection[Any], database: str) -> int:
        row = self._execute(
            conn,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            (database,),
        ).fetchone()
        return int(row[0]) if row else 0

    def _busy(self, conn: psycopg.Connection[Any], database: str, label: str, doing: str) -> BranchError:
        count = self._sessions(conn, database)
        who = f"{count} other session is" if count == 1 else f"{count} other sessions are"
        if count == 0:
            who = "other sessions were"
        where = label if label == database else f"{label} (database {database})"
        return BranchError(
            f"cannot {doing}: {who} connected to {where}; "
            f"pydb waited 5 s and terminates no session: close them (psql, the app, a pool) and try again"
        )

    def _copy(self, conn: psycopg.Connection[Any], database: str, meta: _Meta) -> None:
        try:
            create_database(conn, database, template=meta.parent_database)
        except psycopg.errors.ObjectInUse as err:
            raise self._busy(conn, meta.parent_database, meta.parent, f"copy {meta.parent}") from err
        except psycopg.errors.DuplicateDatabase as err:
            raise BranchError(f"branch {meta.name} already exists") from err
        except psycopg.Error as err:
            raise BranchError(f"cannot create branch {meta.name}: {str(err).strip()}") from err
        try:
            self._comment_on(conn, database, meta)
        except BaseException:
            self._discard(conn, database)
            raise

    @staticmethod
    def _discard(conn: psycopg.Connection[Any], database: str) -> None:
        """Drop a database pydb just made, keeping the error that made it useless."""
        with contextlib.suppress(psycopg.Error):
            drop_database(conn, database, missing_ok=True)

    def _drop(self, conn: psycopg.Connection[Any], database: str, label: str) -> None:
        try:
            drop_database(conn, database)
        except psycopg.errors.ObjectInUse as err:
            raise self._busy(conn, database, label, f"drop {label}") from err
        except psycopg.Error as err:
            raise BranchError(f"cannot drop {label}: {str(err).strip()}") from err

    def _keep(self, conn: psycopg.Connection[Any], old: _Meta, database: str, kept: _Meta) -> None:
        """Rename the branch's database to the branch kept, and make its children children of that one."""
        target = branch_database(kept.name)
        try:
            rename_database(conn, database, target)
        except psycopg.errors.ObjectInUse as err:
            raise self._busy(conn, database, f"branch {old.name}", f"rename {old.name}") from err
        except psycopg.Error as err:
            raise BranchError(f"cannot keep branch {old.name} as {kept.name}: {str(err).strip()}") from err
        self._comment_on(conn, target, kept)
        rows = self._execute(conn, "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database").fetchall()
        for child_database, comment in rows:
            child = _Meta.from_comment(comment)
            if child is not None and child.parent_database == database:
                self._comment_on(conn, child_database, _Meta(child.name, kept.name, target, child.created_at))

    def _comment_on(self, conn: psycopg.Connection[Any], database: str, meta: _Meta) -> None:
        self._execute(conn, sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(database), sql.Literal(meta.to_json())))

    def _describe(self, conn: psycopg.Connection[Any], database: str) -> Branch:
        meta = self._meta(conn, database)
        row = self._execute(conn, "SELECT pg_database_size(%s::name)", (database,)).fetchone()
        branch = self._branch(database, meta, int(row[0]) if row else None)
        assert branch is not None
        return branch

    def _branch(self, database: str, meta: _Meta | None, size: int | None) -> Branch | None:
        if meta is None or database != BRANCH_PREFIX + meta.name:
            return None
        return Branch(
            name=meta.name, parent=meta.parent, size=size, created_at=meta.created_at,
            url=with_database(self._base_url(), database), id=database,
        )
