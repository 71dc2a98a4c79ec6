"""pytest plugin shipped with pydb: each test gets its own database, cloned from a migrated template.

Fixtures: `pydb_server` (the test server, once per session), `pydb_template` (name of the template
database with migrations/ applied), `pydb_database` (URL of a fresh copy for one test, dropped
afterwards) and `pydb_dev_database` (an empty database for Atlas's dev URL). Safe under pytest-xdist.
The test server keeps its data in .pydb/test/ (or $PYDB_TEST_STATE_DIR), apart from `pydb dev`'s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pydb.config import load_settings
from pydb.errors import PydbError
from pydb.local import DEV_DATABASE, LocalServer
from pydb.testing import migrated_template, scratch_database


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini options of the plugin."""
    parser.addini("pydb_migrations", "folder of Atlas migrations applied to the test template", default="migrations")


@pytest.fixture(scope="session")
def pydb_server(pytestconfig: pytest.Config) -> LocalServer:
    """The local PostgreSQL server the tests run on, started if needed."""
    server = LocalServer(load_settings(pytestconfig.rootpath).test_state)
    try:
        server.up()
    except PydbError as err:
        pytest.exit(f"pydb: cannot start the test database: {err}", returncode=1)
    return server


@pytest.fixture(scope="session")
def pydb_template(pydb_server: LocalServer, pytestconfig: pytest.Config) -> str:
    """Name of the template database: migrations/ applied once per content of the folder."""
    migrations = pytestconfig.rootpath / str(pytestconfig.getini("pydb_migrations"))
    try:
        return migrated_template(pydb_server, migrations)
    except PydbError as err:
        pytest.exit(f"pydb: cannot build the test template from {migrations}: {err}", returncode=1)


@pytest.fixture
def pydb_database(pydb_server: LocalServer, pydb_template: str) -> Iterator[str]:
    """URL of a database of this test's own, a copy of the migrated template, dropped afterwards."""
    with scratch_database(pydb_server.url(), pydb_template) as url:
        yield url


@pytest.fixture
def pydb_dev_database(pydb_server: LocalServer) -> Iterator[str]:
    """URL of an empty database (with the vector extension) for Atlas's --dev-url."""
    with scratch_database(pydb_server.url(), DEV_DATABASE, prefix="pydb_devtest_") as url:
        yield url
