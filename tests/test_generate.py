"""`pydb generate`: the typed module from schema.hcl, its --check, every column type, and the check at first use."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

import pydb
from pydb.local import LocalServer
from pydb.types.render import column_types
from tests.helpers import REPO, AtlasRunner, run_pydb

NICKNAME = '  column "nickname" {\n    type = varchar(50)\n    null = true\n  }\n  column "password_hash" {'

ALL_TYPES = """\
schema "public" {
}

enum "mood" {
  schema = schema.public
  values = ["happy", "sad"]
}

table "people" {
  schema = schema.public
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "handle" {
    type = varchar(40)
  }
  column "shout" {
    type = text
    as {
      expr = "upper((handle)::text)"
      type = STORED
    }
  }
  column "bio" {
    type = text
    null = true
  }
  column "mood" {
    type    = enum.mood
    default = "happy"
  }
  column "tags" {
    type    = sql("text[]")
    default = sql("'{}'::text[]")
  }
  column "scores" {
    type = sql("integer[]")
    null = true
  }
  column "friends" {
    type = sql("uuid[]")
    null = true
  }
  column "balance" {
    type    = numeric(12, 2)
    default = 0
  }
  column "ratio" {
    type = double_precision
    null = true
  }
  column "level" {
    type = smallint
    null = true
  }
  column "visits" {
    type    = integer
    default = 0
  }
  column "active" {
    type    = boolean
    default = true
  }
  column "profile" {
    type = jsonb
    null = true
  }
  column "settings" {
    type    = json
    default = sql("'{}'::json")
  }
  column "born" {
    type = date
    null = true
  }
  column "wakes_at" {
    type = time
    null = true
  }
  column "joined_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "seen_at" {
    type = timestamp
    null = true
  }
  column "pause" {
    type = interval
    null = true
  }
  column "avatar" {
    type = bytea
    null = true
  }
  column "token" {
    type    = uuid
    default = sql("gen_random_uuid()")
  }
  column "embedding" {
    type = sql("vector(3)")
    null = true
  }
  column "mentor_id" {
    type = bigint
    null = true
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "people_mentor_id_fkey" {
    columns     = [column.mentor_id]
    ref_columns = [column.id]
  }
}

table "reviews" {
  schema = schema.public
  column "id" {
    type = serial
  }
  column "author_id" {
    type = bigint
  }
  column "reviewer_id" {
    type = bigint
    null = true
  }
  column "body" {
    type = text
  }
  primary_key {
    columns = [column.id]
  }
  foreign_key "reviews_author_id_fkey" {
    columns     = [column.author_id]
    ref_columns = [table.people.column.id]
  }
  foreign_key "reviews_reviewer_id_fkey" {
    columns     = [column.reviewer_id]
    ref_columns = [table.people.column.id]
  }
}
"""

PEOPLE_ROW = '''\
class PeopleRow(TypedDict):
    """A row of people; its relations are there when loaded with `with_`."""

    id: int
    handle: str
    shout: str
    bio: str | None
    mood: Mood
    tags: list[str]
    scores: list[int] | None
    friends: list[uuid.UUID] | None
    balance: decimal.Decimal
    ratio: float | None
    level: int | None
    visits: int
    active: bool
    profile: Json | None
    settings: Json
    born: datetime.date | None
    wakes_at: datetime.time | None
    joined_at: datetime.datetime
    seen_at: datetime.datetime | None
    pause: datetime.timedelta | None
    avatar: bytes | None
    token: uuid.UUID
    embedding: list[float] | None
    mentor_id: int | None
    mentor: NotRequired["PeopleRow | None"]
    people: NotRequired["list[PeopleRow]"]
    reviews_by_author: NotRequired["list[ReviewsRow]"]
    reviews_by_reviewer: NotRequired["list[ReviewsRow]"]
'''

REVIEWS_TYPES = '''\
class ReviewsRow(TypedDict):
    """A row of reviews; its relations are there when loaded with `with_`."""

    id: int
    author_id: int
    reviewer_id: int | None
    body: str
    author: NotRequired["PeopleRow"]
    reviewer: NotRequired["PeopleRow | None"]


class ReviewsInsert(TypedDict):
    """A new row of reviews: the NOT NULL columns without a default are required."""

    author_id: int
    body: str
    id: NotRequired[int]
    reviewer_id: NotRequired[int | None]
'''


def _in_project(project: Path, server: LocalServer) -> dict[str, str | None]:
    """The environment of `pydb` commands run in a project: the test server as the local server."""
    return {"PYDB_STATE_DIR": str(server.state)}


@pytest.fixture
def all_types(tmp_path: Path) -> Path:
    """A project whose schema.hcl has every column type pydb types, a self-reference and two keys to one table."""
    folder = tmp_path / "all_types"
    folder.mkdir()
    (folder / "atlas.hcl").write_text((REPO / "atlas.hcl").read_text())
    (folder / "schema.hcl").write_text(ALL_TYPES)
    return folder


def test_the_repository_schema_generates_the_committed_module(project: Path, pydb_server: LocalServer) -> None:
    env = _in_project(project, pydb_server)
    result = run_pydb("generate", cwd=project, env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "wrote pydb/schema.py: 3 tables (new)\n", "")
    assert (project / "pydb" / "schema.py").read_text() == (REPO / "pydb" / "schema.py").read_text()
    again = run_pydb("generate", "--check", cwd=project, env=env)
    assert (again.returncode, again.stdout) == (0, "pydb/schema.py is up to date with schema.hcl (3 tables)\n")


def test_check_names_a_column_added_without_generating(project: Path, pydb_server: LocalServer) -> None:
    env = _in_project(project, pydb_server)
    assert run_pydb("generate", cwd=project, env=env).returncode == 0
    module = project / "pydb" / "schema.py"
    before = module.read_text()
    schema = project / "schema.hcl"
    schema.write_text(schema.read_text().replace('  column "password_hash" {', NICKNAME, 1))

    stale = run_pydb("generate", "--check", cwd=project, env=env)
    assert stale.returncode == 1
    lines = stale.stderr.splitlines()
    assert lines[0] == ("Error: pydb/schema.py is out of date with schema.hcl (users.nickname added (str | None)); "
                        "run `pydb generate`")
    assert lines[1:3] == ["--- pydb/schema.py (as it is)", "+++ pydb/schema.py (from schema.hcl)"]
    assert "+    nickname: str | None" in lines
    assert '+        "nickname": "str | None",' in lines
    assert module.read_text() == before  # --check writes nothing

    written = run_pydb("generate", cwd=project, env=env)
    assert written.stdout == "wrote pydb/schema.py: 3 tables (users.nickname added (str | None))\n"
    assert run_pydb("generate", "--check", cwd=project, env=env).returncode == 0


def test_a_broken_schema_is_one_error_line(project: Path, pydb_server: LocalServer) -> None:
    (project / "schema.hcl").write_text('table "t" {\n  schema = schema.public\n  column "a" {\n    type = nope\n')
    result = run_pydb("generate", cwd=project, env=_in_project(project, pydb_server))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: atlas schema apply failed: ")
    assert "schema.hcl:" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (project / "pydb" / "schema.py").exists()


def test_every_column_type(all_types: Path, pydb_server: LocalServer, tmp_path: Path) -> None:
    output = tmp_path / "all_types_schema.py"
    result = run_pydb("generate", "--output", str(output), cwd=all_types, env=_in_project(all_types, pydb_server))
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert PEOPLE_ROW in text
    assert REVIEWS_TYPES in text
    assert 'Mood = Literal["happy", "sad"]' in text
    # GENERATED ALWAYS identity and generated columns cannot be written: not in inserts or updates
    insert = text.split("class PeopleInsert(TypedDict):")[1].split("\n\n\n")[0]
    assert "    handle: str\n" in insert and "    id:" not in insert and "    shout:" not in insert
    assert '        "pause": "datetime.timedelta | None",' in text
    assert '        "mood": \'Literal["happy", "sad"]\',' in text

    bin_dir = Path(sys.executable).parent
    checks = {
        "mypy": [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir",
                 str(tmp_path / "mypy-cache"), str(output)],
        "ruff check": [str(bin_dir / "ruff"), "check", "--no-cache", str(output)],
        "ruff format": [str(bin_dir / "ruff"), "format", "--check", "--no-cache", str(output)],
    }
    for name, command in checks.items():
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


def _conforms(value: Any, spelled: str) -> bool:
    """Whether a value has the Python type a generated module spells (the few forms render.type_text makes)."""
    if spelled.endswith(" | None"):
        return value is None or _conforms(value, spelled.removesuffix(" | None"))
    if spelled.startswith("list["):
        return isinstance(value, list) and all(_conforms(item, spelled[5:-1]) for item in value)
    if spelled.startswith("Literal["):
        return value in json.loads("[" + spelled[8:-1] + "]")
    if spelled == "Json":
        return isinstance(value, dict | list | str | int | float | bool)
    kinds: dict[str, type] = {"int": int, "str": str, "bool": bool, "float": float, "bytes": bytes,
                              "uuid.UUID": uuid.UUID, "decimal.Decimal": Decimal, "datetime.datetime": dt.datetime,
                              "datetime.date": dt.date, "datetime.time": dt.time, "datetime.timedelta": dt.timedelta}
    kind = kinds[spelled]
    exact = type(value) is kind or (kind is dt.date and type(value) is dt.date)
    return exact and not (kind is int and isinstance(value, bool))


def test_rows_have_the_promised_types_at_every_level(all_types: Path, atlas: AtlasRunner,
                                                      empty_database: str) -> None:
    atlas("schema", "apply", "--env", "local", "--auto-approve", cwd=all_types, target=empty_database)
    with psycopg.connect(empty_database) as conn:
        conn.execute(
            "INSERT INTO people (handle, bio, mood, tags, scores, friends, balance, ratio, level, profile, born, "
            " wakes_at, seen_at, pause, avatar, embedding) VALUES ('ada', 'first', 'sad', '{a,b}', '{1,2}', "
            " ARRAY[gen_random_uuid()], 12.5, 0.25, 3, '{\"k\": [1, true]}', '1815-12-10', '06:30', "
            " '2025-01-06 09:30', '1 year 2 mons 3 days 04:05:06.5', '\\x00ff', '[1,2,3]')")
        conn.execute("INSERT INTO people (handle, mentor_id) VALUES ('bob', 1)")
        conn.execute("INSERT INTO reviews (author_id, reviewer_id, body) VALUES (2, 1, 'good'), (1, NULL, 'fine')")
    db = pydb.connect(empty_database)
    try:
        people = db.tables["people"]
        promised = column_types(db.tables)
        tree = db.query.people.find_first(where=people.c.handle == "bob", with_={
            "mentor": {"with_": {"people": True, "reviews_by_author": {"with_": {"reviewer": True}}}},
            "reviews_by_author": {"with_": {"reviewer": True, "author": True}},
        })
        assert tree is not None
        mentor = tree["mentor"]
        for row, table in [(tree, "people"), (mentor, "people"), (mentor["people"][0], "people"),
                           (mentor["reviews_by_author"][0], "reviews"), (tree["reviews_by_author"][0], "reviews"),
                           (tree["reviews_by_author"][0]["reviewer"], "people")]:
            for column, spelled in promised[table].items():
                assert _conforms(row[column], spelled), (table, column, spelled, row[column])
        top = db.query.people.find_first(where=people.c.handle == "ada")
        assert top is not None
        assert {k: v for k, v in mentor.items() if k in promised["people"]} == top  # nested equals top level
        assert top["pause"] == dt.timedelta(days=365 + 60 + 3, seconds=4 * 3600 + 5 * 60 + 6.5)
        assert top["avatar"] == b"\x00\xff" and top["embedding"] == [1.0, 2.0, 3.0]
    finally:
        db.dispose()


def test_the_default_database_checks_the_typed_module_on_first_use(pydb_database: str) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN extra text")  # more than promised: fine
    script = "from pydb import users\nprint(sorted(users.c.keys())[0])"
    env = dict(os.environ, DATABASE_URL=pydb_database, PYDB_REFLECT_CACHE="0")
    fine = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    assert (fine.returncode, fine.stdout) == (0, "created_at\n"), fine.stderr
    with psycopg.connect(pydb_database) as conn:
        conn.execute("ALTER TABLE users DROP COLUMN password_hash")
        conn.execute("ALTER TABLE users ALTER COLUMN name DROP NOT NULL")
    broken = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            check=False)
    assert broken.returncode == 1
    last = broken.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"pydb\.errors\.TypesError: the typed module pydb/schema\.py does not match Database\('postgresql://.*'\): "
        r"users\.name is str \| None, typed as str; users\.password_hash is missing\. Bring the database up to "
        r"schema\.hcl \(`atlas schema apply --env local`, or `atlas migrate apply`\), or the module up to the "
        r"schema \(`pydb generate`\)", last), last


def test_a_local_push_generates_the_module_again(project: Path, atlas: AtlasRunner, pydb_server: LocalServer) -> None:
    assert run_pydb("generate", cwd=project, env=_in_project(project, pydb_server)).returncode == 0
    schema = project / "schema.hcl"
    schema.write_text(schema.read_text().replace('  column "password_hash" {', NICKNAME, 1))
    launcher = Path(sys.executable).parent / "atlas"
    result = subprocess.run([str(launcher), "schema", "apply", "--env", "local", "--auto-approve"], cwd=project,
                            env={**os.environ, **atlas.environ}, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert 'ADD COLUMN "nickname" character varying(50) NULL' in result.stdout
    assert result.stdout.endswith(
        "pydb generate: wrote pydb/schema.py: 3 tables (users.nickname added (str | None))\n")
    assert "    nickname: str | None\n" in (project / "pydb" / "schema.py").read_text()
    again = subprocess.run([str(launcher), "schema", "apply", "--env", "local", "--auto-approve"], cwd=project,
                           env={**os.environ, **atlas.environ}, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=300, check=False)
    assert again.returncode == 0 and "pydb generate" not in again.stdout  # nothing changed: nothing said


def test_a_table_typed_by_sa_type(pydb_database: str) -> None:
    users = pydb.connect(pydb_database).tables["users"]
    assert column_types({"users": users})["users"]["role"] == 'Literal["user", "admin"] | None'
    assert isinstance(users.c.role.type, sa.Enum)
