"""async_query: pydb's async relational queries next to raw psycopg AsyncConnection, one by one and concurrently.

Data: bench.relational_query's 200 users, each with 5 projects and 10 usage rows (fixed seed); the
query loads a user with their projects and usage rows (one statement).
1. Latency, interleaved, LOADS (50) loads per sample: pydb's async prepared query
   (`await q.first(id=...)`, headline ratio, goal <= 1.3) against the same SQL text (the statement
   pydb prepared) on one raw psycopg AsyncConnection, prepared (main anchor).
2. Throughput, interleaved: 1,000 calls spread over 10 concurrent tasks, pydb's AsyncDatabase with
   a pool of 10 against raw psycopg with psycopg_pool's AsyncConnectionPool of 10 running the same
   SQL, prepared; rows per second, pydb's over the anchor's (goal >= 0.8), for find_first (building
   its statement per call) and for the prepared query.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg_pool import AsyncConnectionPool

import pydb
from bench.common import bench_database, interleave, summary, table, write_result
from bench.relational_query import LOADS, generate

CALLS, TASKS, REPEAT = 1000, 10, 9
Call = Callable[[uuid.UUID], Awaitable[object]]


def main() -> None:
    """Run the benchmark and write bench/results/async_query.json."""
    rng = random.Random(7)
    loop = asyncio.new_event_loop()
    with bench_database() as url:
        ids = generate(url, rng)
        order = [ids[rng.randrange(len(ids))] for _ in range(LOADS)]
        spread = [ids[rng.randrange(len(ids))] for _ in range(CALLS)]
        try:
            _measure(loop, url, order, spread)
        finally:
            loop.close()


def _measure(loop: asyncio.AbstractEventLoop, url: str, order: list[uuid.UUID], spread: list[uuid.UUID]) -> None:
    run = loop.run_until_complete
    db = pydb.connect_async(url, pool_size=TASKS)
    users = run(db.reflect())["users"]
    columns = ["id", "email", "name", "role", "created_at"]
    # the columns of bench.relational_query's hand-written SQL
    with_: Any = {"projects": {"columns": ["id", "name", "status", "created_at"]},
                  "ai_usage_log": {"columns": ["id", "model", "tokens_used", "estimated_cost"]}}
    prepared = db.query.users.prepare(where=users.c.id == sa.bindparam("id"), columns=columns, with_=with_)
    sql = prepared.sql
    raw = run(psycopg.AsyncConnection.connect(url, autocommit=True))
    pool = AsyncConnectionPool(url, min_size=TASKS, max_size=TASKS, kwargs={"autocommit": True}, open=False)
    run(pool.open(wait=True))

    async def raw_one(uid: uuid.UUID) -> object:
        return await (await raw.execute(sql, {"id": uid}, prepare=True)).fetchone()

    async def raw_pooled(uid: uuid.UUID) -> object:
        async with pool.connection() as conn:
            return await (await conn.execute(sql, {"id": uid}, prepare=True)).fetchone()

    async def pydb_prepared(uid: uuid.UUID) -> object:
        return await prepared.first(id=uid)

    async def pydb_find_first(uid: uuid.UUID) -> object:
        return await db.query.users.find_first(where=users.c.id == uid, columns=columns, with_=with_)

    sample = run(pydb_find_first(order[0]))
    assert isinstance(sample, dict) and len(sample["projects"]) == 5 and len(sample["ai_usage_log"]) == 10
    assert run(pydb_prepared(order[0])) == sample

    def loads(call: Call) -> Callable[[], None]:
        async def go() -> None:
            for uid in order:
                await call(uid)
        return lambda: run(go())

    def spread_over_tasks(call: Call) -> Callable[[], None]:
        async def worker(share: list[uuid.UUID]) -> None:
            for uid in share:
                assert await call(uid) is not None

        async def go() -> None:
            await asyncio.gather(*(worker(spread[i::TASKS]) for i in range(TASKS)))
        return lambda: run(go())

    latency = interleave({"raw psycopg AsyncConnection, prepared": loads(raw_one),
                          "pydb async prepared query": loads(pydb_prepared),
                          "pydb async find_first": loads(pydb_find_first)}, repeat=REPEAT, warmup=2)
    per_load = {name: [t / len(order) for t in times] for name, times in latency.items()}
    stats = summary(per_load, "raw psycopg AsyncConnection, prepared")
    concurrent = interleave({"raw psycopg + psycopg_pool (10)": spread_over_tasks(raw_pooled),
                             "pydb find_first, pool of 10": spread_over_tasks(pydb_find_first),
                             "pydb prepared query, pool of 10": spread_over_tasks(pydb_prepared)},
                            repeat=REPEAT, warmup=1)
    rates = {name: [CALLS / t for t in times] for name, times in concurrent.items()}
    anchor_rate = statistics.median(rates["raw psycopg + psycopg_pool (10)"])
    throughput = {name: {"min": min(v), "median": statistics.median(v), "max": max(v),
                         "ratio": statistics.median(v) / anchor_rate} for name, v in rates.items()}
    run(raw.close())
    run(pool.close())
    run(db.dispose())

    print(f"async_query: {len(order)} loads per sample (a user + 5 projects + 10 usage rows), per load")
    print(table(stats, "us"))
    print(f"throughput: {CALLS} calls over {TASKS} tasks, rows per second (ratio: pydb / raw, higher is better)")
    width = max(len(name) for name in throughput)
    for name, row in throughput.items():
        print(f"{name:{width}}  {row['min']:8.0f} {row['median']:8.0f} {row['max']:8.0f}  {row['ratio']:.2f}x")
    path = write_result(
        "async_query", ratio=stats["pydb async prepared query"]["ratio"], goal=1.3,
        ratio_find_first=stats["pydb async find_first"]["ratio"],
        throughput_ratio=throughput["pydb find_first, pool of 10"]["ratio"], throughput_goal=0.8,
        throughput_ratio_prepared=throughput["pydb prepared query, pool of 10"]["ratio"],
        throughput_meets_goal=throughput["pydb find_first, pool of 10"]["ratio"] >= 0.8,
        note="ratio: await prepared.first(id=...) per load / the same SQL on a raw AsyncConnection, prepared; "
             "throughput_ratio: rows/s of 1,000 find_first over 10 tasks (pool of 10) / rows/s of raw psycopg with "
             "psycopg_pool (10), higher is better",
        loads_per_sample=len(order), calls=CALLS, tasks=TASKS, stats=stats, throughput=throughput,
        samples=per_load, throughput_samples=rates, elapsed_at=time.strftime("%Y-%m-%d"),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
