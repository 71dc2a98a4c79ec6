"""Fixtures: projects to change freely, Atlas pointed at a test's own databases, servers of a test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pydb.atlas import atlas_environ
from pydb.local import DEV_DATABASE, SERVER_OS_USER, LocalServer
from pydb.testing import scratch_database
from pydb.urls import port as port_of
from pydb.urls import to_atlas
from tests.helpers import REPO, AtlasRunner, free_port, new_state_dir, run_pydb


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's schema.hcl, atlas.hcl, seed.yaml and migrations/ to change freely."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("schema.hcl", "atlas.hcl", "seed.yaml"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "migrations", dest / "migrations")
    return dest


@pytest.fixture
def atlas(pydb_database: str, pydb_dev_database: str) -> AtlasRunner:
    """Atlas with atlas.hcl's local env pointed at this test's own database and dev database."""
    environ = atlas_environ(None)
    environ["PYDB_LOCAL_URL"] = to_atlas(pydb_database)
    environ["PYDB_LOCAL_DEV_URL"] = environ["PYDB_DEV_URL"] = to_atlas(pydb_dev_database)
    return AtlasRunner(environ)


@pytest.fixture
def empty_database(pydb_server: LocalServer) -> Iterator[str]:
    """URL of an empty database (no tables; the vector extension installed), dropped afterwards."""
    with scratch_database(pydb_server.url(), DEV_DATABASE, prefix="pydb_empty_") as url:
        yield url


@pytest.fixture(scope="session")
def schema_tables(pydb_server: LocalServer, pydb_template: str) -> dict[str, sa.Table]:
    """The migrated schema's tables, reflected once, for tests that check a seed file without writing it."""
    from pydb.database import Database

    with scratch_database(pydb_server.url(), pydb_template, prefix="pydb_reflect_") as url:
        db = Database(url)
        try:
            return dict(db.tables)
        finally:
            db.dispose()


@pytest.fixture
def state() -> Iterator[dict[str, str]]:
    """Environment pointing pydb at a .pydb folder of this test's own; stopped and removed afterwards."""
    folder = new_state_dir()
    env = {"PYDB_STATE_DIR": str(folder)}
    yield env
    run_pydb("dev", "down", env=env)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def seed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write seed.yaml in a fresh working folder (the current one) and return its relative path."""
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> str:
        (tmp_path / "seed.yaml").write_text(textwrap.dedent(text))
        return "seed.yaml"

    return write


@pytest.fixture
def pgbouncer(pydb_server: LocalServer, pydb_database: str, tmp_path: Path) -> Iterator[str]:
    """A real PgBouncer (Debian's package) in transaction mode in front of this test's database.

    Returns a URL whose host looks like a Neon pooled endpoint (`ep-…-pooler`) while `hostaddr`
    sends the connection to the local PgBouncer, so pydb's own host detection is what is tested.
    """
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.skip("pgbouncer is not installed (make test installs it with apt-get when run as root)")
    port = free_port()
    folder = tmp_path / "pgbouncer"
    folder.mkdir()
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={port_of(pydb_server.url())}\n"
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
    # PgBouncer logs "process up" once it listens; a line of nothing means it exited.
    while "process up" not in (line := proc.stderr.readline()):
        printed.append(line)
        if not line:
            proc.kill()
            pytest.fail(f"pgbouncer did not start: {''.join(printed)}")
    database = pydb_database.rsplit("/", 1)[1].split("?")[0]
    yield f"postgresql://postgres@ep-pydb-test-pooler.eu-central-1.aws.neon.tech:{port}/{database}?hostaddr=127.0.0.1"
    proc.terminate()
    proc.communicate(timeout=10)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio, the loop psycopg and SQLAlchemy's asyncio use."""
    return "asyncio"
