"""Shared helpers: run the CLI and Atlas as a user would, on copies of the repository's files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from pydb.atlas import AtlasResult, atlas_environ, run_atlas
from pydb.local import LocalServer
from pydb.urls import to_atlas
from tests.helpers import pgbouncer_binary
from tests.neon_spec import NPM_PACKAGE, NPM_VERSION, VALIDATED, SpecUnavailable

if TYPE_CHECKING:
    from openapi_core import OpenAPI

    from tests.neon_double import NeonDouble

REPO = Path(__file__).resolve().parent.parent


def run_pydb(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `pydb ARGS` in a new process and return what it printed."""
    environ = dict(os.environ)
    environ.pop("DATABASE_URL", None)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pydb", *args], cwd=cwd or REPO, env=environ, input=input,
        capture_output=True, text=True, timeout=300, check=False,
    )


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


AtlasRunner = Callable[..., AtlasResult]


def add_migration(atlas: AtlasRunner, project: Path, name: str, sql: str, version: str | None = None) -> Path:
    """`atlas migrate new NAME`, write the SQL, `atlas migrate hash`; a fixed version when two are made at once."""
    if version:
        created = project / "migrations" / f"{version}_{name}.sql"
    else:
        atlas("migrate", "new", name, "--env", "local", cwd=project)
        (created,) = [p for p in (project / "migrations").glob(f"*_{name}.sql")]
    created.write_text(sql)
    atlas("migrate", "hash", "--env", "local", cwd=project)
    return created


@pytest.fixture
def atlas(pydb_database: str, pydb_dev_database: str) -> AtlasRunner:
    """Run Atlas with atlas.hcl's local env pointed at this test's own database and dev database."""

    def run(*args: str, cwd: Path = REPO, target: str | None = None, check: bool = True) -> AtlasResult:
        environ = atlas_environ(None)
        environ["PYDB_LOCAL_URL"] = to_atlas(target or pydb_database)
        environ["PYDB_LOCAL_DEV_URL"] = environ["PYDB_DEV_URL"] = to_atlas(pydb_dev_database)
        return run_atlas(list(args), cwd=cwd, environ=environ, check=check)

    return run


@pytest.fixture
def empty_database(pydb_server: object) -> object:
    """URL of an empty database (no tables; the vector extension installed), dropped afterwards."""
    from pydb.local import DEV_DATABASE
    from pydb.testing import scratch_database

    server = pydb_server
    with scratch_database(server.url(), DEV_DATABASE, prefix="pydb_empty_") as url:  # type: ignore[attr-defined]
        yield url


def new_state_dir() -> Path:
    """A fresh folder for a local server of a test's own, under the repository's .pydb/servers/.

    Not under tmp_path: pytest makes its temporary root private (mode 0700) whenever a session
    starts, and when the tests run as root the server runs as another OS user that must reach it.
    """
    folder = REPO / ".pydb" / "servers" / uuid.uuid4().hex[:12]
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


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
    import textwrap

    monkeypatch.chdir(tmp_path)

    def write(text: str) -> str:
        (tmp_path / "seed.yaml").write_text(textwrap.dedent(text))
        return "seed.yaml"

    return write


# -- Neon's pooler, and the local Neon API double ------------------------------------------------------


def _server_port(server: LocalServer) -> int:
    port = urlsplit(server.url()).port
    assert port is not None
    return port


@pytest.fixture
def pgbouncer(pydb_server: LocalServer, pydb_database: str, tmp_path: Path) -> Iterator[str]:
    """A real PgBouncer (Debian's package) in transaction mode in front of this test's database.

    Returns a URL whose host looks like a Neon pooled endpoint (`ep-…-pooler`) while `hostaddr`
    sends the connection to the local PgBouncer, so pydb's own host detection is what is tested.
    """
    from tests.helpers import pgbouncer as run_pgbouncer

    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip("pgbouncer is not installed (make test installs it with apt-get when run as root)")
    database = urlsplit(pydb_database).path.lstrip("/")
    with run_pgbouncer(binary, _server_port(pydb_server), tmp_path / "pgbouncer") as port:
        yield f"postgresql://postgres@ep-pydb-test-pooler.eu-central-1.aws.neon.tech:{port}/{database}?hostaddr=127.0.0.1"


@pytest.fixture(scope="session")
def neon_openapi() -> OpenAPI:
    """Neon's OpenAPI spec, loaded once per process; fails (with the reason) when it cannot be had."""
    from tests.neon_spec import openapi

    try:
        return openapi()
    except SpecUnavailable as err:
        reason = str(err)
    pytest.fail(reason, pytrace=False)


@pytest.fixture
def neon_api(pydb_server: LocalServer, pydb_database: str, neon_openapi: OpenAPI,
             tmp_path: Path) -> Iterator[NeonDouble]:
    """The local Neon API double (tests/neon_double.py) on a free port, its default branch this test's database.

    Pooled URLs go through a PgBouncer of this test's own when PgBouncer is installed. A request or
    response off Neon's spec fails the test.
    """
    import contextlib

    from tests.helpers import pgbouncer as run_pgbouncer
    from tests.neon_double import NeonDouble, serve

    with contextlib.ExitStack() as stack:
        binary = pgbouncer_binary()
        pooler = stack.enter_context(run_pgbouncer(binary, _server_port(pydb_server), tmp_path / "pgbouncer")) \
            if binary else None
        double = stack.enter_context(serve(NeonDouble(pydb_database, neon_openapi, pooler_port=pooler)))
        yield double
    if double.violations:
        pytest.fail("the Neon API double saw requests or responses off Neon's OpenAPI spec:\n"
                    + "\n".join(double.violations), pytrace=False)


@pytest.fixture
def neon_env(neon_api: NeonDouble) -> dict[str, str]:
    """Environment pointing pydb's Neon backend at the double."""
    return {"NEON_API_KEY": neon_api.api_key, "NEON_PROJECT_ID": neon_api.project_id, "NEON_API_URL": neon_api.url}


_WORKER_PAIRS: list[int] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker, hand the count of validated pairs to the controller."""
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["neon_validated_pairs"] = VALIDATED.count


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Add up the counts of the pytest-xdist workers."""
    _WORKER_PAIRS.append(int(getattr(node, "workeroutput", {}).get("neon_validated_pairs", 0)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many request/response pairs the Neon API double validated against Neon's spec."""
    total = VALIDATED.count + sum(_WORKER_PAIRS)
    if total:
        terminalreporter.write_line(
            f"Neon API double: {total} request/response pairs validated against Neon's OpenAPI spec "
            f"({NPM_PACKAGE}@{NPM_VERSION})"
        )
