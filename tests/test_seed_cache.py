"""The cache of validated seed plans: used for an unchanged file, never when anything it depends on changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pydb.seed
from pydb.seed import load_seed
from tests.helpers import GOOD, REPO, contents

WITH_ENV = GOOD.replace("    role: admin\n", "    role: admin\n    password_hash: !env SEED_HASH_FOR_TEST\n")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PYDB_REFLECT_CACHE", str(folder))
    return folder


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make parsing observable: record each parse."""
    calls: list[str] = []
    real = pydb.seed.parse.parse_seed

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[1] if len(args) > 1 else kwargs.get("path")))
        return real(*args, **kwargs)

    monkeypatch.setattr("pydb.seed.parse_seed", recording)
    return calls


def test_an_unchanged_file_is_not_parsed_again(
    pydb_database: str, seed_file: Any, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = seed_file(GOOD)
    parses = _no_parsing(monkeypatch)
    first = load_seed(path, pydb_database)
    assert len(parses) == 1 and list(cache.glob("seed-*.pickle"))
    second = load_seed(path, pydb_database)
    assert len(parses) == 1  # served from the cache
    assert [(t.inserted, t.updated, t.unchanged) for t in second.tables] == [(0, 0, t.inserted) for t in first.tables]


def test_a_changed_environment_variable_is_a_miss(
    pydb_database: str, seed_file: Any, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = seed_file(WITH_ENV)
    parses = _no_parsing(monkeypatch)
    monkeypatch.setenv("SEED_HASH_FOR_TEST", "first")
    load_seed(path, pydb_database)
    monkeypatch.setenv("SEED_HASH_FOR_TEST", "second")
    report = load_seed(path, pydb_database)
    assert len(parses) == 2
    assert report.tables[0].updated == 1
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT password_hash FROM users WHERE email = 'admin@example.com'").fetchone() == (
            "second",)


def test_a_changed_schema_is_a_miss(
    pydb_database: str, seed_file: Any, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = seed_file(GOOD)
    parses = _no_parsing(monkeypatch)
    load_seed(path, pydb_database)
    with psycopg.connect(pydb_database) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text NOT NULL DEFAULT 'x'")
    report = load_seed(path, pydb_database)
    assert len(parses) == 2
    assert sum(t.unchanged for t in report.tables) == 4


def test_a_changed_file_is_a_miss_and_the_cache_can_be_turned_off(
    pydb_database: str, seed_file: Any, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses = _no_parsing(monkeypatch)
    load_seed(seed_file(GOOD), pydb_database)
    load_seed(seed_file(GOOD.replace("name: Ada\n", "name: Ada L.\n")), pydb_database)
    assert len(parses) == 2
    assert ("ada@example.com", "Ada L.") in [(row[1], row[2]) for row in contents(pydb_database)["users"]]
    monkeypatch.setenv("PYDB_SEED_CACHE", "0")
    load_seed("seed.yaml", pydb_database)
    assert len(parses) == 3


def _made_again(url: str, email: str) -> Any:
    """Delete a user and insert it again, under a key of the database's choosing; return that key."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM users WHERE email = %s", (email,))
        row = conn.execute("INSERT INTO users (email, name) VALUES (%s, 'Ada') RETURNING id", (email,)).fetchone()
    assert row is not None
    return row[0]


def test_cached_rows_that_no_longer_fit_the_database_are_read_again(
    pydb_database: str, seed_file: Any, cache: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses = _no_parsing(monkeypatch)
    load_seed(seed_file(GOOD), pydb_database)
    ada = _made_again(pydb_database, "ada@example.com")  # the cached text's key for Ada no longer fits
    report = load_seed("seed.yaml", pydb_database)
    assert len(parses) == 2  # the cached run was rolled back, the file read again
    assert [(t.table, t.inserted, t.updated, t.unchanged) for t in report.tables] == [
        ("users", 0, 0, 2), ("projects", 0, 0, 1), ("ai_usage_log", 1, 0, 0)]
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT user_id FROM ai_usage_log").fetchall() == [(ada,)]


def test_an_unchanged_file_loads_without_sqlalchemy(pydb_database: str, tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(GOOD)
    script = ("import sys\nfrom pydb.seed import load_seed\n"
              f"report = load_seed('seed.yaml', {pydb_database!r})\n"
              "print(report.inserted, report.unchanged, 'sqlalchemy' in sys.modules)\n")
    env = {**os.environ, "PYDB_REFLECT_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    runs = [subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs == ["4 0 True\n", "0 4 False\n"]  # the first run reads the tables; the second replays the cache
