"""point_query: select one user by primary key — pydb find_first vs raw psycopg with a prepared statement.

Data: 1,000 users generated with a fixed seed; each sample looks up 50 ids in a fixed order (41 samples, interleaved).
Contenders, interleaved: raw psycopg prepared (main anchor), SQLAlchemy Core with a prebuilt statement,
SQLAlchemy Core building the statement per call, pydb's prepared query (`prepare(...).first(id=...)`,
the headline ratio) and pydb `find_first(where=...)` building its statement on every call.
"""

from __future__ import annotations

import random
import uuid

import psycopg
import sqlalchemy as sa

import pydb
from bench.common import bench_database, interleave, summary, table, write_result

USERS = 1000
LOOKUPS = 50


def main() -> None:
    """Run the benchmark and write bench/results/point_query.json."""
    rng = random.Random(42)
    with bench_database() as url:
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(USERS)]
        with psycopg.connect(url) as conn, conn.cursor().copy("COPY users (id, email, name) FROM STDIN") as copy:
            for i, uid in enumerate(ids):
                copy.write_row((uid, f"user{i}@example.com", f"User {i}"))
        order = [ids[rng.randrange(USERS)] for _ in range(LOOKUPS)]

        raw = psycopg.connect(url, autocommit=True)
        columns = "id, email, name, password_hash, role, email_verified, created_at, updated_at"
        raw_sql = f"SELECT {columns} FROM users WHERE id = %s LIMIT 1"

        def raw_prepared() -> None:
            for uid in order:
                raw.execute(raw_sql, (uid,), prepare=True).fetchone()

        db = pydb.connect(url)
        users = db.tables["users"]
        prebuilt = sa.select(users).where(users.c.id == sa.bindparam("uid")).limit(1)
        sa_conn = db.engine.connect()

        def sqlalchemy_prebuilt() -> None:
            for uid in order:
                sa_conn.execute(prebuilt, {"uid": uid}).mappings().first()

        def sqlalchemy_per_call() -> None:
            for uid in order:
                sa_conn.execute(sa.select(users).where(users.c.id == uid).limit(1)).mappings().first()

        def pydb_find_first() -> None:
            for uid in order:
                db.query.users.find_first(where=users.c.id == uid)

        by_id = db.query.users.prepare(where=users.c.id == sa.bindparam("id"), limit=1)

        def pydb_prepared() -> None:
            for uid in order:
                by_id.first(id=uid)

        found = db.query.users.find_first(where=users.c.id == order[0])
        assert found is not None and found["id"] == order[0] and by_id.first(id=order[0]) == found
        samples = interleave(
            {"raw psycopg (prepared)": raw_prepared, "SQLAlchemy Core prebuilt": sqlalchemy_prebuilt,
             "SQLAlchemy Core per call": sqlalchemy_per_call, "pydb prepared query": pydb_prepared,
             "pydb find_first": pydb_find_first},
            repeat=41, warmup=3,
        )
        per_query = {k: [v / LOOKUPS for v in vs] for k, vs in samples.items()}
        stats = summary(per_query, "raw psycopg (prepared)")
        print(f"point_query: {USERS} users, {LOOKUPS} lookups per sample, per query")
        print(table(stats, "us"))
        path = write_result(
            "point_query", ratio=stats["pydb prepared query"]["ratio"], goal=1.3,
            ratio_find_first=stats["pydb find_first"]["ratio"],
            note="ratio: db.query.users.prepare(where=users.c.id == bindparam('id')).first(id=...); "
                 "ratio_find_first: find_first(where=...) building its statement on every call",
            rows=USERS, lookups_per_sample=LOOKUPS, stats=stats, samples=per_query,
        )
        print(f"wrote {path}")
        sa_conn.close()
        raw.close()
        db.dispose()


if __name__ == "__main__":
    main()
