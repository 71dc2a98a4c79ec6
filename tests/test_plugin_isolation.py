"""pydb's pytest plugin under pytest-xdist: parallel tests writing the same row do not see each other.

A user's project is simulated in tmp_path: its migrations/ and one test file with two tests that
insert a user with the same primary key, meet at a barrier (so both rows exist at the same time),
and check that each sees only its own row. It is run by a nested `pytest -n 2`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pydb.local import LocalServer
from tests.helpers import REPO

USER_TEST = '''
"""Two tests writing the same row, in parallel."""

import json
import os
from pathlib import Path

import psycopg
import pytest

SHARED_ID = "00000000-0000-0000-0000-000000000042"
BARRIER = Path(os.environ["ISOLATION_BARRIER"])


def _meet(server: str, step: str, me: str) -> None:
    """Wait for the other test at step: LISTEN, arrive, NOTIFY, then block until the other one arrives."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"LISTEN {step}")
        (BARRIER / f"{step}-{me}").touch()
        conn.execute(f"NOTIFY {step}")
        if len(list(BARRIER.glob(f"{step}-*"))) < 2:
            for note in conn.notifies(timeout=60):
                if note.pid != conn.info.backend_pid:
                    break
        assert len(list(BARRIER.glob(f"{step}-*"))) == 2, f"the other test never reached {step}: not run in parallel"


@pytest.mark.parametrize("me", ["alpha", "beta"])
def test_same_row(pydb_database: str, me: str) -> None:
    server = pydb_database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(pydb_database, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email, name) VALUES (%s, 'same@example.com', %s)", (SHARED_ID, me))
        _meet(server, "inserted", me)
        rows = conn.execute("SELECT id::text, name FROM users").fetchall()
        database = conn.execute("SELECT current_database()").fetchone()[0]
    (BARRIER / f"report-{me}.json").write_text(json.dumps({
        "worker": os.environ.get("PYTEST_XDIST_WORKER"), "database": database, "rows": rows,
    }))
    assert rows == [(SHARED_ID, me)]
    _meet(server, "checked", me)
'''


def test_parallel_tests_writing_the_same_row_are_isolated(tmp_path: Path, pydb_server: LocalServer) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(REPO / "migrations", project / "migrations")
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (project / "test_same_row.py").write_text(USER_TEST)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, ISOLATION_BARRIER=str(barrier), PYDB_TEST_STATE_DIR=str(pydb_server.state))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)

    # --basetemp: a new pytest session would otherwise make /tmp/pytest-of-<user> private again, and
    # the servers other tests run from their tmp_path (as another OS user) would lose their data folder.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", f"--basetemp={tmp_path / 'basetemp'}", "test_same_row.py"],
        cwd=project, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    reports = {me: json.loads((barrier / f"report-{me}.json").read_text()) for me in ("alpha", "beta")}
    assert {report["worker"] for report in reports.values()} == {"gw0", "gw1"}
    assert reports["alpha"]["database"] != reports["beta"]["database"]
    assert reports["alpha"]["rows"] == [["00000000-0000-0000-0000-000000000042", "alpha"]]
    assert reports["beta"]["rows"] == [["00000000-0000-0000-0000-000000000042", "beta"]]
