"""The GitHub Actions template .github/workflows/database.yml: valid for actionlint, and doing the documented steps."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, cache_dir, made_once

WORKFLOW = REPO / ".github" / "workflows" / "database.yml"
ACTIONLINT_VERSION = "v1.7.7"


def _build_actionlint(binary: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed, and actionlint is built from source with it (apt-get install golang-go)")
    env = dict(os.environ, GOTOOLCHAIN="local", GOBIN=str(binary.parent), CGO_ENABLED="0")
    result = subprocess.run(
        [go, "install", f"github.com/rhysd/actionlint/cmd/actionlint@{ACTIONLINT_VERSION}"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr


def _actionlint() -> Path:
    """actionlint built from the Go module proxy once, into the shared cache."""
    return made_once(cache_dir("actionlint", ACTIONLINT_VERSION) / "actionlint", _build_actionlint)


def test_the_workflow_passes_actionlint() -> None:
    result = subprocess.run(
        [str(_actionlint()), "-no-color", str(WORKFLOW)], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_gates_deploys_and_cleans_up() -> None:
    text = WORKFLOW.read_text()
    for step in (
        "scripts/pr_branch.sh lint | tee lint.txt",
        "scripts/pr_branch.sh create",
        "scripts/pr_branch.sh plan | tee plan.txt",
        "scripts/pr_branch.sh deploy",
        "scripts/pr_branch.sh seed",
        "scripts/pr_branch.sh drift",
        "scripts/pr_branch.sh delete",
        "pytest -n 2 -q",
        "gh pr comment",
        "DATABASE_URL: ${{ secrets.DATABASE_URL }}",
    ):
        assert step in text, step
    # The pooled URL never reaches Atlas: DDL and session locks need the direct host.
    assert "pooled" not in text.replace("-pooler URL is refused", "")
    script = (REPO / "scripts" / "pr_branch.sh").read_text()
    assert "pooled" not in script and "on_branch atlas migrate apply --env prod" in script
