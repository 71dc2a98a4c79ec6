"""The pull-request workflow end to end: .github/workflows/database.yml's Neon steps, run as written there,
against the local Neon API double (tests/neon_double.py) and the real Atlas, pydb and PostgreSQL.

The steps are read from the workflow file (every step that runs scripts/pr_branch.sh, in order, with
the environment the workflow gives it) and run with bash as GitHub runs them. After each step the
test checks its exit code and looks at the rows through the URLs the API returns, to show that the
pull request's branch is a copy that writes never leak out of, in either direction.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from pydb.branches.neon import NeonBranches
from tests.helpers import REPO, AtlasRunner, emails, git, run_pydb
from tests.neon_double import NeonDouble

WORKFLOW = REPO / ".github" / "workflows" / "database.yml"
SCRIPT = "scripts/pr_branch.sh"
PR = "42"
BRANCH = f"pr-{PR}"
PROJECT_DESCRIPTION = '  column "description" {\n    type = text\n    null = true\n  }\n'
NICKNAME = '  column "nickname" {\n    type = varchar(100)\n    null = true\n  }\n'


@dataclass(frozen=True)
class Step:
    """One step of the workflow that runs scripts/pr_branch.sh."""

    job: str
    name: str
    run: str
    env: dict[str, str]

    @property
    def command(self) -> str:
        """The subcommand of scripts/pr_branch.sh the step runs."""
        found = re.search(rf"{re.escape(SCRIPT)} (\w+)", self.run)
        assert found, self.run
        return found[1]


def _resolve(value: Any, known: dict[str, str]) -> str:
    """A value of the workflow's env with its ${{ … }} expressions replaced; an unknown one fails the test."""

    def one(match: re.Match[str]) -> str:
        expression = match[1].strip()
        if expression not in known:
            pytest.fail(f"{WORKFLOW.name} uses ${{{{ {expression} }}}}, which this test does not stand in for")
        return known[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def workflow_steps(known: dict[str, str]) -> list[Step]:
    """The steps of database.yml that run scripts/pr_branch.sh, in order, with their resolved environment."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["defaults"]["run"]["shell"] == "bash"
    steps = []
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if SCRIPT not in step.get("run", ""):
                continue
            env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            steps.append(Step(job_name, step["name"], step["run"],
                              {k: _resolve(v, known) for k, v in env.items()}))
    return steps


def _has_nickname(url: str) -> bool:
    with psycopg.connect(url, prepare_threshold=None) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.columns "
                           "WHERE table_name = 'projects' AND column_name = 'nickname'").fetchone()
        return bool(row and row[0])


@pytest.fixture
def pr_project(project: Path, atlas: AtlasRunner) -> Path:
    """A repository whose pull request adds a column: main committed, then the PR's schema and migration."""
    shutil.copytree(REPO / "scripts", project / "scripts")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "base")
    git(project, "update-ref", "refs/remotes/origin/main", "main")
    git(project, "checkout", "-q", "-b", "feature")
    schema = project / "schema.hcl"
    assert PROJECT_DESCRIPTION in schema.read_text()
    schema.write_text(schema.read_text().replace(PROJECT_DESCRIPTION, PROJECT_DESCRIPTION + NICKNAME, 1))
    atlas("migrate", "diff", "add_nickname", "--env", "local", cwd=project)
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "projects.nickname")
    return project


def test_the_pull_request_workflow_on_neon(
    neon_api: NeonDouble, neon_env: dict[str, str], pr_project: Path, pydb_dev_database: str,
) -> None:
    known = {
        "github.event.pull_request.number": PR, "github.base_ref": "main",
        "vars.NEON_PROJECT_ID": neon_api.project_id, "secrets.NEON_API_KEY": neon_api.api_key,
    }
    steps = workflow_steps(known)
    assert [(s.job, s.command) for s in steps] == [
        ("check", "lint"), ("check", "create"), ("check", "plan"), ("check", "deploy"), ("check", "seed"),
        ("check", "drift"), ("cleanup", "delete"),
    ]
    by_command = {s.command: s for s in steps}
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "PYDB_ENV") and not k.startswith(("NEON_", "GITHUB_"))}
    base_env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "NEON_API_URL": neon_api.url,  # the double stands in for https://console.neon.tech/api/v2
        "ATLAS_DEV_URL": pydb_dev_database,  # CI runs `pydb dev up` for Atlas's dev database
    }

    def run(command: str) -> subprocess.CompletedProcess[str]:
        step = by_command[command]
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.run],
            cwd=pr_project, env=base_env | step.env, capture_output=True, text=True, timeout=600, check=False,
        )
        assert result.returncode == 0, f"step {step.name!r} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        assert neon_api.api_key not in result.stdout + result.stderr
        return result

    neon = NeonBranches(neon_api.api_key, neon_api.project_id, api_url=neon_api.url)
    main_url = neon.url("main")
    with psycopg.connect(neon_api.database_url("main")) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES ('main@example.com', 'Production')")

    # -- the first push of the pull request ----------------------------------------------------------
    lint = run("lint")
    assert "pydb lint passed: 0 error(s)" in lint.stdout and (pr_project / "lint.txt").read_text() == lint.stdout
    created = run("create")
    assert created.stdout.startswith(f"branch {BRANCH} created from main in ")
    direct, pooled = neon.url(BRANCH), neon.url(BRANCH, pooled=True)
    assert emails(direct) == emails(pooled) == ["main@example.com"]
    assert "ADD COLUMN \"nickname\"" in run("plan").stdout
    assert not _has_nickname(direct)
    run("deploy")
    assert _has_nickname(direct) and not _has_nickname(main_url)
    seeded = run("seed")
    assert "total: " in seeded.stdout
    seed_rows = ["ada@example.com", "admin@example.com", "main@example.com"]
    assert emails(direct) == emails(pooled) == seed_rows
    assert emails(main_url) == ["main@example.com"]  # the branch's writes stay on the branch
    drift = run("drift")
    assert "applied migrations: 2" in drift.stdout and drift.stdout.endswith("\nno drift\n"), drift.stdout

    # The default branch is production: seeding it is refused unless asked for.
    refused = run_pydb("seed", "seed.yaml", cwd=pr_project, env=neon_env | {"DATABASE_URL": main_url})
    assert refused.returncode == 1
    assert "refusing to seed" in refused.stderr and "default (production) branch" in refused.stderr
    assert emails(main_url) == ["main@example.com"]

    # -- a second push: the branch is reset to the default branch (no children) and set up again ------
    with psycopg.connect(neon_api.database_url("main")) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES ('main-later@example.com', 'Production')")
    reset = run("create")
    assert reset.stdout.startswith(f"branch {BRANCH} reset from main")
    assert emails(neon.url(BRANCH)) == ["main-later@example.com", "main@example.com"]
    assert not _has_nickname(neon.url(BRANCH))
    for command in ("deploy", "seed", "drift"):
        run(command)
    assert _has_nickname(neon.url(BRANCH)) and not _has_nickname(main_url)

    # -- a third push while someone has a branch of the PR branch: its old state and child are kept ----
    child = run_pydb("branch", "create", f"{BRANCH}-preview", "--from", BRANCH, env=neon_env)
    assert child.returncode == 0, child.stderr
    with psycopg.connect(neon_api.database_url(f"{BRANCH}-preview")) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES ('preview@example.com', 'Preview')")
    kept_reset = run("create")
    kept = re.search(rf"its previous state is branch ({BRANCH}-before-\d{{14}})", kept_reset.stdout)
    assert kept, kept_reset.stdout
    parents = {b.name: b.parent for b in neon.list()}
    assert parents == {"main": None, BRANCH: "main", kept[1]: "main", f"{BRANCH}-preview": kept[1]}
    assert emails(neon.url(BRANCH)) == ["main-later@example.com", "main@example.com"]
    assert emails(neon_api.database_url(kept[1])) == ["ada@example.com", "admin@example.com",
                                                      "main-later@example.com", "main@example.com"]
    assert emails(neon.url(f"{BRANCH}-preview"))[-1] == "preview@example.com"

    # -- the pull request is closed: the cleanup job deletes the branch; closing twice is harmless --------
    deleted = run("delete")
    assert deleted.stdout.startswith(f"branch {BRANCH} deleted in ")
    assert BRANCH not in {b.name for b in neon.list()}
    assert run("delete").stdout == f"branch {BRANCH} does not exist: nothing to delete\n"
    assert emails(main_url) == ["main-later@example.com", "main@example.com"]
    neon.close()
