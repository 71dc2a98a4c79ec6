"""Rows from CSV and JSON Lines files named in seed.yaml (`table: !csv data/rows.csv`): loaded like YAML rows,
checked with the same rules, every problem at its data file's line and column, nothing written on a problem."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pydb.seed
from pydb.errors import SeedError
from pydb.seed import load_seed
from tests.helpers import snapshot

USERS = """\
users:
  - _id: ada
    email: ada@example.com
    name: Ada
"""
SEED = USERS + "projects: !csv data/projects.csv\nai_usage_log: !jsonl data/usage.jsonl\n"
PROJECTS = 'owner_id,name,status,description\n!ref ada,Launch,active,"A plan, ""quoted"""\n!ref ada,Later,,\n'
USAGE = ('{"user_id": "!ref ada", "model": "gpt-4o", "tokens_used": 12, "estimated_cost": 0.0123,'
         ' "created_at": "2025-01-06T09:30:00Z"}\n'
         '{"user_id": "!ref ada", "model": "o3", "tokens_used": 7}\n')


def write(folder: Path, files: dict[str, str]) -> None:
    """Write files (relative paths) under folder."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def problems_of(url: str, folder: Path, files: dict[str, str]) -> list[str]:
    """Load seed.yaml (with its data files) that must fail: its problems; nothing was written."""
    write(folder, files)
    before = snapshot(url)
    with pytest.raises(SeedError) as info:
        load_seed("seed.yaml", url)
    assert snapshot(url) == before
    return [str(p) for p in info.value.problems]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder of the test's own, with a cache of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYDB_REFLECT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_csv_and_jsonl_rows_load_and_load_again_unchanged(pydb_database: str, folder: Path) -> None:
    write(folder, {"seed.yaml": SEED, "data/projects.csv": PROJECTS, "data/usage.jsonl": USAGE})
    first = load_seed("seed.yaml", pydb_database)
    assert [(t.table, t.inserted, t.updated, t.unchanged) for t in first.tables] == [
        ("users", 1, 0, 0), ("projects", 2, 0, 0), ("ai_usage_log", 2, 0, 0)]
    with psycopg.connect(pydb_database) as conn:
        (ada,) = conn.execute("SELECT id FROM users").fetchone() or (None,)
        assert conn.execute("SELECT owner_id, name, status, description FROM projects ORDER BY name").fetchall() == [
            (ada, "Later", None, None), (ada, "Launch", "active", 'A plan, "quoted"')]
        assert conn.execute("SELECT user_id, model, tokens_used, estimated_cost, created_at = '2025-01-06T09:30Z'"
                            " FROM ai_usage_log ORDER BY model").fetchall() == [
            (ada, "gpt-4o", 12, Decimal("0.012300"), True), (ada, "o3", 7, None, False)]  # o3: now()
    before = snapshot(pydb_database)
    again = load_seed("seed.yaml", pydb_database)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert snapshot(pydb_database) == before


def test_yaml_refers_to_rows_named_in_a_csv_file(pydb_database: str, folder: Path) -> None:
    write(folder, {"seed.yaml": "projects:\n  - owner_id: !ref grace\n    name: Compiler\nusers: !csv users.csv\n",
                   "users.csv": "_id,email,name,email_verified\ngrace,grace@example.com,Grace,true\n"})
    load_seed("seed.yaml", pydb_database)
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT u.email, u.email_verified FROM projects p JOIN users u ON u.id = p.owner_id"
                            ).fetchall() == [("grace@example.com", True)]


def test_a_changed_data_file_is_read_again_an_unchanged_one_is_not(
    pydb_database: str, folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(folder, {"seed.yaml": SEED, "data/projects.csv": PROJECTS, "data/usage.jsonl": USAGE})
    parses: list[str] = []
    real = pydb.seed.parse.parse_seed

    def recording(*args: Any, **kwargs: Any) -> Any:
        parses.append(str(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr("pydb.seed.parse_seed", recording)
    load_seed("seed.yaml", pydb_database)
    load_seed("seed.yaml", pydb_database)
    assert len(parses) == 1
    write(folder, {"data/projects.csv": PROJECTS.replace("Later", "Later on")})
    report = load_seed("seed.yaml", pydb_database)
    assert len(parses) == 2
    assert (report.inserted, report.unchanged) == (1, 4)  # found by content: the edited row is a new row


@pytest.mark.parametrize(("files", "expected"), [
    ({"data/projects.csv": "owner_id,nme,status\n!ref ada,Launch,active\n"},
     ["data/projects.csv:1:1: projects: missing required column 'name' (NOT NULL, no default)",
      'data/projects.csv:1:10: projects.nme: no such column (did you mean "name"?)']),
    ({"data/projects.csv": 'owner_id,name,description,status\n!ref ada,"Plan, v1","two\nlines",paused_for_a_very'
                           '_long_time_because_reasons_that_do_not_fit_in_fifty_chars\n'},
     ["data/projects.csv:3:8: projects.status: 74 characters, longer than the column's 50"]),
    ({"data/projects.csv": "owner_id,name\n!ref adaa,Launch\n"},
     ["data/projects.csv:2:1: projects.owner_id: !ref adaa: no row has _id 'adaa' (did you mean \"ada\"?)"]),
    ({"data/projects.csv": "owner_id,name\nnot-a-uuid,Launch\n,Other\n"},
     ["data/projects.csv:2:1: projects.owner_id: expected a uuid, got 'not-a-uuid'",
      "data/projects.csv:3:1: projects.owner_id: cannot be null (the column is NOT NULL)"]),
    ({"data/usage.jsonl": '{"user_id": "!ref ada", "model": "m", "tokens_used": "12"}\n'},
     ["data/usage.jsonl:1:54: ai_usage_log.tokens_used: expected an integer, got '12'"]),
    ({"data/usage.jsonl": '{"user_id": "!ref ada", "modle": "m", "tokens_used": 1}\n'},
     ["data/usage.jsonl:1:1: ai_usage_log: missing required column 'model' (NOT NULL, no default)",
      'data/usage.jsonl:1:25: ai_usage_log.modle: no such column (did you mean "model"?)']),
    ({"data/usage.jsonl": '\n{"user_id": "!ref ada", "model": null, "tokens_used": 3000000000}\n'},
     ["data/usage.jsonl:2:34: ai_usage_log.model: cannot be null (the column is NOT NULL)",
      "data/usage.jsonl:2:55: ai_usage_log.tokens_used: 3000000000 is out of range for INTEGER"]),
    ({"data/usage.jsonl": '{"user_id": "!ref ada", "model": ["m"], "tokens_used": 1}\n'},
     ["data/usage.jsonl:1:34: ai_usage_log.model: expected a single value, got a list"]),
], ids=["csv-header", "csv-value-after-multiline-field", "csv-ref", "csv-uuid-and-null", "jsonl-quoted-number",
        "jsonl-unknown-column", "jsonl-null-and-range", "jsonl-list"])
def test_each_problem_at_its_data_file_line_and_column(
    pydb_database: str, folder: Path, files: dict[str, str], expected: list[str],
) -> None:
    base = {"seed.yaml": SEED, "data/projects.csv": PROJECTS, "data/usage.jsonl": USAGE}
    assert problems_of(pydb_database, folder, base | files) == expected


@pytest.mark.parametrize(("files", "expected"), [
    ({"data/projects.csv": "owner_id,name\n!ref ada,Launch,extra\n"},
     ["data/projects.csv:2:1: projects: 3 fields, but the header has 2"]),
    ({"data/projects.csv": 'owner_id,name\n!ref ada,"Launch\n'},
     ["data/projects.csv:2:1: projects: unexpected end of data"]),
    ({"data/projects.csv": "owner_id,name,name\n!ref ada,a,b\n"},
     ["data/projects.csv:1:15: projects.name: column given twice in the header (first at column 10)"]),
    ({"data/projects.csv": ""},
     ["data/projects.csv:1:1: projects: the file is empty; a CSV file starts with a header row of column names"]),
    ({"data/usage.jsonl": '{"user_id": "!ref ada", "model": "m",}\n["a"]\n'},
     ["data/usage.jsonl:1:38: ai_usage_log: invalid JSON: Expecting property name enclosed in double quotes",
      "data/usage.jsonl:2:1: ai_usage_log: a row is a JSON object of column names to values"]),
    ({"data/usage.jsonl": '{"model": "m", "model": "n", "_id": "no spaces!"}\n'},
     ["data/usage.jsonl:1:16: ai_usage_log.model: column given twice in one row",
      "data/usage.jsonl:1:37: ai_usage_log: _id must be a name of letters, digits, '_', '-' or '.'"]),
    ({"seed.yaml": USERS + "projects: !csv data/nowhere.csv\n"},
     ["seed.yaml:5:11: projects: cannot read data/nowhere.csv: No such file or directory"]),
], ids=["csv-field-count", "csv-open-quote", "csv-header-twice", "csv-empty", "jsonl-syntax", "jsonl-row-shape",
        "missing-file"])
def test_each_mistake_in_a_data_file_is_reported_alone_at_its_position(
    pydb_database: str, folder: Path, files: dict[str, str], expected: list[str],
) -> None:
    base = {"seed.yaml": SEED, "data/projects.csv": PROJECTS, "data/usage.jsonl": USAGE}
    assert problems_of(pydb_database, folder, base | files) == expected


def test_duplicate_rows_of_a_csv_file_name_both_rows(pydb_database: str, folder: Path) -> None:
    files = {"seed.yaml": "users: !csv users.csv\n",
             "users.csv": "_id,email,name\na,a@example.com,A\nb,b@example.com,B\nc,a@example.com,C\n"}
    assert problems_of(pydb_database, folder, files) == [
        "users.csv:4:1: users: duplicate row: unique key (email) = (a@example.com) is already used by the row "
        "at users.csv:2:1"]
