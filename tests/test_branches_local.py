"""Local branches: `CREATE DATABASE … TEMPLATE` copies on a real PostgreSQL, from Python and the CLI."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pydb.branches import Branch, backend, format_size, validate_name
from pydb.branches.local import LocalBranches, branch_database
from pydb.config import load_settings
from pydb.errors import BranchError
from pydb.local import LocalServer
from pydb.urls import database_name, with_database
from tests.helpers import run_pydb


@pytest.fixture
def branches(pydb_server: LocalServer, pydb_database: str) -> Iterator[LocalBranches]:
    """Branches on the test server whose default parent is this test's own database (with two users)."""
    with psycopg.connect(pydb_database, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada'), ('bob@example.com', 'Bob')")
    local = LocalBranches(pydb_server, default_parent=database_name(pydb_database))
    yield local
    with psycopg.connect(with_database(pydb_database, "postgres"), autocommit=True) as conn:
        for branch in local.list():
            if branch.parent == local.default_parent or branch.name.startswith(_PREFIX):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(branch_database(branch.name))))


_PREFIX = "t" + uuid.uuid4().hex[:8]


def _name(label: str) -> str:
    """A branch name unique to this test run (tests share one server under pytest -n 2)."""
    return f"{_PREFIX}-{label}-{uuid.uuid4().hex[:6]}"


def _emails(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT email FROM users ORDER BY email")]


def _add_user(url: str, email: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES (%s, 'x')", (email,))


def test_a_branch_is_a_copy_and_writes_stay_on_their_side(branches: LocalBranches, pydb_database: str) -> None:
    name = _name("copy")
    created = branches.create(name)
    assert isinstance(created, Branch)
    assert (created.name, created.parent) == (name, branches.default_parent)
    assert created.size is not None and created.size > 1_000_000
    assert created.created_at is not None and created.created_at.tzinfo is not None
    assert created.url == with_database(pydb_database, f"branch_{name}")
    assert _emails(created.url) == ["ada@example.com", "bob@example.com"]

    _add_user(created.url, "branch-only@example.com")
    _add_user(pydb_database, "parent-only@example.com")
    assert _emails(created.url) == ["ada@example.com", "bob@example.com", "branch-only@example.com"]
    assert _emails(pydb_database) == ["ada@example.com", "bob@example.com", "parent-only@example.com"]


def test_list_url_get_and_delete(branches: LocalBranches) -> None:
    first, second = _name("one"), _name("two")
    branches.create(first)
    branches.create(second, first)
    listed = {b.name: b for b in branches.list() if b.name in (first, second)}
    assert listed[first].parent == branches.default_parent
    assert listed[second].parent == first
    first_at, second_at = listed[first].created_at, listed[second].created_at
    assert first_at is not None and second_at is not None
    assert first_at <= second_at
    assert all(b.size and b.size > 0 for b in listed.values())

    url = branches.url(second)
    assert branches.url(second, pooled=True) == url
    assert url.endswith(f"/branch_{second}?sslmode=disable")
    assert branches.get(second).parent == first

    branches.delete(second)
    assert second not in {b.name for b in branches.list()}
    with pytest.raises(BranchError, match=f"no branch named {second} "):
        branches.url(second)


def test_reset_recreates_the_branch_from_its_parent(branches: LocalBranches, pydb_database: str) -> None:
    name = _name("reset")
    created = branches.create(name)
    assert created.url is not None
    _add_user(created.url, "scratch@example.com")
    _add_user(pydb_database, "later@example.com")

    reset = branches.reset(name)
    assert reset.parent == branches.default_parent
    assert reset.created_at is not None and created.created_at is not None
    assert reset.created_at >= created.created_at
    assert _emails(branches.url(name)) == ["ada@example.com", "bob@example.com", "later@example.com"]


def test_reset_can_keep_the_old_copy_as_a_branch_with_the_children(branches: LocalBranches) -> None:
    name, kept, child = _name("reset"), _name("kept"), _name("child")
    created = branches.create(name)
    assert created.url is not None
    _add_user(created.url, "scratch@example.com")
    branches.create(child, name)

    reset = branches.reset(name, preserve_under=kept)

    assert (reset.name, reset.parent) == (name, branches.default_parent)
    assert _emails(branches.url(name)) == ["ada@example.com", "bob@example.com"]
    assert _emails(branches.url(kept)) == ["ada@example.com", "bob@example.com", "scratch@example.com"]
    parents = {b.name: b.parent for b in branches.list() if b.name in (name, kept, child)}
    assert parents == {name: branches.default_parent, kept: branches.default_parent, child: kept}
    with pytest.raises(BranchError, match=f"branch {kept} already exists"):
        branches.reset(name, preserve_under=kept)


@pytest.mark.parametrize("bad", ["x'; DROP DATABASE pydb; --", 'a"b', "semi;colon", "Upper", "", "-lead", "a" * 42])
def test_names_with_quotes_semicolons_or_capitals_are_refused(branches: LocalBranches, bad: str) -> None:
    with pytest.raises(BranchError, match="invalid branch name"):
        branches.create(bad)
    with pytest.raises(BranchError, match="invalid branch name"):
        branches.delete(bad)


def test_valid_names() -> None:
    for good in ("feature-x", "pr_42", "0", "a" * 41):
        assert validate_name(good) == good


def test_deleting_a_missing_branch_is_a_clear_error(branches: LocalBranches) -> None:
    with pytest.raises(BranchError) as caught:
        branches.delete(_name("missing"))
    assert re.fullmatch(r"no branch named \S+ \(see: pydb branch list\)", str(caught.value))


def test_creating_an_existing_branch_or_from_a_missing_parent_is_a_clear_error(branches: LocalBranches) -> None:
    name = _name("twice")
    branches.create(name)
    with pytest.raises(BranchError, match=f"branch {name} already exists"):
        branches.create(name)
    with pytest.raises(BranchError, match="no branch or database named 'no-such-parent'"):
        branches.create(_name("orphan"), "no-such-parent")


def test_a_database_that_is_not_a_branch_is_left_alone(branches: LocalBranches, pydb_server: LocalServer) -> None:
    name = _name("plain")
    with psycopg.connect(pydb_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(branch_database(name))))
    try:
        with pytest.raises(BranchError, match="is not a pydb branch; pydb leaves it alone"):
            branches.delete(name)
        assert name not in {b.name for b in branches.list()}
    finally:
        with psycopg.connect(pydb_server.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(branch_database(name))))


def test_a_parent_with_open_sessions_is_refused_and_the_sessions_live_on(
    branches: LocalBranches, pydb_database: str,
) -> None:
    name = _name("busy")
    with psycopg.connect(pydb_database) as first, psycopg.connect(pydb_database) as second:
        with pytest.raises(BranchError) as caught:
            branches.create(name)
        message = str(caught.value)
        assert message.startswith(f"cannot copy {branches.default_parent}: 2 other sessions are connected to ")
        assert "terminates no session" in message
        # Nothing was terminated: both sessions still work.
        assert first.execute("SELECT count(*) FROM users").fetchone() == (2,)
        assert second.execute("SELECT 1").fetchone() == (1,)
    assert name not in {b.name for b in branches.list()}


def test_a_session_that_leaves_within_the_wait_does_not_stop_the_copy(
    branches: LocalBranches, pydb_database: str,
) -> None:
    conn = psycopg.connect(pydb_database)
    result: list[Branch] = []
    creating = threading.Thread(target=lambda: result.append(branches.create(_name("waits"))))
    creating.start()
    try:
        # The copy is waiting for our session to leave: the server shows its CREATE DATABASE running.
        with psycopg.connect(with_database(pydb_database, "postgres"), autocommit=True) as watch:
            waiting = ("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                       " AND query LIKE 'CREATE DATABASE%%' AND query LIKE %s")
            template = (f"%TEMPLATE \"{database_name(pydb_database)}\"%",)
            while watch.execute(waiting, template).fetchone() == (0,):
                assert creating.is_alive(), "the copy ended before it had to wait"
    finally:
        conn.close()
        creating.join()
    (created,) = result
    assert created.url is not None and _emails(created.url)[0] == "ada@example.com"


def test_deleting_a_branch_in_use_is_refused(branches: LocalBranches) -> None:
    name = _name("inuse")
    created = branches.create(name)
    assert created.url is not None
    with psycopg.connect(created.url):
        with pytest.raises(BranchError, match=r"cannot drop branch \S+: 1 other session is connected"):
            branches.delete(name)
        with pytest.raises(BranchError, match=r"1 other session is connected"):
            branches.reset(name)
    assert branches.get(name).name == name
    branches.delete(name)


def test_backend_is_local_without_neon_settings() -> None:
    assert backend(load_settings(environ={})).kind == "local"
    with pytest.raises(BranchError, match="NEON_PROJECT_ID is not set"):
        backend(load_settings(environ={"NEON_API_KEY": "k"}))


def test_format_size() -> None:
    assert [format_size(n) for n in (512, 2048, 2_202_009, 3 * 1024**3)] == [
        "512 bytes", "2.0 kB", "2.1 MB", "3.0 GB",
    ]


# -- the CLI, on a server of the test's own ------------------------------------------------------




def test_cli_create_list_url_reset_delete(state: dict[str, str]) -> None:
    up = run_pydb("dev", "up", env=state)
    assert up.returncode == 0, up.stderr
    app_url = run_pydb("dev", "url", env=state).stdout.strip()
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'from the app database')")

    created = run_pydb("branch", "create", "feature-x", env=state)
    assert created.returncode == 0, created.stderr
    port = app_url.split(":")[2].split("/")[0]
    assert re.fullmatch(
        r"branch feature-x created from pydb \(\d+\.\d MB\) in \d+ ms\n"
        rf"url: postgresql://postgres@127\.0\.0\.1:{port}/branch_feature-x\?sslmode=disable\n",
        created.stdout,
    ), created.stdout

    listed = run_pydb("branch", "list", env=state)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PARENT", "SIZE", "CREATED"]
    assert re.fullmatch(r"feature-x  pydb    \d+\.\d MB  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[1])

    url = run_pydb("branch", "url", "feature-x", env=state)
    assert url.stdout == app_url.replace("/pydb?", "/branch_feature-x?") + "\n"
    assert run_pydb("branch", "url", "feature-x", "--pooled", env=state).stdout == url.stdout
    with psycopg.connect(url.stdout.strip(), autocommit=True) as conn:
        conn.execute("UPDATE notes SET body = 'changed on the branch'")

    reset = run_pydb("branch", "reset", "feature-x", env=state)
    assert reset.returncode == 0, reset.stderr
    assert re.fullmatch(r"branch feature-x reset from pydb \(\d+\.\d MB\) in \d+ ms\n", reset.stdout)
    with psycopg.connect(url.stdout.strip()) as conn:
        assert conn.execute("SELECT body FROM notes").fetchone() == ("from the app database",)

    refused = run_pydb("branch", "delete", "feature-x", env=state, input="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    deleted = run_pydb("branch", "delete", "feature-x", "--yes", env=state)
    assert deleted.returncode == 0
    assert re.fullmatch(r"branch feature-x deleted in \d+ ms\n", deleted.stdout)
    assert run_pydb("branch", "list", env=state).stdout == (
        "no branches yet (create one with: pydb branch create NAME)\n"
    )


def test_cli_errors_are_one_line(state: dict[str, str]) -> None:
    missing = run_pydb("branch", "delete", "ghost", "--yes", env=state)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "Error: no branch named ghost (see: pydb branch list)\n"

    bad = run_pydb("branch", "create", "x'; DROP DATABASE pydb; --", env=state)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: invalid branch name \"x'; DROP DATABASE pydb; --\"")
    assert len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr

    help_text = run_pydb("branch", "--help", env=state).stdout
    for command in ("create", "list", "url", "delete", "reset"):
        assert command in help_text
        assert "Example: " in run_pydb("branch", command, "--help", env=state).stdout
