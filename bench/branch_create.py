"""branch_create: copy a ~34 MB database with pydb, side by side with its anchors.

Contenders, interleaved in one run against the same server and the same source database:
  template copy   a new psycopg session running `CREATE DATABASE … TEMPLATE src` (the main anchor)
  pydb            `pydb.branches.create_branch` on the local backend (the library call)
  pg_dump | psql  `CREATE DATABASE` from template0, then the wheel's pg_dump piped into its psql
  fixture         the pytest plugin's per-test database: `scratch_database` create + drop
The source is the migrated schema filled with users, projects and ai_usage_log rows drawn from a
fixed random seed. Run: python -m bench.branch_create
"""

from __future__ import annotations

import random
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.common import bench_database, summary, table, write_result
from pydb.branches import create_branch
from pydb.branches.local import LocalBranches
from pydb.config import project_root
from pydb.local import LocalServer, _bin
from pydb.testing import scratch_database
from pydb.urls import database_name, with_database

SEED = 42
USERS, PROJECTS, USAGE_ROWS = 12_000, 24_000, 92_000
REPEAT, WARMUP = 7, 1
GOAL = 1.3
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b", "mistral-large")
ENDPOINTS = ("/v1/chat", "/v1/embeddings", "/v1/complete", "/v1/summarise")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _fill(url: str) -> dict[str, int]:
    """Load the deterministic rows with COPY; return the row counts."""
    rng = random.Random(SEED)
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    users = [_uuid(rng) for _ in range(USERS)]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id, email, name, password_hash, role, email_verified, created_at, updated_at) "
                      "FROM STDIN") as copy:
            for i, user_id in enumerate(users):
                at = epoch + timedelta(seconds=rng.randrange(30_000_000))
                copy.write_row((user_id, f"user{i}@example.com", f"User {i} {rng.randrange(10**6)}",
                                f"{rng.getrandbits(256):064x}", "admin" if i % 50 == 0 else "user",
                                rng.random() < 0.7, at, at))
        with cur.copy("COPY projects (id, owner_id, name, description, status, created_at, updated_at) "
                      "FROM STDIN") as copy:
            for i in range(PROJECTS):
                at = epoch + timedelta(seconds=rng.randrange(30_000_000))
                words = " ".join(rng.choice(("fast", "blue", "data", "model", "graph", "api")) for _ in range(12))
                copy.write_row((_uuid(rng), rng.choice(users), f"Project {i}", words,
                                rng.choice(("active", "paused", "archived")), at, at))
        with cur.copy("COPY ai_usage_log (id, user_id, model, tokens_used, estimated_cost, endpoint, created_at) "
                      "FROM STDIN") as copy:
            for _ in range(USAGE_ROWS):
                tokens = rng.randrange(10, 20_000)
                copy.write_row((_uuid(rng), rng.choice(users), rng.choice(MODELS), tokens,
                                f"{tokens * 0.000002:.6f}", rng.choice(ENDPOINTS),
                                epoch + timedelta(seconds=rng.randrange(30_000_000))))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return {"users": USERS, "projects": PROJECTS, "ai_usage_log": USAGE_ROWS}


def _size(admin: str, name: str) -> int:
    with psycopg.connect(admin) as conn:
        row = conn.execute("SELECT pg_database_size(%s::name)", (name,)).fetchone()
        return int(row[0]) if row else 0


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _count_statements(run: Callable[[], Any]) -> int:
    """Number of statements psycopg sent while run() ran."""
    original = psycopg.Connection.execute
    count = 0

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return original(self, *args, **kwargs)

    psycopg.Connection.execute = counting  # type: ignore[method-assign]
    try:
        run()
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]
    return count


def main() -> None:
    """Build the source database, time the contenders interleaved, print and save the figures."""
    server = LocalServer(project_root() / ".pydb" / "bench")
    pg_dump, psql = str(_bin("pg_dump")), str(_bin("psql"))
    with bench_database() as source_url:
        source = database_name(source_url)
        admin = with_database(source_url, "postgres")
        started = time.perf_counter()
        rows = _fill(source_url)
        size = _size(admin, source)
        print(f"source: {size / 1024**2:.1f} MB, rows {rows} (seed {SEED}), "
              f"built in {time.perf_counter() - started:.1f} s")
        branches = LocalBranches(server, default_parent=source)
        made: list[str] = []
        counter = iter(range(10**6))

        def template_copy() -> None:
            name = f"bench_tpl_{next(counter)}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(source)))
            made.append(name)

        def pydb_branch() -> None:
            branch = create_branch(f"bench-{next(counter)}", where=branches)
            made.append(str(branch.id))

        def dump_restore() -> None:
            name = f"bench_dump_{next(counter)}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            made.append(name)
            target = with_database(source_url, name)
            dump = subprocess.Popen([pg_dump, "--no-password", "-d", source_url], stdout=subprocess.PIPE)
            restore = subprocess.run(
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target], stdin=dump.stdout,
                stdout=subprocess.DEVNULL, check=False,
            )
            assert dump.stdout is not None
            dump.stdout.close()
            if dump.wait() != 0 or restore.returncode != 0:
                raise SystemExit("pg_dump | psql failed")

        def fixture() -> None:
            with scratch_database(source_url, source, prefix="bench_fixture_"):
                pass

        contenders: dict[str, Callable[[], None]] = {
            "template copy": template_copy, "pydb create_branch": pydb_branch,
            "pg_dump | psql": dump_restore, "fixture create+drop": fixture,
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        order = list(contenders)
        for round_ in range(WARMUP + REPEAT):
            # A, B, C, D then B, C, D, A …: each contender takes each position in turn.
            shift = round_ % len(order)
            for name in order[shift:] + order[:shift]:
                began = time.perf_counter()
                contenders[name]()
                elapsed = time.perf_counter() - began
                if round_ >= WARMUP:
                    samples[name].append(elapsed)
                while made:
                    _drop(admin, made.pop())
        statements = _count_statements(pydb_branch)
        while made:
            _drop(admin, made.pop())

    stats = summary(samples, "template copy")
    print(table(stats))
    ratio = stats["pydb create_branch"]["ratio"]
    fixture_ms = statistics.median(samples["fixture create+drop"]) * 1000
    print(f"pydb create_branch / template copy: {ratio:.2f}x (goal <= {GOAL}x: "
          f"{'met' if ratio <= GOAL else 'NOT met'}); statements sent by create_branch: {statements}")
    print(f"per-test fixture overhead (create + drop): {fixture_ms:.0f} ms, "
          f"{stats['fixture create+drop']['ratio']:.2f}x the template copy")
    path = write_result(
        "branch_create", ratio=ratio, goal=GOAL,
        anchor="template copy",
        data={"size_bytes": size, "rows": rows, "seed": SEED},
        repeat=REPEAT, warmup=WARMUP,
        samples_ms={name: [round(s * 1000, 3) for s in values] for name, values in samples.items()},
        summary_ms={name: {k: round(v * 1000, 3) if k != "ratio" else round(v, 3) for k, v in row.items()}
                    for name, row in stats.items()},
        ratios={name: round(row["ratio"], 3) for name, row in stats.items()},
        fixture_overhead_ms=round(fixture_ms, 1),
        fixture_ratio=round(stats["fixture create+drop"]["ratio"], 3),
        pydb_statements=statements,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
