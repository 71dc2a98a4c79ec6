"""studio_page: a page of 50 rows of a 1,000,000-row table in `pydb studio` vs raw psycopg running the same query.

Data: 1,000 users and 1,000,000 ai_usage_log rows, generated in SQL from generate_series (no randomness:
keys are md5 of the row number). Pages: the first page of /tables/ai_usage_log, and a page near the end
(after the 999,900th row in primary-key order), both requested over HTTP in-process (httpx's ASGI
transport into the studio's Starlette app, cookie already set). The anchor sends the very statement
and parameters the studio sent for that page (captured from its engine) with raw psycopg and fetches
the rows. Goals: page ≤ 3x raw; the deep page ≤ 1.5x the first page (keyset pagination).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

from bench.common import bench_database, interleave, summary, table, write_result

USERS = 1_000
ROWS = 1_000_000
DEEP = 999_900
REQUESTS = 20  # per sample

DATA: list[tuple[str, tuple[int, ...]]] = [
    ("INSERT INTO users (id, email, name) SELECT md5('user' || g)::uuid, 'user' || g || '@example.com', "
     "'User ' || g FROM generate_series(1, %s) AS g", (USERS,)),
    ("INSERT INTO ai_usage_log (id, user_id, model, tokens_used, estimated_cost, endpoint, created_at) "
     "SELECT md5('usage' || g)::uuid, md5('user' || (1 + g %% %s))::uuid, "
     "(ARRAY['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small'])[1 + g %% 3], 100 + (g::bigint * 7919) %% 5000, "
     "((g::bigint * 7919) %% 5000) / 100000.0, '/api/chat', timestamptz '2025-01-01' + g * interval '1 second' "
     "FROM generate_series(1, %s) AS g", (USERS, ROWS)),
    ("VACUUM ANALYZE ai_usage_log", ()),
]


def main() -> None:
    """Run the benchmark and write bench/results/studio_page.json."""
    from pydb.config import load_settings
    from pydb.studio import open_studio
    from pydb.studio.browse import View, read_page
    from pydb.studio.values import encode_cursor

    with bench_database() as url:
        print(f"studio_page: generating {USERS:,} users and {ROWS:,} ai_usage_log rows", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            for statement, params in DATA:
                conn.execute(statement, params or None)
            (deep_id,) = conn.execute("SELECT id FROM ai_usage_log ORDER BY id OFFSET %s LIMIT 1",
                                      (DEEP - 1,)).fetchone() or (None,)
        studio = open_studio(url, settings=load_settings(), token="bench")
        sent: list[tuple[str, Any]] = []
        sa.event.listen(studio.db.engine, "before_cursor_execute",
                        lambda _c, _cur, statement, params, *_: sent.append((statement, params)))
        loop = asyncio.new_event_loop()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=studio.app), base_url="http://127.0.0.1:4980")
        first_url = "/tables/ai_usage_log"
        deep_url = f"/tables/ai_usage_log?after={encode_cursor([deep_id])}"

        def get(path: str) -> str:
            response = loop.run_until_complete(client.get(path))
            assert response.status_code == 200, response.text[:500]
            return response.text

        loop.run_until_complete(client.get("/?token=bench"))
        statements = {}
        for name, page_url in (("first", first_url), ("deep", deep_url)):
            sent.clear()
            html = get(page_url)
            assert html.count("<tr>") == 51, "a page holds 50 rows"
            pages = [s for s in sent if "FROM ai_usage_log" in s[0]]
            assert len(sent) == 1 and len(pages) == 1, sent  # one statement per page, nothing else
            statements[name] = pages[0]
        raw = psycopg.connect(url, autocommit=True)

        def raw_page(name: str) -> None:
            statement, params = statements[name]
            rows = raw.execute(statement, params).fetchall()
            assert len(rows) == 51

        def studio_page(path: str) -> None:
            get(path)

        logs = studio.db.tables["ai_usage_log"]

        def query_only() -> None:
            assert len(read_page(studio.db, logs, View()).rows) == 50

        def floor() -> None:
            response = loop.run_until_complete(client.get("/tables/no_such_table"))
            assert response.status_code == 404

        samples = interleave(
            {"raw psycopg, first page": lambda: raw_page("first"),
             "studio, first page": lambda: studio_page(first_url),
             "raw psycopg, deep page": lambda: raw_page("deep"),
             "studio, deep page": lambda: studio_page(deep_url),
             # where the time goes: the page's query through pydb.studio.browse (SQLAlchemy Core, rows as
             # dicts), and the HTTP stack alone (a 404 page: middleware, routing, a small template, httpx)
             "studio query only (read_page)": query_only,
             "HTTP floor (404 page)": floor},
            repeat=7, warmup=2, inner=REQUESTS,
        )
        stats = summary(samples, "raw psycopg, first page")
        deep_raw = stats["raw psycopg, deep page"]["median"]
        first_ratio = stats["studio, first page"]["ratio"]
        deep_ratio = stats["studio, deep page"]["median"] / deep_raw
        deep_first = stats["studio, deep page"]["median"] / stats["studio, first page"]["median"]
        print(f"studio_page: {ROWS:,} rows; a page is 50 rows; medians of {REQUESTS} requests per sample")
        print(table(stats, "ms"))
        print(f"studio / raw: first page {first_ratio:.2f}x, deep page {deep_ratio:.2f}x; "
              f"studio deep / first page {deep_first:.2f}x")
        path = write_result(
            "studio_page", ratio=max(first_ratio, deep_ratio), goal=3.0,
            ratio_first=first_ratio, ratio_deep=deep_ratio, deep_first_ratio=deep_first, deep_first_goal=1.5,
            note="ratio: the worse of (studio first page / raw first page) and (studio deep page / raw deep page); "
                 "deep_first_ratio: studio deep page / studio first page; 'studio query only' and 'HTTP floor' "
                 "split the page's time into its query and the HTTP stack",
            rows=ROWS, deep_offset=DEEP, statements_per_page=1, requests_per_sample=REQUESTS,
            statements={k: v[0] for k, v in statements.items()}, stats=stats, samples=samples,
        )
        print(f"wrote {path}")
        loop.run_until_complete(client.aclose())
        loop.close()
        raw.close()
        studio.close()


if __name__ == "__main__":
    main()
