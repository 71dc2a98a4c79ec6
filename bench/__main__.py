"""`python -m bench` (`make bench`): run every benchmark, then write the summary table into docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS

BENCHMARKS = ["point_query", "relational_query", "async_query", "cold_start", "seed_load", "branch_create",
              "cli_latency", "studio_page", "generate"]
PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- bench table -->", "<!-- /bench table -->"
ANCHORS = {
    "point_query": "raw psycopg, prepared statement",
    "relational_query": "hand-written json_agg SQL via psycopg",
    "async_query": "the same SQL on a raw psycopg AsyncConnection, prepared",
    "cold_start": "a psycopg-only script",
    "seed_load": "psycopg COPY of the same rows",
    "branch_create": "CREATE DATABASE ... TEMPLATE",
    "cli_latency": "a psycopg connect + SELECT script",
    "studio_page": "raw psycopg running the same keyset query",
    "generate": "atlas schema inspect of schema.hcl (process)",
}
# Figures shown beside the main ratio: (key in the result, label with {value} and other keys, key telling if met).
EXTRA: dict[str, list[tuple[str, str, str | None]]] = {
    "point_query": [("ratio_find_first", "find_first building its statement per call: {value:.2f}x", None)],
    "relational_query": [("ratio_find_first", "find_first building its statement per call: {value:.2f}x", None)],
    "async_query": [("throughput_ratio", "find_first rows/s over 10 tasks / psycopg_pool's (goal >= "
                                         "{throughput_goal}): {value:.2f}x", "throughput_meets_goal")],
    "cold_start": [("ratio_no_cache", "no reflection cache: {value:.2f}x", None),
                   ("ratio_sqlalchemy_floor", "any SQLAlchemy Core script (floor): {value:.2f}x", None)],
    "seed_load": [
        ("ratio_csv", "from CSV / COPY (goal {goal_csv}): {value:.2f}x", "meets_goal_csv"),
        ("peak_rss_mib", "peak RSS (goal {goal_peak_rss_mib} MiB): {value:.0f} MiB", "meets_peak_rss_goal"),
        ("rerun_ratio", "unchanged re-run / first load (goal {rerun_goal}): {value:.2f}x", "meets_rerun_goal"),
    ],
    "branch_create": [("fixture_ratio", "per-test fixture, create + drop: {value:.2f}x", None)],
    "cli_latency": [("ratio_atlas_launcher",
                     "atlas via the launcher / the Atlas binary (goal {goal_atlas_launcher}): {value:.2f}x", None)],
    "studio_page": [("deep_first_ratio", "page near the end / first page (goal {deep_first_goal}): {value:.2f}x",
                     None)],
    "generate": [("ratio_in_process", "generate() in a running Python: {value:.2f}x", None)],
}


def summary_table() -> str:
    """The Markdown table of the latest bench/results/*.json."""
    lines = ["| benchmark | anchor | pydb ÷ anchor (median) | goal | met | also measured |",
             "|---|---|---|---|---|---|"]
    for name in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            lines.append(f"| `{name}` | {ANCHORS[name]} | not run | | | |")
            continue
        data = json.loads(path.read_text())
        ratio, goal = data.get("ratio"), data.get("goal")
        shown = "no ratio (anchor could not run)" if ratio is None else f"{ratio:.2f}x"
        met = "" if ratio is None else ("yes" if ratio <= goal else "**no**")
        figures = []
        for key, label, met_key in EXTRA[name]:
            value = data.get(key)
            if isinstance(value, int | float):
                missed = met_key is not None and data.get(met_key) is False
                figures.append(label.format(**{**data, "value": value}) + (" (**not met**)" if missed else ""))
        also = "; ".join(figures)
        lines.append(f"| `{name}` | {ANCHORS[name]} | {shown} | ≤ {goal} | {met} | {also} |")
    env = {}
    for name in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if path.exists():
            env = json.loads(path.read_text()).get("environment", {})
            break
    if env:
        lines.append("")
        lines.append(f"PostgreSQL {env.get('postgresql')}, Python {env.get('python')}, psycopg {env.get('psycopg')}, "
                     f"SQLAlchemy {env.get('sqlalchemy')}, {env.get('cpus')} CPUs. Details and raw samples: "
                     "`bench/results/NAME.json`.")
    return "\n".join(lines)


def update_page() -> None:
    """Replace the table between the bench markers of docs/benchmarks.md."""
    text = PAGE.read_text()
    start = text.index(START) + len(START)
    end = text.index(END, start) + len(END)
    PAGE.write_text(text[:start] + "\n" + summary_table() + "\n" + END + text[end:])


def main() -> None:
    """Run the benchmarks given (default: all) one process each, then refresh the table of docs/benchmarks.md."""
    names = sys.argv[1:] or BENCHMARKS
    for name in names:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, "-m", f"bench.{name}"], check=True)
        print(f"   ({time.monotonic() - started:.0f} s)\n", flush=True)
    update_page()
    print(summary_table())


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        update_page()
        print(summary_table())
    else:
        main()
