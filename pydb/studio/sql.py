"""The SQL page: one statement typed by a person, in a read-only transaction unless writes are allowed.

Every run has PostgreSQL's `statement_timeout` (the `studio_statement_timeout` setting). The statement
is sent with the extended protocol, which PostgreSQL refuses for several statements at once, so a
`COMMIT; DELETE ...` cannot leave the read-only transaction. Rows are streamed: the page keeps the first
ROW_LIMIT and counts the rest. The connection is closed afterwards, so nothing the statement set on
its session (settings, locks, prepared statements) outlives the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pydb.database import Database
from pydb.errors import ConfigError, DatabaseError, translate_driver_errors

__all__ = ["ROW_LIMIT", "SqlResult", "check_timeout", "run_sql", "stream_sql"]

ROW_LIMIT = 1000
STREAM_CHUNK = 500
# Statements that report a command status (UPDATE 3) rather than rows; with RETURNING they have rows too.
_COMMANDS = frozenset({
    "insert", "update", "delete", "merge", "create", "alter", "drop", "truncate", "grant", "revoke", "comment",
    "set", "reset", "vacuum", "analyze", "cluster", "reindex", "refresh", "lock", "do", "call", "discard",
    "checkpoint", "security", "import",
})
_FIRST_WORD = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)


@dataclass
class SqlResult:
    """What a statement returned: its columns, the first rows, how many rows in all, its command status."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    count: int = 0
    status: str = ""
    committed: bool = False

    @property
    def truncated(self) -> bool:
        """Tell whether more rows came back than the page keeps."""
        return self.count > len(self.rows)


@contextmanager
def _session(db: Database, *, writes: bool, timeout: str) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor in a fresh transaction (read-only unless writes) with the timeout; the connection is closed after."""
    with translate_driver_errors(db.url), db.engine.connect() as sa_conn:
        conn: psycopg.Connection[Any] = sa_conn.connection.driver_connection  # type: ignore[assignment]
        try:
            cursor = conn.cursor()
            if not writes:
                cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", (timeout,))
            yield cursor
        finally:
            sa_conn.invalidate()


def run_sql(db: Database, sql: str, *, writes: bool, timeout: str, limit: int = ROW_LIMIT) -> SqlResult:
    """Run one statement: the first `limit` rows and the count, committed only when writes are allowed."""
    result = SqlResult()
    with _session(db, writes=writes, timeout=timeout) as cursor:
        word = _FIRST_WORD.match(sql)
        if word and word.group(1).lower() in _COMMANDS:
            with cursor.connection.pipeline():
                cursor.execute(sql)
            result.status = cursor.statusmessage or ""
            if cursor.description is not None:
                result.columns = [c.name for c in cursor.description]
                result.rows = cursor.fetchmany(limit)
                result.count = max(cursor.rowcount, len(result.rows))
        else:
            try:
                for row in cursor.stream(sql, size=STREAM_CHUNK):
                    if result.count < limit:
                        result.rows.append(row)
                    result.count += 1
            except psycopg.ProgrammingError as err:
                if "didn't produce a result" not in str(err):
                    raise
                result.status = "done (the statement returned no rows)"
            if cursor.description is not None:
                result.columns = [c.name for c in cursor.description]
                result.status = result.status or f"SELECT {result.count}"
        if writes:
            cursor.connection.commit()
            result.committed = not result.status.startswith("SELECT")  # worth saying for changes only
        else:
            cursor.connection.rollback()
    return result


def stream_sql(db: Database, sql: str, *, timeout: str) -> Iterator[list[str] | list[tuple[Any, ...]]]:
    """Every row of a query, read-only: first its column names, then batches of rows (for export)."""
    with _session(db, writes=False, timeout=timeout) as cursor:
        batch: list[tuple[Any, ...]] = []
        rows = cursor.stream(sql, size=STREAM_CHUNK)
        first = next(rows, None)
        yield [c.name for c in cursor.description or ()]
        if first is not None:
            batch.append(first)
        for row in rows:
            batch.append(row)
            if len(batch) >= STREAM_CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch
        cursor.connection.rollback()


def check_timeout(db: Database, timeout: str) -> None:
    """Refuse a statement_timeout PostgreSQL does not accept, naming the setting."""
    try:
        with _session(db, writes=False, timeout=timeout):
            pass
    except DatabaseError as err:
        raise ConfigError(f"PYDB_STUDIO_STATEMENT_TIMEOUT={timeout!r} is not a valid statement_timeout "
                          f"(e.g. 10s, 500ms, 2min): {err}") from None
