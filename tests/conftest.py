"""Fixtures: projects to change freely, Atlas pointed at a test's own databases, servers of a test's own."""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from pydb.atlas import atlas_environ
from pydb.local import DEV_DATABASE, LocalServer
from pydb.testing import scratch_database
from pydb.urls import database_name, to_atlas
from pydb.urls import port as port_of
from tests.helpers import REPO, AtlasRunner, new_state_dir, pgbouncer_binary, run_pydb
from tests.helpers import pgbouncer as run_pgbouncer
from tests.neon_spec import NPM_PACKAGE, NPM_VERSION, VALIDATED, SpecUnavailable

if TYPE_CHECKING:
    from openapi_core import OpenAPI

    from tests.neon_double import NeonDouble


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
def demo_database(pydb_database: str) -> str:
    """URL of a test's own database holding the rows of the repository's seed.yaml (the demo data)."""
    from pydb.seed import load_seed

    load_seed(REPO / "seed.yaml", pydb_database)
    return pydb_database


def pytest_addoption(parser: pytest.Parser) -> None:
    """--screenshots DIR: where the studio's browser test saves its screenshots (default: a temporary folder)."""
    parser.addoption("--screenshots", default=None, metavar="DIR",
                     help="save the studio browser test's screenshots in DIR (docs/studio to refresh the docs)")


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The folder the studio's browser test saves its screenshots in."""
    chosen = request.config.getoption("--screenshots")
    folder = Path(chosen).resolve() if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- Neon's pooler, and the local Neon API double ------------------------------------------------------


def _server_port(server: LocalServer) -> int:
    number = port_of(server.url())
    assert number is not None
    return number


@pytest.fixture
def pgbouncer(pydb_server: LocalServer, pydb_database: str, tmp_path: Path) -> Iterator[str]:
    """A real PgBouncer (Debian's package) in transaction mode in front of this test's database.

    Returns a URL whose host looks like a Neon pooled endpoint (`ep-…-pooler`) while `hostaddr`
    sends the connection to the local PgBouncer, so pydb's own host detection is what is tested.
    """
    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip("pgbouncer is not installed (make test installs it with apt-get when run as root)")
    database = database_name(pydb_database)
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
