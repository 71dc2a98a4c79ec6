"""generate: `pydb generate --check` on the repository's schema.hcl, next to Atlas reading the same schema.

Anchor: `atlas schema inspect -u file://schema.hcl --dev-url <dev database>`, Atlas loading the
same HCL through a dev database, which any typed output built on Atlas has to do at least. Both
are whole processes on pydb's bench server (.pydb/bench), interleaved: the anchor (main), pydb as a
process (headline ratio: what a user and `make test` wait for), and `generate()` called in an
already running Python (the work without interpreter start and imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import interleave, summary, table, write_result
from pydb.atlas import Atlas, atlas_environ, find_atlas
from pydb.config import load_settings, project_root
from pydb.local import LocalServer
from pydb.types import generate, module_path
from pydb.urls import to_atlas


def main() -> None:
    """Run the benchmark and write bench/results/generate.json."""
    root = project_root()
    state = root / ".pydb" / "bench"
    dev_url = LocalServer(state).up().dev_url
    env = dict(os.environ, PYDB_STATE_DIR=str(state))
    settings = load_settings(root, env)
    atlas = Atlas(cwd=root, environ=atlas_environ(None, settings), settings=settings)  # as `pydb generate` makes it
    binary = str(find_atlas(settings))
    module = module_path(settings)
    before = module.read_text()

    def anchor() -> None:
        subprocess.run([binary, "schema", "inspect", "-u", "file://schema.hcl", "--dev-url", to_atlas(dev_url)],
                       cwd=root, env=atlas.environ(None), check=True, capture_output=True)

    def pydb_process() -> None:
        subprocess.run([str(Path(sys.executable).parent / "pydb"), "generate", "--check"], cwd=root, env=env,
                       check=True, capture_output=True)

    def pydb_in_process() -> None:
        generate(settings, check=True, dev_url=dev_url, atlas=atlas)

    samples = interleave({"atlas schema inspect (process)": anchor, "pydb generate --check (process)": pydb_process,
                          "generate() in process": pydb_in_process}, repeat=7, warmup=1)
    assert module.read_text() == before  # --check never writes
    stats = summary(samples, "atlas schema inspect (process)")
    print(f"generate: {root / 'schema.hcl'} ({len(before.splitlines())} lines of pydb/schema.py)")
    print(table(stats, "ms"))
    path = write_result(
        "generate", ratio=stats["pydb generate --check (process)"]["ratio"], goal=5.0,
        ratio_in_process=stats["generate() in process"]["ratio"],
        note="ratio: `pydb generate --check` process / `atlas schema inspect` process on the same schema.hcl and "
             "dev server; no goal was set for it: 5.0 is this benchmark's own",
        stats=stats, samples=samples,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
