"""Connections: masked URLs, wrong passwords, unreachable hosts, and Neon's pooler through a real PgBouncer."""

from __future__ import annotations

import logging
import re
import shutil
import socket
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

import pydb
from pydb.database import Database
from pydb.errors import ConnectError
from pydb.local import LocalServer
from pydb.urls import with_database
from tests.helpers import new_state_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_repr_masks_the_password() -> None:
    db = pydb.connect("postgres://app:hunter2@db.example.com/app")
    assert repr(db) == "Database('postgres://app:***@db.example.com/app')"
    assert "hunter2" not in repr(db)


def test_an_unreachable_host_is_retried_then_one_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://app:hunter2@127.0.0.1:{_free_port()}/app"
    db = Database(url, wake_seconds=1.0)  # backoff 0.25 s, 0.5 s: a third wait would pass the bound
    with caplog.at_level(logging.WARNING, logger="pydb"), pytest.raises(ConnectError) as info:
        db.connect()
    message = str(info.value)
    assert message.startswith("cannot connect to postgresql://app:***@127.0.0.1:")
    attempts = int(re.search(r"after (\d+) attempts", message).group(1))  # type: ignore[union-attr]
    assert attempts >= 2 and "hunter2" not in message
    retries = [r.getMessage() for r in caplog.records]
    assert len(retries) == attempts - 1 and all("retrying in" in r and "hunter2" not in r for r in retries)


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A server of this module's own that checks passwords (scram) for the role `app`."""
    folder = new_state_dir()
    server = LocalServer(folder)
    server.up()
    hba = server.pgdata / "pg_hba.conf"
    hba.write_text("host all app 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("CREATE ROLE app LOGIN PASSWORD 'right-password'")
        conn.execute("SELECT pg_reload_conf()")
    yield server.url().replace("postgres@", "app:{}@")
    server.down()
    shutil.rmtree(folder, ignore_errors=True)


def test_a_wrong_password_fails_at_once_and_is_masked(password_server: str, caplog: pytest.LogCaptureFixture) -> None:
    good = Database(password_server.format("right-password"))
    with good.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == "app"
    good.dispose()
    with caplog.at_level(logging.WARNING, logger="pydb"), pytest.raises(ConnectError) as info:
        Database(password_server.format("wrong-password")).connect()
    assert not caplog.records  # no retry: a password does not get better with time
    assert "after" not in str(info.value)
    assert "password authentication failed" in str(info.value)
    assert "wrong-password" not in str(info.value) and "app:***@" in str(info.value)


def test_the_cli_masks_passwords_in_errors(password_server: str) -> None:
    from tests.helpers import run_pydb

    result = run_pydb("describe", "--url", password_server.format("wrong-password"))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot connect to postgresql://app:***@127.0.0.1:")
    assert "wrong-password" not in result.stderr + result.stdout


# -- Neon's pooler: PgBouncer in transaction mode ------------------------------------------------------


def _workload(db: Database) -> None:
    """Queries from two clients taking turns on PgBouncer's single server connection."""
    users = db.tables["users"]
    with db.begin() as conn:
        conn.execute(sa.insert(users).values(email="ada@example.com", name="Ada"))
    first, second = db.engine.connect(), db.engine.connect()
    try:
        for _ in range(8):
            for conn in (first, second):
                with conn.begin():
                    found = db.query.users.find_first(
                        where=users.c.email == "ada@example.com", with_={"projects": True}
                    )
                    assert found is not None and found["projects"] == []
                    conn.execute(sa.select(users.c.id).where(users.c.email == "ada@example.com")).one()
    finally:
        first.close()
        second.close()


def test_queries_through_the_pooler(pgbouncer: str) -> None:
    db = Database(pgbouncer)
    assert db.pooled and not db.prepared_statements
    _workload(db)
    db.dispose()


def test_without_the_switch_the_pooler_breaks_prepared_statements(pgbouncer: str) -> None:
    db = Database(pgbouncer, prepared_statements=True)
    with pytest.raises(sa.exc.DBAPIError) as info:
        _workload(db)
    assert "prepared statement" in str(info.value)
    db.dispose()


def test_local_urls_keep_prepared_statements(pydb_database: str) -> None:
    db = Database(with_database(pydb_database, "x"))
    assert not db.pooled and db.prepared_statements
