"""cold_start: a new process imports, connects and runs its first query on `users`.

Contenders, interleaved, each a fresh `python -c` process: psycopg alone (main anchor), pydb with a
warm reflection cache (the steady state of an app or a serverless function), pydb with no cache
(reflection on every start), and SQLAlchemy with MetaData.reflect of the three tables.
Round trips are counted for pydb by the number of statements sent on its engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bench.common import bench_database, interleave, summary, table, write_result

PSYCOPG = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("SELECT id, email FROM users LIMIT 1").fetchall()
"""

PYDB = """
import sqlalchemy as sa
from pydb import db, users
with db.connect() as conn:
    conn.execute(sa.select(users.c.id, users.c.email).limit(1)).all()
"""

SQLALCHEMY = """
import os, sqlalchemy as sa
engine = sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
meta = sa.MetaData()
with engine.connect() as conn:
    meta.reflect(conn, only=["users", "projects", "ai_usage_log"])
    users = meta.tables["users"]
    conn.execute(sa.select(users.c.id, users.c.email).limit(1)).all()
"""

SQLALCHEMY_DECLARED = """
import os, sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
engine = sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
users = sa.Table("users", sa.MetaData(), sa.Column("id", UUID, primary_key=True), sa.Column("email", sa.String(255)))
with engine.connect() as conn:
    conn.execute(sa.select(users.c.id, users.c.email).limit(1)).all()
"""

IMPORT_SQLALCHEMY = """
import psycopg, sqlalchemy
"""

COUNT = """
import json, sqlalchemy as sa
from pydb import db
sent = []
sa.event.listen(db.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
from pydb import users
with db.connect() as conn:
    conn.execute(sa.select(users.c.id).limit(1)).all()
print(json.dumps(len(sent)))
"""


def _run(script: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                          text=True).stdout


def main() -> None:
    """Run the benchmark and write bench/results/cold_start.json."""
    with bench_database() as url, tempfile.TemporaryDirectory() as cache:
        base = dict(os.environ, DATABASE_URL=url)
        warm = dict(base, PYDB_REFLECT_CACHE=cache)
        cold = dict(base, PYDB_REFLECT_CACHE="0")
        _run(PYDB, warm)  # fill the cache once
        statements_warm = json.loads(_run(COUNT, warm))
        statements_cold = json.loads(_run(COUNT, cold))
        samples = interleave(
            {"psycopg alone": lambda: _run(PSYCOPG, base),
             "pydb (warm reflection cache)": lambda: _run(PYDB, warm),
             "pydb (no cache)": lambda: _run(PYDB, cold),
             "SQLAlchemy + MetaData.reflect": lambda: _run(SQLALCHEMY, base),
             "SQLAlchemy, table declared in code": lambda: _run(SQLALCHEMY_DECLARED, base),
             "import psycopg and sqlalchemy only": lambda: _run(IMPORT_SQLALCHEMY, base)},
            repeat=9, warmup=1,
        )
        stats = summary(samples, "psycopg alone")
        print("cold_start: new process, import, connect, first query on users")
        print(table(stats, "ms"))
        print(f"pydb statements on its engine: warm cache {statements_warm} (fingerprint + query), "
              f"no cache {statements_cold}")
        floor = stats["SQLAlchemy, table declared in code"]["ratio"]
        print(f"floor for any SQLAlchemy Core script (no reflection at all): {floor:.2f}x; "
              f"importing psycopg and sqlalchemy alone: {stats['import psycopg and sqlalchemy only']['ratio']:.2f}x")
        path = write_result(
            "cold_start", ratio=stats["pydb (warm reflection cache)"]["ratio"], goal=1.5,
            ratio_no_cache=stats["pydb (no cache)"]["ratio"], ratio_sqlalchemy_floor=floor,
            ratio_import_only=stats["import psycopg and sqlalchemy only"]["ratio"],
            statements={"warm_cache": statements_warm, "no_cache": statements_cold},
            stats=stats, samples=samples,
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
