""".venv/bin/atlas: `--env local` runs Atlas at once while the local server runs; other cases go through Python.

Whether Python ran is seen through a sitecustomize module on PYTHONPATH that leaves a mark when any
Python process of the test starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import new_state_dir, run_pydb

LAUNCHER = Path(sys.prefix) / "bin" / "atlas"


@pytest.fixture
def own_project(project: Path) -> Iterator[Path]:
    """The project copy with a .pydb/ of its own (a link to a server folder pydb's server user can reach)."""
    folder = new_state_dir()
    folder.mkdir()
    (project / ".pydb").symlink_to(folder)
    yield project
    run_pydb("dev", "down", cwd=project, env={"PYDB_STATE_DIR": None})
    shutil.rmtree(folder, ignore_errors=True)


def _atlas(project: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run .venv/bin/atlas ARGS in the project; also say whether a Python process started."""
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    (marks / "sitecustomize.py").write_text(f"open({str(marks / 'python-ran')!r}, 'w').close()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYDB_STATE_DIR", "PYDB_LOCAL_URL", "PYDB_ATLAS")}
    env["PYTHONPATH"] = os.pathsep.join([str(marks), env.get("PYTHONPATH", "")])
    (marks / "python-ran").unlink(missing_ok=True)
    result = subprocess.run([str(LAUNCHER), *args], cwd=project, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    return result, (marks / "python-ran").exists()


def test_the_local_env_runs_atlas_directly_while_the_server_runs(own_project: Path, tmp_path: Path) -> None:
    started, python_ran = _atlas(own_project, tmp_path, "schema", "apply", "--env", "local", "--dry-run")
    assert started.returncode == 0, started.stderr
    assert python_ran  # the server was down: the Python launcher started it
    assert (own_project / ".pydb" / "atlas.env").is_file()
    again, python_ran = _atlas(own_project, tmp_path, "schema", "apply", "--env", "local", "--dry-run")
    assert again.returncode == 0, again.stderr
    # The same plan; Atlas orders tables of the same foreign-key depth differently from run to run.
    assert sorted(again.stdout.splitlines()) == sorted(started.stdout.splitlines())
    assert 'Create "users" table' in again.stdout
    assert not python_ran


def test_other_envs_and_a_stopped_server_go_through_python(own_project: Path, tmp_path: Path) -> None:
    assert run_pydb("dev", "up", cwd=own_project, env={"PYDB_STATE_DIR": None}).returncode == 0
    result, python_ran = _atlas(own_project, tmp_path, "migrate", "validate", "--env", "ci")
    assert result.returncode == 0, result.stderr
    assert python_ran
    assert run_pydb("dev", "down", cwd=own_project, env={"PYDB_STATE_DIR": None}).returncode == 0
    result, python_ran = _atlas(own_project, tmp_path, "schema", "apply", "--env", "local", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert python_ran
