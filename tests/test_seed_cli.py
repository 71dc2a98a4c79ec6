"""`pydb seed` as a user runs it: output, exit codes, --dry-run, --reset, the production guard,
two seeds at once, and a seed killed midway."""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pydb.errors import ProductionGuardError
from pydb.local import LocalServer
from pydb.seed import check_production
from pydb.testing import scratch_database
from tests.helpers import GOOD, Run, contents, popen_pydb, run_pydb, snapshot
from tests.neon_double import PASSWORD, NeonDouble

BAD = """\
users:
  - email: admin@example.com
    nme: Admin
    role: root
projects:
  - owner_id: !ref admin
    name: Launch plan
"""


def seed_cmd(tmp_path: Path, url: str, text: str, *args: str, env: dict[str, str] | None = None,
             input: str | None = None) -> Run:
    """Write seed.yaml in tmp_path and run `pydb seed seed.yaml --url URL ARGS` there."""
    (tmp_path / "seed.yaml").write_text(text)
    return run_pydb("seed", "seed.yaml", "--url", url, *args, cwd=tmp_path, env=env, input=input)


def test_first_run_then_second_run(pydb_database: str, tmp_path: Path) -> None:
    first = seed_cmd(tmp_path, pydb_database, GOOD)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == (
        "users: 2 inserted, 0 updated, 0 unchanged\n"
        "projects: 1 inserted, 0 updated, 0 unchanged\n"
        "ai_usage_log: 1 inserted, 0 updated, 0 unchanged\n"
        "total: 4 inserted, 0 updated, 0 unchanged\n"
    )
    second = seed_cmd(tmp_path, pydb_database, GOOD)
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout == (
        "users: 0 inserted, 0 updated, 2 unchanged\n"
        "projects: 0 inserted, 0 updated, 1 unchanged\n"
        "ai_usage_log: 0 inserted, 0 updated, 1 unchanged\n"
        "total: 0 inserted, 0 updated, 4 unchanged\n"
    )


def test_bad_file_prints_every_problem(pydb_database: str, tmp_path: Path) -> None:
    before = snapshot(pydb_database)
    result = seed_cmd(tmp_path, pydb_database, BAD)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "seed.yaml:2:5: users: missing required column 'name' (NOT NULL, no default)\n"
        'seed.yaml:3:5: users.nme: no such column (did you mean "name"?)\n'
        "seed.yaml:4:11: users.role: 'root' is not a value of user_role (one of: user, admin)\n"
        "seed.yaml:6:15: projects.owner_id: !ref admin: no row has _id 'admin'\n"
        "4 problems; nothing was written\n"
    )
    assert snapshot(pydb_database) == before


def test_dry_run_shows_and_writes_nothing(pydb_database: str, tmp_path: Path) -> None:
    before = snapshot(pydb_database)
    result = seed_cmd(tmp_path, pydb_database, GOOD, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "users: 2 inserted, 0 updated, 0 unchanged",
        "projects: 1 inserted, 0 updated, 0 unchanged",
        "ai_usage_log: 1 inserted, 0 updated, 0 unchanged",
        "total: 4 inserted, 0 updated, 0 unchanged",
    ]
    assert result.stdout.startswith("dry run of seed.yaml on postgresql://")
    assert "(rolled back, nothing written):" in result.stdout.splitlines()[0]
    assert snapshot(pydb_database) == before


def test_reset_asks_first(pydb_database: str, tmp_path: Path) -> None:
    assert seed_cmd(tmp_path, pydb_database, GOOD).returncode == 0
    before = snapshot(pydb_database)
    refused = seed_cmd(tmp_path, pydb_database, GOOD, "--reset", input="n\n")
    assert refused.returncode == 1
    assert "Continue? [y/N]" in refused.stderr and "Aborted!" in refused.stderr
    assert snapshot(pydb_database) == before
    done = seed_cmd(tmp_path, pydb_database, GOOD, "--reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "users: 2 inserted, 0 updated, 0 unchanged (2 deleted first)"


def test_production_is_refused_without_the_flag(pydb_database: str, tmp_path: Path) -> None:
    env = {"PYDB_ENV": "production"}
    refused = seed_cmd(tmp_path, pydb_database, GOOD, env=env)
    assert refused.returncode == 1
    assert refused.stderr == ("Error: refusing to seed: PYDB_ENV=production; pass --allow-production "
                              "(allow_production=True) if you mean it\n")
    assert contents(pydb_database)["users"] == []
    allowed = seed_cmd(tmp_path, pydb_database, GOOD, "--allow-production", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert len(contents(pydb_database)["users"]) == 2


def test_neon_default_branch_is_production(monkeypatch: pytest.MonkeyPatch, neon_api: NeonDouble,
                                           neon_env: dict[str, str]) -> None:
    """Neon's cloud is not reachable here: the local Neon API double (tests/neon_double.py), checked
    against Neon's OpenAPI spec, says which branch is the default one."""
    from pydb.branches.neon import NeonBranches

    client = NeonBranches(neon_env["NEON_API_KEY"], neon_env["NEON_PROJECT_ID"], api_url=neon_env["NEON_API_URL"])
    client.create("feature")
    main, other = client.url("main"), client.url("feature", pooled=True)
    client.close()
    asked_before = len(neon_api.requests)
    monkeypatch.delenv("PYDB_ENV", raising=False)
    monkeypatch.delenv("NEON_API_KEY", raising=False)
    check_production(main)  # without Neon credentials pydb cannot ask, and says so nowhere: not refused
    assert len(neon_api.requests) == asked_before
    for name, value in neon_env.items():
        monkeypatch.setenv(name, value)
    check_production(other)
    with pytest.raises(ProductionGuardError, match=r"ep-.* default \(production\) branch") as info:
        check_production(main)
    assert PASSWORD not in str(info.value) and neon_api.api_key not in str(info.value)
    check_production("postgresql://postgres@127.0.0.1:5432/pydb")  # not a Neon host: not asked
    feature, default = neon_api.branch("feature"), neon_api.branch("main")
    assert neon_api.sent()[asked_before:] == [
        ("GET", f"endpoints/{feature.endpoint_id}"), ("GET", f"branches/{feature.id}"),
        ("GET", f"endpoints/{default.endpoint_id}"), ("GET", f"branches/{default.id}"),
    ]


def _big_seed(users: int, usage: int) -> str:
    rng = random.Random(7)
    lines = ["users:"]
    for i in range(users):
        lines += [f"  - _id: u{i}", f"    email: user{i}@example.com", f"    name: User {i}"]
    lines.append("ai_usage_log:")
    for i in range(usage):
        lines += [f"  - user_id: !ref u{rng.randrange(users)}", "    model: gpt-4o",
                  f"    tokens_used: {i}", f"    estimated_cost: {rng.random():.6f}"]
    return "\n".join(lines) + "\n"


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM ai_usage_log)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _popen_seed(tmp_path: Path, url: str, *args: str) -> subprocess.Popen[str]:
    return popen_pydb("seed", "seed.yaml", "--url", url, *args, cwd=tmp_path)


def test_two_seeds_at_once_end_like_one(pydb_server: LocalServer, pydb_template: str, pydb_database: str,
                                        tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(_big_seed(300, 3000))
    procs = [_popen_seed(tmp_path, pydb_database) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    totals = sorted(out.splitlines()[-1] for out, _err in outputs)
    assert totals == ["total: 0 inserted, 0 updated, 3300 unchanged", "total: 3300 inserted, 0 updated, 0 unchanged"]
    with scratch_database(pydb_server.url(), pydb_template) as single:
        alone = _popen_seed(tmp_path, single)
        assert alone.communicate(timeout=120) and alone.returncode == 0
        assert contents(pydb_database) == contents(single)


def _copied(watch: psycopg.Connection[Any], table: str) -> int | None:
    """Rows a COPY into table (of watch's database) has sent so far, or None when no such COPY is running."""
    row = watch.execute(
        "SELECT tuples_processed FROM pg_stat_progress_copy"
        " WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND relid = %s::regclass",
        (table,)).fetchone()
    return None if row is None else int(row[0])


def test_killed_while_writing_leaves_nothing_behind(pydb_database: str, tmp_path: Path) -> None:
    users, usage = 500, 20_000
    (tmp_path / "seed.yaml").write_text(_big_seed(users, usage))
    with psycopg.connect(pydb_database, autocommit=True) as conn:
        # Work for the server on every row written, so the COPY lasts long enough to be killed at a chosen depth.
        conn.execute("CREATE FUNCTION busy() RETURNS trigger LANGUAGE plpgsql AS $$"
                     " BEGIN PERFORM md5(repeat(NEW.model, 2000)); RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER busy BEFORE INSERT ON ai_usage_log FOR EACH ROW EXECUTE FUNCTION busy()")
    landed = 0
    with psycopg.connect(pydb_database, autocommit=True) as watch:
        for i in range(20):
            # Each run is killed at a different depth of the COPY into ai_usage_log, seen on the server.
            depth = 1 + i * (usage // 25)
            proc = _popen_seed(tmp_path, pydb_database, "--reset", "--yes")
            while (sent := _copied(watch, "ai_usage_log")) is None or sent < depth:
                assert proc.poll() is None, f"the seed ended before the kill: {proc.communicate()}"
            proc.kill()
            proc.communicate(timeout=60)
            landed += proc.returncode == -signal.SIGKILL
            counts = _counts(pydb_database)
            assert counts == (0, 0), f"partial rows after SIGKILL at row {sent}: {counts}"
    assert landed == 20
    final = _popen_seed(tmp_path, pydb_database, "--reset", "--yes")
    assert final.communicate(timeout=300) and final.returncode == 0
    assert _counts(pydb_database) == (users, usage)
