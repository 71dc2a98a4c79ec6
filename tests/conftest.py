"""Fixtures: projects to change freely, Atlas pointed at a test's own databases, servers of a test's own."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pydb.atlas import atlas_environ
from pydb.local import DEV_DATABASE, LocalServer
from pydb.testing import scratch_database
from pydb.urls import to_atlas
from tests.helpers import REPO, AtlasRunner, new_state_dir, run_pydb


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
