"""Build the Atlas CLI pinned by tools/atlas/go.mod into a cache shared by every clone.

The Go module proxy serves the Atlas CLI module (ariga.io/atlas/cmd/atlas) only at its
tags; the newest is v0.13.1. That release reads two settings (lc_collate, lc_ctype)
that PostgreSQL 16 removed from pg_settings, so its connection check fails on
PostgreSQL 16+. Before compiling, this script rewrites that one query in a vendored
copy (outside the repository) to read the same two values from pg_database, the
change Atlas itself made in v0.14.1. Nothing else in Atlas is changed. The version is left unset,
so `atlas version` says "development" and Atlas never calls its version-check service; the
version is recorded in the binary: `go version -m .venv/libexec/pydb/atlas`.

Usage: python tools/atlas/build.py DEST   (DEST is where the binary is copied, e.g. .venv/libexec/pydb/atlas)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERY_FILE = Path("vendor/ariga.io/atlas/sql/postgres/inspect.go")
OLD_QUERY = (
    "SELECT setting FROM pg_settings WHERE name IN "
    "('lc_collate', 'lc_ctype', 'server_version_num', 'crdb_version') ORDER BY name DESC"
)
NEW_QUERY = (
    "SELECT setting FROM ("
    "SELECT name, setting FROM pg_settings WHERE name IN ('server_version_num', 'crdb_version') "
    "UNION ALL SELECT 'lc_collate', datcollate FROM pg_database WHERE datname = current_database() "
    "UNION ALL SELECT 'lc_ctype', datctype FROM pg_database WHERE datname = current_database()"
    ") AS params ORDER BY name DESC"
)


def cache_key() -> str:
    """Hash of everything that decides the binary: go.mod, go.sum and this script."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "build.py"):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("PYDB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pydb"
    )
    return Path(base) / "atlas" / cache_key()


def build(target: Path) -> None:
    go = shutil.which("go")
    if go is None:
        sys.exit(
            "error: Go is not installed, and Atlas is built from source with it.\n"
            "Install Go 1.26 or newer (Debian: apt-get install golang-go, or go.dev/dl), then run: make atlas"
        )
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=vendor")
    with tempfile.TemporaryDirectory(prefix="pydb-atlas-") as tmp:
        work = Path(tmp)
        for name in ("go.mod", "go.sum"):
            shutil.copy(HERE / name, work / name)
        print("atlas: downloading modules (first build only, a few minutes)...", file=sys.stderr)
        subprocess.run([go, "mod", "vendor"], cwd=work, env=dict(env, GOFLAGS=""), check=True)
        query_file = work / QUERY_FILE
        source = query_file.read_text()
        if source.count(OLD_QUERY) != 1:
            sys.exit(f"error: {QUERY_FILE} does not hold the expected query; was go.mod changed?")
        query_file.write_text(source.replace(OLD_QUERY, NEW_QUERY))
        print("atlas: compiling...", file=sys.stderr)
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(work / "atlas"), "ariga.io/atlas/cmd/atlas"],
            cwd=work,
            env=env,
            check=True,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copy(work / "atlas", partial)
        partial.replace(target)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest = Path(sys.argv[1])
    cached = cache_dir() / "atlas"
    if cached.exists():
        print(f"atlas: reusing cached build {cached}", file=sys.stderr)
    else:
        build(cached)
        print(f"atlas: built {cached}", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    shutil.copy(cached, partial)
    partial.replace(dest)


if __name__ == "__main__":
    main()
