"""The GitHub Actions template .github/workflows/database.yml: valid for actionlint, and doing the documented steps."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

WORKFLOW = REPO / ".github" / "workflows" / "database.yml"
ACTIONLINT_VERSION = "v1.7.7"


def _cache_dir() -> Path:
    base = os.environ.get("PYDB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pydb"
    )
    return Path(base) / "actionlint" / ACTIONLINT_VERSION


def _actionlint() -> Path:
    """actionlint built from the Go module proxy once, into the shared cache."""
    folder = _cache_dir()
    binary = folder / "actionlint"
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed, and actionlint is built from source with it (apt-get install golang-go)")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.is_file():
            env = dict(os.environ, GOTOOLCHAIN="local", GOBIN=str(folder), CGO_ENABLED="0")
            result = subprocess.run(
                [go, "install", f"github.com/rhysd/actionlint/cmd/actionlint@{ACTIONLINT_VERSION}"],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )
            assert result.returncode == 0, result.stderr
    return binary


def test_the_workflow_passes_actionlint() -> None:
    result = subprocess.run(
        [str(_actionlint()), "-no-color", str(WORKFLOW)], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_gates_deploys_and_cleans_up() -> None:
    text = WORKFLOW.read_text()
    for step in (
        "pydb generate --check",
        "neondatabase/create-branch-action@v6",
        "neondatabase/delete-branch-action@v3",
        'pydb lint --git-base "origin/$BASE_REF"',
        "atlas migrate apply --env prod --dry-run",
        "DATABASE_URL: ${{ steps.branch.outputs.db_url }}",
        "pydb seed seed.yaml",
        "pydb drift",
        "pytest -n 2 -q",
        "gh pr comment",
        "DATABASE_URL: ${{ secrets.DATABASE_URL }}",
    ):
        assert step in text, step
    # The pooled URL never reaches Atlas: DDL and session locks need the direct host.
    assert "pooled" not in text.replace("-pooler URL is refused", "")
