"""seed_load: `pydb seed` of a 130k-row file vs hand-written loaders of the same rows.

Data (fixed random seed 42): 10,000 users, 20,000 projects, 100,000 ai_usage_log rows = 130,000 rows,
written once as a seed file (users named with `_id`, projects and usage rows pointing at them with `!ref`),
and once as three CSV files named by a seed file (`users: !csv users.csv`, same `_id` and `!ref NAME` cells).
Each sample loads into a fresh copy of the migrated schema (creating it is not timed).
Contenders, interleaved round by round:
  - psycopg COPY (text) of rows already in memory: the main anchor;
  - psycopg executemany and SQLAlchemy Core `insert()` with a list, rows already in memory;
  - row-by-row INSERTs (what a hand-written seed script does), on the rows of every 10th user
    (about 13,000 rows), scaled to 130,000 rows, in fewer rounds because it is slow;
  - pydb: `load_seed(file, url)`, which also reads, parses and validates the YAML file;
  - pydb from CSV: the same rows from the CSV files;
  - pydb re-run: the same YAML file again on the seeded database (nothing changes); the first load
    starts with empty caches each round, so the re-run finds what the first load cached.
Also measured: peak RSS (VmHWM) of a new process running one first load; CPU seconds of this
process during the anchor's and pydb's loads (the rest of the time is the server's).
Run: python -m bench.seed_load   (--profile: the top entries of a profile of one first load, then stop)
"""

from __future__ import annotations

import cProfile
import csv
import io
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.common import summary, table, write_result

USERS, PROJECTS, USAGE = 10_000, 20_000, 100_000
ROWS = USERS + PROJECTS + USAGE
SUBSET = 10  # row-by-row loads 1/SUBSET of the rows; its times are multiplied by SUBSET
REPEAT, WARMUP, ROW_BY_ROW_REPEAT = 5, 1, 3
GOAL, GOAL_CSV, GOAL_RERUN, GOAL_RSS_MIB = 2.0, 1.3, 0.5, 250
MODELS = ["gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small"]
ENDPOINTS = ["/api/chat", "/api/summarize", "/api/embed"]


def generate() -> dict[str, list[dict[str, Any]]]:
    """The rows, deterministically: users with fixed ids, projects and usage rows pointing at them."""
    rng = random.Random(42)
    users = [{"id": uuid.UUID(int=rng.getrandbits(128), version=4), "email": f"user{i}@example.com",
              "name": f"User {i}", "role": "admin" if i % 100 == 0 else "user"} for i in range(USERS)]
    projects = [{"owner": rng.randrange(USERS), "name": f"Project {i}", "status": rng.choice(["active", "draft"]),
                 "description": f"Sample project number {i}"} for i in range(PROJECTS)]
    usage = [{"user": rng.randrange(USERS), "model": rng.choice(MODELS), "tokens_used": rng.randrange(1, 20_000),
              "estimated_cost": Decimal(rng.randrange(1, 10**7)) / 10**6, "endpoint": rng.choice(ENDPOINTS),
              "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"}
             for i in range(USAGE)]
    return {"users": users, "projects": projects, "usage": usage}


def write_seed_file(data: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """The same rows as a seed file."""
    out = ["users:"]
    for i, u in enumerate(data["users"]):
        out += [f"  - _id: u{i}", f"    email: {u['email']}", f"    name: {u['name']}", f"    role: {u['role']}"]
    out.append("projects:")
    for p in data["projects"]:
        out += [f"  - owner_id: !ref u{p['owner']}", f"    name: {p['name']}", f"    status: {p['status']}",
                f"    description: {p['description']}"]
    out.append("ai_usage_log:")
    for r in data["usage"]:
        out += [f"  - user_id: !ref u{r['user']}", f"    model: {r['model']}", f"    tokens_used: {r['tokens_used']}",
                f"    estimated_cost: {r['estimated_cost']}", f"    endpoint: {r['endpoint']}",
                f"    created_at: {r['created_at']}"]
    path.write_text("\n".join(out) + "\n")


def write_csv_files(data: dict[str, list[dict[str, Any]]], folder: Path) -> Path:
    """The same rows as three CSV files, and the seed file that names them."""
    files = {
        "users.csv": (["_id", "email", "name", "role"],
                      [[f"u{i}", u["email"], u["name"], u["role"]] for i, u in enumerate(data["users"])]),
        "projects.csv": (["owner_id", "name", "status", "description"],
                         [[f"!ref u{p['owner']}", p["name"], p["status"], p["description"]] for p in data["projects"]]),
        "usage.csv": (["user_id", "model", "tokens_used", "estimated_cost", "endpoint", "created_at"],
                      [[f"!ref u{r['user']}", r["model"], r["tokens_used"], r["estimated_cost"], r["endpoint"],
                        r["created_at"]] for r in data["usage"]]),
    }
    for name, (header, rows) in files.items():
        with open(folder / name, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(header)
            out.writerows(rows)
    seed = folder / "seed_csv.yaml"
    seed.write_text("users: !csv users.csv\nprojects: !csv projects.csv\nai_usage_log: !csv usage.csv\n")
    return seed


def tuples(data: dict[str, list[dict[str, Any]]], every: int = 1) -> dict[str, list[tuple[Any, ...]]]:
    """Rows as tuples in column order, for the hand-written loaders; with every=n, the rows of every
    n-th user (the user, its projects and its usage rows): about 1/n of the rows."""
    ids = [u["id"] for u in data["users"]]
    kept = set(range(0, USERS, every))
    users = [(u["id"], u["email"], u["name"], u["role"]) for i, u in enumerate(data["users"]) if i in kept]
    projects = [(ids[p["owner"]], p["name"], p["status"], p["description"]) for p in data["projects"]
                if p["owner"] in kept]
    usage = [(ids[r["user"]], r["model"], r["tokens_used"], r["estimated_cost"], r["endpoint"], r["created_at"])
             for r in data["usage"] if r["user"] in kept]
    return {"users": users, "projects": projects, "ai_usage_log": usage}


COLUMNS = {
    "users": ("id", "email", "name", "role"),
    "projects": ("owner_id", "name", "status", "description"),
    "ai_usage_log": ("user_id", "model", "tokens_used", "estimated_cost", "endpoint", "created_at"),
}


def _insert_sql(name: str) -> str:
    cols = COLUMNS[name]
    casts = ["%s::user_role" if c == "role" else "%s" for c in cols]
    return f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join(casts)})"


def load_copy(url: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """psycopg COPY, one per table, in one transaction."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for name, values in rows.items():
            with cur.copy(f"COPY {name} ({', '.join(COLUMNS[name])}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)


def load_executemany(url: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """psycopg executemany (pipelined), one per table, in one transaction."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for name, values in rows.items():
            cur.executemany(_insert_sql(name), values)


def load_row_by_row(url: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """One INSERT statement (one round trip) per row, in one transaction."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for name, values in rows.items():
            query = _insert_sql(name)
            for row in values:
                cur.execute(query, row)


def load_sqlalchemy(url: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """SQLAlchemy Core `insert(table)` with a list of dicts, one per table, in one transaction."""
    from pydb.urls import to_sqlalchemy

    engine = sa.create_engine(to_sqlalchemy(url), poolclass=sa.NullPool)
    metadata = sa.MetaData()
    metadata.reflect(engine, only=list(rows))
    with engine.begin() as conn:
        for name, values in rows.items():
            cols = COLUMNS[name]
            conn.execute(sa.insert(metadata.tables[name]), [dict(zip(cols, row, strict=True)) for row in values])
    engine.dispose()


@contextmanager
def fresh_databases() -> Iterator[Callable[[], Any]]:
    """A factory of fresh copies of the migrated schema on the bench server (.pydb/bench/)."""
    from pydb.config import project_root
    from pydb.local import LocalServer
    from pydb.testing import migrated_template, scratch_database

    root = project_root()
    server = LocalServer(root / ".pydb" / "bench")
    server.up()
    template = migrated_template(server, root / "migrations")
    yield lambda: scratch_database(server.url(), template, prefix="pydb_bench_")


def peak_rss_of_seed(path: Path, url: str) -> dict[str, float]:
    """Peak RSS (MiB, VmHWM) of a new process that runs load_seed on the file, and of one that only imports."""
    code = ("from pydb.seed import load_seed\n{run}\n"
            "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0])")
    run = f"load_seed({str(path)!r}, {url!r})"
    seeded = subprocess.run([sys.executable, "-c", code.format(run=run)], capture_output=True, text=True, check=True)
    idle = subprocess.run([sys.executable, "-c", code.format(run="")], capture_output=True, text=True, check=True)
    return {"seed_mib": int(seeded.stdout.split()[-1]) / 1024, "import_only_mib": int(idle.stdout.split()[-1]) / 1024}


def profile_first_load(path: Path, url: str, top: int = 25) -> str:
    """The top entries (by own time, then cumulative) of a cProfile of one first load."""
    from pydb.seed import load_seed

    os.environ["PYDB_REFLECT_CACHE"] = tempfile.mkdtemp(prefix="pydb-bench-cache-")
    profile = cProfile.Profile()
    profile.enable()
    load_seed(path, url)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def first_load(path: Path, url: str, folder: Path) -> Any:
    """load_seed with empty caches (a first run: the plan is built, then cached for the re-run)."""
    from pydb.seed import load_seed

    os.environ["PYDB_REFLECT_CACHE"] = tempfile.mkdtemp(dir=folder, prefix="cache-")
    return load_seed(path, url)


def main() -> None:
    """Run the benchmark and write bench/results/seed_load.json."""
    from pydb.seed import load_seed

    data = generate()
    rows = tuples(data)
    subset = tuples(data, SUBSET)
    subset_rows = sum(len(v) for v in subset.values())
    assert sum(len(v) for v in rows.values()) == ROWS
    first, rerun = "pydb seed (first load)", "pydb seed (re-run, unchanged)"
    from_csv = "pydb seed from CSV (first load)"
    samples: dict[str, list[float]] = {
        "psycopg COPY": [], "psycopg executemany": [], "SQLAlchemy Core insert(list)": [],
        f"row by row (1/{SUBSET} subset, x{SUBSET})": [], first: [], rerun: [], from_csv: [],
    }
    cpu: dict[str, list[float]] = {"psycopg COPY": [], first: [], from_csv: []}
    with tempfile.TemporaryDirectory() as folder, fresh_databases() as fresh:
        path = Path(folder) / "seed.yaml"
        write_seed_file(data, path)
        csv_seed = write_csv_files(data, Path(folder))
        size = path.stat().st_size
        if "--profile" in sys.argv[1:]:
            with fresh() as url:
                print(profile_first_load(path, url))
            return

        def timed(name: str, load: Callable[[str], Any], keep: bool, scale: float = 1.0) -> None:
            with fresh() as url:
                started, used = time.perf_counter(), time.process_time()
                load(url)
                elapsed = (time.perf_counter() - started) * scale
                if keep:
                    samples[name].append(elapsed)
                    if name in cpu:
                        cpu[name].append(time.process_time() - used)
                if name == first:
                    started = time.perf_counter()
                    report = load_seed(path, url)
                    again = time.perf_counter() - started
                    assert report.unchanged == ROWS and report.inserted == report.updated == 0
                    if keep:
                        samples[rerun].append(again)

        for round_ in range(WARMUP + REPEAT):
            keep = round_ >= WARMUP
            timed("psycopg COPY", lambda url: load_copy(url, rows), keep)
            timed(first, lambda url: first_load(path, url, Path(folder)), keep)
            timed(from_csv, lambda url: first_load(csv_seed, url, Path(folder)), keep)
            timed("psycopg executemany", lambda url: load_executemany(url, rows), keep)
            timed("SQLAlchemy Core insert(list)", lambda url: load_sqlalchemy(url, rows), keep)
            if round_ < WARMUP + ROW_BY_ROW_REPEAT:
                timed(f"row by row (1/{SUBSET} subset, x{SUBSET})", lambda url: load_row_by_row(url, subset),
                      keep, scale=ROWS / subset_rows)
            print(f"round {round_ + 1}/{WARMUP + REPEAT} done", file=sys.stderr)
        with fresh() as url:
            # a first load: empty caches, as in the timed first loads
            os.environ["PYDB_REFLECT_CACHE"] = tempfile.mkdtemp(dir=folder, prefix="cache-")
            rss = peak_rss_of_seed(path, url)

    stats = summary(samples, "psycopg COPY")
    ratio = stats[first]["ratio"]
    ratio_csv = stats[from_csv]["ratio"]
    rerun_ratio = statistics.median(samples[rerun]) / statistics.median(samples[first])
    cpu_seconds = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"seed_load: {ROWS:,} rows ({USERS:,} users, {PROJECTS:,} projects, {USAGE:,} ai_usage_log), "
          f"seed file {size / 2**20:.1f} MiB; {REPEAT} rounds after {WARMUP} warm-up "
          f"(row by row: {ROW_BY_ROW_REPEAT} rounds on {subset_rows:,} rows, scaled to {ROWS:,})")
    print(table(stats, "s"))
    print(f"pydb first load / COPY: {ratio:.2f}x (goal {GOAL}x); from CSV / COPY: {ratio_csv:.2f}x "
          f"(goal {GOAL_CSV}x); re-run / first load: {rerun_ratio:.2f}x (goal {GOAL_RERUN}x)")
    print(f"peak RSS of a first load: {rss['seed_mib']:.0f} MiB (goal {GOAL_RSS_MIB} MiB; a process that only "
          f"imports pydb.seed: {rss['import_only_mib']:.0f} MiB)")
    print("CPU seconds of this process (median): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_seconds.items()))
    path_out = write_result(
        "seed_load", ratio=ratio, goal=GOAL,
        ratio_csv=ratio_csv, goal_csv=GOAL_CSV, meets_goal_csv=ratio_csv <= GOAL_CSV,
        rerun_ratio=rerun_ratio, rerun_goal=GOAL_RERUN, meets_rerun_goal=rerun_ratio <= GOAL_RERUN,
        peak_rss_mib=rss["seed_mib"], goal_peak_rss_mib=GOAL_RSS_MIB,
        meets_peak_rss_goal=rss["seed_mib"] <= GOAL_RSS_MIB, import_only_rss_mib=rss["import_only_mib"],
        rows=ROWS, tables={"users": USERS, "projects": PROJECTS, "ai_usage_log": USAGE}, seed_file_bytes=size,
        repetitions=REPEAT, warmup=WARMUP, row_by_row={"repetitions": ROW_BY_ROW_REPEAT, "rows": subset_rows,
                                                       "scaled_by": ROWS / subset_rows},
        stats=stats, samples=samples, client_cpu_seconds=cpu_seconds,
        note=("ratio: median pydb load_seed (reads, parses and validates the YAML file, then writes) / median psycopg "
              "COPY of the same rows already in memory; ratio_csv: the same for the rows from CSV files; "
              "rerun_ratio: median unchanged re-run / median first load; peak_rss_mib: VmHWM of a new process "
              "running one first load of the YAML file"),
    )
    print(f"wrote {path_out}")


if __name__ == "__main__":
    main()
