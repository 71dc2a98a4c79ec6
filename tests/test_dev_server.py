"""`pydb dev up|down|url|status` on a server of the test's own, as a user runs them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import psutil
import psycopg

from pydb.urls import port as port_of
from tests.helpers import run_pydb, run_pydb_process


def test_up_twice_down_twice(state: dict[str, str]) -> None:
    first = run_pydb("dev", "up", env=state)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("local database started: postgresql://postgres@127.0.0.1:")
    assert "created databases: pydb, pydb_dev" in first.stdout

    second = run_pydb("dev", "up", env=state)
    assert second.returncode == 0
    assert second.stdout.startswith("local database already running: ")
    assert "created" not in second.stdout

    down = run_pydb("dev", "down", env=state)
    assert (down.returncode, down.stdout) == (0, "local database stopped\n")
    again = run_pydb("dev", "down", env=state)
    assert (again.returncode, again.stdout) == (0, "local database was not running\n")


def test_up_recovers_after_the_server_was_killed(state: dict[str, str]) -> None:
    assert run_pydb("dev", "up", env=state).returncode == 0
    pid_file = Path(state["PYDB_STATE_DIR"]) / "pgdata" / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    server = psutil.Process(pid)
    server.kill()
    server.wait(timeout=30)
    result = run_pydb("dev", "up", env=state)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("local database recovered after a crash; started: ")
    assert run_pydb("dev", "status", env=state).stdout.startswith("local database: running")


def test_url_and_status(state: dict[str, str]) -> None:
    url = run_pydb("dev", "url", env=state)
    assert url.returncode == 0
    assert url.stdout.strip().endswith("/pydb?sslmode=disable")
    urls = json.loads(run_pydb("dev", "url", "--json", env=state).stdout)
    assert urls["dev_url"].endswith("/pydb_dev?sslmode=disable")
    assert urls["atlas_url"].startswith("postgres://") and "search_path=public" in urls["atlas_url"]
    assert run_pydb("dev", "url", "--dev", env=state).stdout.strip() == urls["dev_url"]

    import psycopg

    with psycopg.connect(urls["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")
        conn.execute("INSERT INTO notes VALUES (1), (2)")
    status = run_pydb("dev", "status", env=state)
    assert status.returncode == 0
    assert "postgresql: 18." in status.stdout
    assert "notes  2 rows" in status.stdout


def test_status_of_a_folder_without_server(state: dict[str, str]) -> None:
    result = run_pydb("dev", "status", env=state)
    assert result.returncode == 0
    assert "local database: stopped" in result.stdout
    assert "start it with: pydb dev up" in result.stdout


def test_a_corrupt_state_folder_is_one_clear_error(state: dict[str, str]) -> None:
    folder = Path(state["PYDB_STATE_DIR"])
    folder.mkdir()
    (folder / "server.json").write_text("{not json")
    result = run_pydb("dev", "up", env=state)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and "server.json is unreadable" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_foreign_data_folder_is_one_clear_error(state: dict[str, str]) -> None:
    pgdata = Path(state["PYDB_STATE_DIR"]) / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("15\n")
    result = run_pydb("dev", "up", env=state)
    assert result.returncode == 1
    assert "holds PostgreSQL 15 data, but pydb runs PostgreSQL 18" in result.stderr
    assert "Traceback" not in result.stderr

    (pgdata / "PG_VERSION").unlink()
    (pgdata / "something").write_text("x")
    result = run_pydb("dev", "up", env=state)
    assert result.returncode == 1
    assert "is not a PostgreSQL data folder" in result.stderr


def test_debug_shows_the_traceback(state: dict[str, str]) -> None:
    folder = Path(state["PYDB_STATE_DIR"])
    folder.mkdir()
    (folder / "server.json").write_text("[]")
    result = run_pydb_process("--debug", "dev", "up", env=state)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_atlas_starts_the_local_server_when_it_is_down(state: dict[str, str], project: Path) -> None:
    import subprocess
    import sys

    atlas = Path(sys.prefix) / "bin" / "atlas"
    env = dict(os.environ, **state)
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [str(atlas), "schema", "apply", "--env", "local", "--dry-run"], cwd=project, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Create \"users\" table" in result.stdout
    assert run_pydb("dev", "status", env=state).stdout.startswith("local database: running")


def test_the_port_stays_across_restarts_and_a_taken_port_is_said(state: dict[str, str]) -> None:
    url = run_pydb("dev", "url", env=state).stdout.strip()
    port = port_of(url)
    # A session open while the server stops leaves the port in TIME_WAIT, as a real restart does.
    conn = psycopg.connect(url)
    assert run_pydb("dev", "down", env=state).stdout == "local database stopped\n"
    conn.close()
    again = run_pydb("dev", "up", env=state)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"local database started: {url}\n"
    assert run_pydb("dev", "down", env=state).returncode == 0
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may still be in TIME_WAIT
        taken.bind(("127.0.0.1", port))
        taken.listen()
        moved = run_pydb("dev", "up", env=state)
    assert moved.returncode == 0, moved.stderr
    new_port = port_of(run_pydb("dev", "url", env=state).stdout.strip())
    assert new_port != port
    assert moved.stdout.splitlines()[1] == (
        f"note: port {port} is taken by another program; the local database now listens on {new_port} "
        f"(update URLs you saved, or free {port} and run `pydb dev down` then `pydb dev up`)")
