"""Reflection: lazy module attributes, enums and vectors, and a cache that is never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import pydb
from pydb.vector import Vector
from tests.helpers import AtlasRunner

COLD_START = """
import json, sys
import sqlalchemy as sa
import pydb
from pydb import db
statements = []
sa.event.listen(db.engine, "before_cursor_execute", lambda c, cur, s, *a: statements.append(s))
users = pydb.users
with db.connect() as conn:
    conn.execute(sa.select(users.c.id).limit(1)).all()
print(json.dumps({"statements": statements, "columns": list(users.c.keys())}))
"""


def _cold(url: str, cache: Path) -> dict[str, list[str]]:
    env = dict(os.environ, DATABASE_URL=url, PYDB_REFLECT_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", COLD_START], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_a_warm_cache_sends_only_the_fingerprint(pydb_database: str, tmp_path: Path) -> None:
    first = _cold(pydb_database, tmp_path)
    assert len(first["statements"]) > 3  # fingerprint + bulk reflection queries + the select
    second = _cold(pydb_database, tmp_path)
    assert len(second["statements"]) == 2
    assert "md5(coalesce(string_agg" in second["statements"][0]
    assert second["statements"][1].startswith("SELECT users.id")
    assert second["columns"] == first["columns"]


def test_a_schema_change_applied_with_atlas_is_seen(
    pydb_database: str, atlas: AtlasRunner, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYDB_REFLECT_CACHE", str(tmp_path / "cache"))
    assert "nickname" not in pydb.connect(pydb_database).tables["users"].c
    schema = project / "schema.hcl"
    schema.write_text(schema.read_text().replace(
        '  column "password_hash" {',
        '  column "nickname" {\n    type = varchar(50)\n    null = true\n  }\n  column "password_hash" {', 1))
    atlas("schema", "apply", "--env", "local", "--auto-approve", cwd=project)
    assert "nickname" in pydb.connect(pydb_database).tables["users"].c


def test_module_attributes_resolve_lazily(pydb_database: str) -> None:
    script = (
        "import sys, pydb\n"
        "assert 'sqlalchemy' not in sys.modules\n"  # nothing heavy, nothing connects at import
        "from pydb import users, projects, ai_usage_log\n"
        "print(users.name, projects.name, ai_usage_log.name)\n"
        "try:\n    pydb.userz\nexcept AttributeError as e:\n    print(e)\n"
    )
    env = dict(os.environ, DATABASE_URL=pydb_database, PYDB_REFLECT_CACHE="0")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "users projects ai_usage_log"
    assert lines[1].startswith("no table 'userz' in Database('postgresql://postgres@127.0.0.1:")
    assert lines[1].endswith("tables: ai_usage_log, projects, users")


def test_enums_and_vectors_reflect(pydb_database: str) -> None:
    with psycopg.connect(pydb_database) as conn:
        conn.execute("CREATE TABLE embeddings (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("INSERT INTO embeddings VALUES (1, '[1,2.5,3]')")
    db = pydb.connect(pydb_database)
    role = db.tables["users"].c.role.type
    assert isinstance(role, sa.Enum) and list(role.enums) == ["user", "admin"]
    embeddings = db.tables["embeddings"]
    assert isinstance(embeddings.c.embedding.type, Vector)
    with db.begin() as conn:
        conn.execute(sa.insert(embeddings).values(id=2, embedding=[0.5, 0.25, 1.0]))
        rows = conn.execute(sa.select(embeddings.c.embedding).order_by(embeddings.c.id)).scalars().all()
    assert rows == [[1.0, 2.5, 3.0], [0.5, 0.25, 1.0]]
    found = db.query.embeddings.find_first(where=embeddings.c.id == 1)
    assert found == {"id": 1, "embedding": [1.0, 2.5, 3.0]}
    db.dispose()
