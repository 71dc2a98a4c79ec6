"""What several test modules share: running the CLI as a user would, seed data, row snapshots, the download
cache, a PgBouncer process and git."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import psycopg
from click.testing import CliRunner

from pydb.atlas import Atlas, AtlasResult
from pydb.local import SERVER_OS_USER

REPO = Path(__file__).resolve().parent.parent
TABLES = ("users", "projects", "ai_usage_log")

GOOD = """\
users:
  - _id: admin
    email: admin@example.com
    name: Admin
    role: admin
  - _id: ada
    email: ada@example.com
    name: Ada
projects:
  - _id: launch
    owner_id: !ref admin
    name: Launch plan
ai_usage_log:
  - user_id: !ref ada
    model: gpt-4o
    tokens_used: 1200
    estimated_cost: 0.0123
    created_at: 2025-01-06T09:30:00Z
"""


# Ada (admin) with two projects and three usage rows, and Bob with none: the relational query tests' data.
ADA_AND_BOB = """
INSERT INTO users (email, name, role) VALUES ('ada@example.com', 'Ada', 'admin'), ('bob@example.com', 'Bob', 'user');
INSERT INTO projects (owner_id, name, description, status)
  SELECT u.id, p.name, p.description, p.status
    FROM users u, (VALUES ('Analytical engine', NULL, 'active'), ('Notes', 'on the engine', 'archived'))
         AS p(name, description, status)
   WHERE u.email = 'ada@example.com';
INSERT INTO ai_usage_log (user_id, model, tokens_used, estimated_cost, endpoint)
  SELECT u.id, 'm-small', 10 * i, 0.000120 + i / 1000000.0, '/chat'
    FROM users u, generate_series(0, 2) AS i WHERE u.email = 'ada@example.com';
"""


def seed_ada_and_bob(url: str) -> None:
    """Write ADA_AND_BOB into the database at url."""
    with psycopg.connect(url) as conn:
        conn.execute(ADA_AND_BOB)


@dataclass(frozen=True)
class Run:
    """What a `pydb` command printed, and its exit status (like subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _working_folder(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run_pydb(*args: str, cwd: Path | None = None, env: Mapping[str, str | None] | None = None,
             input: str | None = None) -> Run:
    """Run `pydb ARGS` in this process (Click's runner), in cwd, without DATABASE_URL unless env sets it."""
    from pydb.cli import cli

    environ: dict[str, str | None] = {"DATABASE_URL": None, **(env or {})}
    with _working_folder(cwd or REPO):
        result = CliRunner().invoke(cli, list(args), env=environ, input=input, prog_name="pydb")
    stderr = result.stderr
    if result.exc_info is not None and result.exception is not None and not isinstance(result.exception, SystemExit):
        # What Python prints for an exception that escapes (a bug, or --debug): the traceback, exit 1.
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return Run(result.exit_code, result.stdout, stderr)


def run_pydb_process(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                     input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `pydb ARGS` in a new process, end to end (tracebacks, signals, two processes at once)."""
    environ = dict(os.environ)
    environ.pop("DATABASE_URL", None)
    environ["PYTHONPATH"] = str(REPO)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pydb", *args], cwd=cwd or REPO, env=environ, input=input,
        capture_output=True, text=True, timeout=300, check=False,
    )


def popen_pydb(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `pydb ARGS` in a new process and return it (the caller waits or kills)."""
    environ = dict(os.environ)
    environ.pop("DATABASE_URL", None)
    environ["PYTHONPATH"] = str(REPO)
    environ.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "pydb", *args], cwd=cwd, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class AtlasRunner:
    """Atlas as a user runs it (`atlas ARGS` in a folder), with atlas.hcl's local env on a test's databases."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.environ = environ

    def client(self, cwd: Path = REPO, target: str | None = None) -> Atlas:
        """The Atlas client for a folder, its local env pointed at target when given."""
        environ = dict(self.environ)
        if target is not None:
            from pydb.urls import to_atlas

            environ["PYDB_LOCAL_URL"] = to_atlas(target)
        return Atlas(cwd=cwd, environ=environ)

    def __call__(self, *args: str, cwd: Path = REPO, target: str | None = None, check: bool = True) -> AtlasResult:
        return self.client(cwd, target).run(*args, check=check)


def add_migration(atlas: AtlasRunner, project: Path, name: str, sql: str, version: str | None = None) -> Path:
    """`atlas migrate new NAME`, write the SQL, `atlas migrate hash`; a fixed version when two are made at once."""
    project_atlas = atlas.client(project)
    if version:
        created = project / "migrations" / f"{version}_{name}.sql"
    else:
        project_atlas.migrate_new(name, env="local")
        (created,) = [p for p in (project / "migrations").glob(f"*_{name}.sql")]
    created.write_text(sql)
    project_atlas.migrate_hash(env="local")
    return created


def new_state_dir() -> Path:
    """A fresh folder for a local server of a test's own, under the repository's .pydb/servers/.

    Not under tmp_path: pytest makes its temporary root private (mode 0700) whenever a session
    starts, and when the tests run as root the server runs as another OS user that must reach it.
    """
    folder = REPO / ".pydb" / "servers" / uuid.uuid4().hex[:12]
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the seeded tables with its row version (xmin), sorted."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(conn.execute(f"SELECT xmin::text, * FROM {table}").fetchall(), key=str)
            for table in TABLES
        }


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the seeded tables, without timestamps, row versions or database-made keys."""
    with psycopg.connect(url) as conn:
        return {
            "users": sorted(conn.execute(
                "SELECT id, email, name, password_hash, role::text, email_verified FROM users").fetchall(), key=repr),
            "projects": sorted(conn.execute(
                "SELECT id, owner_id, name, description, status FROM projects").fetchall(), key=repr),
            "ai_usage_log": sorted(conn.execute(
                "SELECT user_id, model, tokens_used, estimated_cost, endpoint FROM ai_usage_log"
            ).fetchall(), key=repr),
        }


def cache_dir(*parts: str) -> Path:
    """Return a folder of the cache shared by every clone (like tools/atlas/build.py's): ~/.cache/pydb/PARTS."""
    base = os.environ.get("PYDB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pydb"
    )
    return Path(base, *parts)


def made_once(target: Path, make: Callable[[Path], None]) -> Path:
    """Return target, made by make(target) first if missing; parallel workers wait for the one making it."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(target.parent / ".lock"):
        if not target.exists():
            make(target)
    return target


def pgbouncer_binary() -> str | None:
    """Return the PgBouncer program (Debian's package), or None when it is not installed."""
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return found if os.path.exists(found) else None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(binary: str, server_port: int, folder: Path) -> Iterator[int]:
    """Run PgBouncer in transaction mode in front of every database of the server on server_port; yield its port."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    folder.chmod(0o755)
    for parent in folder.parents:
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", SERVER_OS_USER]  # PgBouncer refuses to run as root
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    printed = []
    # PgBouncer logs "process up" once it listens; an empty read means it exited.
    while "process up" not in (line := proc.stderr.readline()):
        printed.append(line)
        if not line:
            proc.kill()
            raise RuntimeError(f"pgbouncer did not start: {''.join(printed).strip()}")
    # Keep reading its log, so that a full pipe never blocks it.
    reader = threading.Thread(target=proc.stderr.read, daemon=True)
    reader.start()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(timeout=10)
        proc.stderr.close()


def git(folder: Path, *args: str) -> str:
    """Run git in folder as a fixed author and return what it printed; a failure fails the test."""
    result = subprocess.run(
        ["git", "-c", "user.name=pydb tests", "-c", "user.email=tests@example.com", *args],
        cwd=folder, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def emails(url: str) -> list[str]:
    """Return the users' emails in the database at url, sorted (prepared statements off: URLs may be pooled)."""
    with psycopg.connect(url, prepare_threshold=None) as conn:
        return [str(row[0]) for row in conn.execute("SELECT email FROM users ORDER BY email").fetchall()]


def add_user(url: str, email: str) -> None:
    """Insert a user with that email into the database at url."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES (%s, 'Someone')", (email,))


class StatementLog:
    """Every statement psycopg's cursors (sync and async) send inside the block, whoever sends them."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> StatementLog:
        sync_execute, async_execute = psycopg.Cursor.execute, psycopg.AsyncCursor.execute
        self._saved = (sync_execute, async_execute)
        statements = self.statements

        def record(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return sync_execute(cursor, query, *args, **kwargs)

        async def record_async(cursor: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return await async_execute(cursor, query, *args, **kwargs)

        psycopg.Cursor.execute = record  # type: ignore[method-assign,assignment]
        psycopg.AsyncCursor.execute = record_async  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        psycopg.Cursor.execute, psycopg.AsyncCursor.execute = self._saved  # type: ignore[method-assign]
