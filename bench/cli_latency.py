"""cli_latency: how long the commands people type take, as whole processes.

Contenders, interleaved round by round, each a new process on the project's local server (.pydb/,
started if needed; its app database holds what `make demo` loads):
  - `pydb seed seed.yaml` on the repository's seed file, already loaded (nothing changes), vs a
    psycopg script that connects and runs one SELECT (the main anchor);
  - `atlas schema apply --env local --auto-approve` with nothing to change, through pydb's launcher
    (.venv/bin/atlas), vs the Atlas binary given the same URLs on its command line.
Run: python -m bench.cli_latency
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import interleave, summary, table, write_result

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.prefix) / "bin"
PSYCOPG = (
    "import os, psycopg\nwith psycopg.connect(os.environ['DATABASE_URL']) as c:\n"
    "    c.execute('SELECT 1').fetchall()\n"
)


def _run(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdin=subprocess.DEVNULL, capture_output=True)


def main() -> None:
    """Run the benchmark and write bench/results/cli_latency.json."""
    from pydb.local import LocalServer
    from pydb.urls import to_atlas

    up = LocalServer(ROOT / ".pydb").up()
    base = dict(os.environ, DATABASE_URL=up.url)
    for name in ("PYDB_ATLAS", "PYDB_STATE_DIR", "PYDB_LOCAL_URL"):
        base.pop(name, None)
    atlas_binary = str(Path(sys.prefix) / "libexec" / "pydb" / "atlas")
    launcher = [str(VENV_BIN / "atlas"), "schema", "apply", "--env", "local", "--auto-approve"]
    direct = [atlas_binary, "schema", "apply", "-u", to_atlas(up.url), "--dev-url", to_atlas(up.dev_url),
              "--to", "file://schema.hcl", "--auto-approve"]
    seed = [str(VENV_BIN / "pydb"), "seed", "seed.yaml"]
    anchor = [sys.executable, "-c", PSYCOPG]
    _run(launcher, base)  # the schema is in place: later runs change nothing
    _run(seed, base)  # the rows are in place (and the seed's caches warm)
    samples = interleave({
        "psycopg connect + SELECT": lambda: _run(anchor, base),
        "pydb seed seed.yaml (unchanged)": lambda: _run(seed, base),
        "atlas binary, same URLs (no changes)": lambda: _run(direct, base),
        "atlas via pydb's launcher (no changes)": lambda: _run(launcher, base),
    }, repeat=9, warmup=1)
    seed_stats = summary({k: samples[k] for k in ("psycopg connect + SELECT", "pydb seed seed.yaml (unchanged)")},
                         "psycopg connect + SELECT")
    atlas_stats = summary({k: samples[k] for k in ("atlas binary, same URLs (no changes)",
                                                   "atlas via pydb's launcher (no changes)")},
                          "atlas binary, same URLs (no changes)")
    print("cli_latency: whole processes, medians of 9 interleaved rounds")
    print(table(seed_stats, "ms"))
    print(table(atlas_stats, "ms"))
    path = write_result(
        "cli_latency", ratio=seed_stats["pydb seed seed.yaml (unchanged)"]["ratio"], goal=2.0,
        ratio_atlas_launcher=atlas_stats["atlas via pydb's launcher (no changes)"]["ratio"], goal_atlas_launcher=1.3,
        stats={**seed_stats, **atlas_stats}, samples=samples,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
