"""relational_query: one user with their projects and usage rows.

Data: 200 users, each with 5 projects and 10 usage rows (fixed seed); each sample loads 20 users
by id. Contenders, interleaved: one hand-written SQL with json_agg via raw psycopg (main anchor),
SQLAlchemy ORM with selectinload, pydb's prepared relational query (headline ratio) and pydb
find_first building its statement per call. Statements sent per load are counted, not assumed.
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import orm

import pydb
from bench.common import bench_database, interleave, summary, table, write_result

USERS, PROJECTS, USAGE, LOADS = 200, 5, 10, 20

HAND_WRITTEN = """
SELECT u.id, u.email, u.name, u.role, u.created_at,
  (SELECT coalesce(json_agg(json_build_object('id', p.id, 'name', p.name, 'status', p.status,
                                              'created_at', p.created_at) ORDER BY p.id), '[]')
     FROM projects p WHERE p.owner_id = u.id) AS projects,
  (SELECT coalesce(json_agg(json_build_object('id', a.id, 'model', a.model, 'tokens_used', a.tokens_used,
                                              'estimated_cost', a.estimated_cost::text) ORDER BY a.id), '[]')
     FROM ai_usage_log a WHERE a.user_id = u.id) AS ai_usage_log
FROM users u WHERE u.id = %s
"""


def generate(url: str, rng: random.Random) -> list[uuid.UUID]:
    """Write USERS users, each with PROJECTS projects and USAGE usage rows (fixed seed); their ids."""
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(USERS)]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, email, name) FROM STDIN") as copy:
            for i, uid in enumerate(ids):
                copy.write_row((uid, f"user{i}@example.com", f"User {i}"))
        with cur.copy("COPY projects (owner_id, name, status) FROM STDIN") as copy:
            for uid in ids:
                for j in range(PROJECTS):
                    copy.write_row((uid, f"project {j}", rng.choice(["active", "archived"])))
        with cur.copy("COPY ai_usage_log (user_id, model, tokens_used, estimated_cost) FROM STDIN") as copy:
            for uid in ids:
                for _ in range(USAGE):
                    copy.write_row((uid, "m-small", rng.randrange(1, 5000), Decimal(rng.randrange(1, 10**6)) / 10**6))
    return ids


class _Counter:
    """Counts the statements psycopg's cursors send while it is active (pydb's own reads and SQLAlchemy's)."""

    def __init__(self) -> None:
        self.count = 0
        self._execute = psycopg.Cursor.execute

    def __enter__(self) -> _Counter:
        execute = self._execute

        def counted(cursor: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return execute(cursor, *args, **kwargs)

        psycopg.Cursor.execute = counted  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        psycopg.Cursor.execute = self._execute  # type: ignore[method-assign]


def main() -> None:
    """Run the benchmark and write bench/results/relational_query.json."""
    rng = random.Random(7)
    with bench_database() as url:
        ids = generate(url, rng)
        order = [ids[rng.randrange(USERS)] for _ in range(LOADS)]
        raw = psycopg.connect(url, autocommit=True)

        def hand_written() -> None:
            for uid in order:
                raw.execute(HAND_WRITTEN, (uid,), prepare=True).fetchone()

        db = pydb.connect(url)
        users, projects, usage = (db.tables[n] for n in ("users", "projects", "ai_usage_log"))

        class User:
            pass

        class Project:
            pass

        class Usage:
            pass

        registry = orm.registry()
        registry.map_imperatively(Project, projects)
        registry.map_imperatively(Usage, usage)
        registry.map_imperatively(User, users, properties={
            "projects": orm.relationship(Project), "ai_usage_log": orm.relationship(Usage)})
        session_factory = orm.sessionmaker(db.engine)

        def orm_selectinload() -> None:
            with session_factory() as session:
                for uid in order:
                    session.execute(
                        sa.select(User).where(users.c.id == uid)
                        .options(orm.selectinload(User.projects), orm.selectinload(User.ai_usage_log))  # type: ignore[attr-defined]
                    ).scalar_one()
                    session.expunge_all()

        # the same columns as the hand-written SQL, so both send and decode the same data
        with_ = {"projects": {"order_by": projects.c.id, "columns": ["id", "name", "status", "created_at"]},
                 "ai_usage_log": {"order_by": usage.c.id,
                                  "columns": ["id", "model", "tokens_used", "estimated_cost"]}}
        user_columns = ["id", "email", "name", "role", "created_at"]

        def pydb_find_first() -> None:
            for uid in order:
                db.query.users.find_first(where=users.c.id == uid, columns=user_columns, with_=with_)

        prepared = db.query.users.prepare(where=users.c.id == sa.bindparam("id"), limit=1, columns=user_columns,
                                          with_=with_)

        def pydb_prepared() -> None:
            for uid in order:
                prepared.first(id=uid)

        # statements per load, counted at psycopg's cursors (pydb, ORM) and by construction (raw: one execute)
        with _Counter() as counter:
            pydb_find_first()
        pydb_statements = counter.count / LOADS
        with _Counter() as counter:
            orm_selectinload()
        orm_statements = counter.count / LOADS
        sample = db.query.users.find_first(where=users.c.id == order[0], columns=user_columns, with_=with_)
        assert sample is not None and len(sample["projects"]) == PROJECTS and len(sample["ai_usage_log"]) == USAGE
        assert prepared.first(id=order[0]) == sample

        samples = interleave(
            {"hand-written json_agg (psycopg)": hand_written, "SQLAlchemy ORM selectinload": orm_selectinload,
             "pydb prepared query": pydb_prepared, "pydb find_first": pydb_find_first},
            repeat=31, warmup=3,
        )
        per_load = {k: [v / LOADS for v in vs] for k, vs in samples.items()}
        stats = summary(per_load, "hand-written json_agg (psycopg)")
        print(f"relational_query: {USERS} users x ({PROJECTS} projects + {USAGE} usage rows), "
              f"{LOADS} loads per sample, per load")
        print(table(stats, "us"))
        print(f"statements per load: pydb {pydb_statements:g}, ORM selectinload {orm_statements:g}, hand-written 1")
        path = write_result(
            "relational_query", ratio=stats["pydb prepared query"]["ratio"], goal=1.2,
            ratio_find_first=stats["pydb find_first"]["ratio"],
            statements={"pydb": pydb_statements, "orm_selectinload": orm_statements, "hand_written": 1},
            rows={"users": USERS, "projects": USERS * PROJECTS, "ai_usage_log": USERS * USAGE},
            stats=stats, samples=per_load,
        )
        print(f"wrote {path}")
        raw.close()
        registry.dispose()
        db.dispose()


if __name__ == "__main__":
    main()
