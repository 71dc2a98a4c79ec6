"""Shared benchmark plumbing: interleaved timing, summaries, the environment, and results/NAME.json."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    """Versions and machine facts that a figure depends on."""
    import psycopg
    import sqlalchemy

    from pydb.local import LocalServer

    return {
        "python": platform.python_version(),
        "postgresql": LocalServer.postgres_version(),
        "psycopg": psycopg.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "atlas": "v0.13.1 (tools/atlas)",
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def interleave(
    contenders: dict[str, Callable[[], Any]], *, repeat: int = 7, warmup: int = 1, inner: int = 1
) -> dict[str, list[float]]:
    """Run each contender in turn (A, B, A, B, ...), `repeat` times after `warmup`; seconds per call."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + repeat):
        for name, run in contenders.items():
            started = time.perf_counter()
            for _ in range(inner):
                run()
            elapsed = (time.perf_counter() - started) / inner
            if round_ >= warmup:
                samples[name].append(elapsed)
    return samples


def summary(samples: dict[str, list[float]], anchor: str) -> dict[str, dict[str, float]]:
    """min/median/max per contender and the ratio of its median to the anchor's."""
    base = statistics.median(samples[anchor])
    return {
        name: {
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
            "ratio": statistics.median(values) / base,
        }
        for name, values in samples.items()
    }


def table(stats: dict[str, dict[str, float]], unit: str = "ms") -> str:
    """A plain-text table of a summary."""
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    width = max(len(n) for n in stats)
    lines = [f"{'':{width}}  {'min':>10} {'median':>10} {'max':>10}  ratio"]
    for name, row in stats.items():
        lines.append(
            f"{name:{width}}  {row['min'] * scale:10.3f} {row['median'] * scale:10.3f} "
            f"{row['max'] * scale:10.3f}  {row['ratio']:.2f}x"
        )
    return "\n".join(lines) + f"\n(times in {unit})"


def write_result(name: str, *, ratio: float | None, goal: float, **fields: Any) -> Path:
    """Write bench/results/NAME.json with the ratio, the goal, the environment and the rest."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "ratio": ratio, "goal": goal,
            "meets_goal": None if ratio is None else ratio <= goal,
            "environment": environment(), **fields}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh copy of the migrated schema on pydb's bench server (.pydb/bench/), dropped afterwards."""
    from pydb.config import project_root
    from pydb.local import LocalServer
    from pydb.testing import migrated_template, scratch_database

    root = project_root()
    server = LocalServer(root / ".pydb" / "bench")
    server.up()
    template = migrated_template(server, root / "migrations")
    with scratch_database(server.url(), template, prefix="pydb_bench_") as url:
        yield url
