"""`python -m pydb.atlas.launcher` (the slow path of .venv/bin/atlas): hand Atlas the URLs of atlas.hcl, then exec it.

The local server is started when an env needs it; `schema apply --env dev` is refused before anything
runs when its plan drops data (unless `--var allow_drop=true`), and warns naming what the shared
database holds that schema.hcl cannot express. After a successful `schema apply --env local` the
project's typed module (pydb/schema.py), when it has one, is generated again, so the types follow
the schema just pushed. pydb/atlas/atlas.sh runs the other `--env local` commands directly while
the local server runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from pydb.atlas.client import Atlas
from pydb.atlas.environ import atlas_environ, env_name, find_atlas
from pydb.config import Settings, load_settings
from pydb.errors import DestructiveChangeError, PydbError
from pydb.urls import from_atlas

__all__ = ["guard_destructive_push", "main"]

_DROP = re.compile(r"^\s*(DROP\s+(TABLE|SCHEMA)\b|ALTER\s+TABLE\s+.*\bDROP\s+COLUMN\b)", re.IGNORECASE)
# Flags of the user's own command that the planning run replaces with its own.
_APPLY_MODES = frozenset({"--auto-approve", "--dry-run"})


def _allows_drop(args: list[str]) -> bool:
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--var" and i + 1 < len(args) else arg.removeprefix("--var=")
        if value.replace(" ", "").lower() == "allow_drop=true":
            return True
    return False


def guard_destructive_push(args: list[str], atlas: Atlas) -> None:
    """Refuse `atlas schema apply --env dev` when its plan drops data, unless --var allow_drop=true."""
    if args[:2] != ["schema", "apply"] or env_name(args) != "dev" or "--dry-run" in args or _allows_drop(args):
        return
    own = [a for a in args[2:] if a not in _APPLY_MODES]
    plan = atlas.schema_apply(dry_run=True, variables={"allow_drop": "true"}, extra=own)
    drops = [statement.strip() for statement in plan.pending if _DROP.match(statement)]
    if drops:
        raise DestructiveChangeError(
            "refusing to push to the shared database of the dev env: the plan drops data:\n  "
            + "\n  ".join(drops)
            + "\nNothing was applied. To apply these drops too, add: --var allow_drop=true"
        )


def _pushes_locally(args: list[str], settings: Settings) -> bool:
    """Whether this is `schema apply --env local` (not a dry run) in a project with a typed module."""
    from pydb.types import module_path

    return (args[:2] == ["schema", "apply"] and env_name(args) == "local" and "--dry-run" not in args
            and module_path(settings).is_file())


def _wait(binary: str, args: list[str], environ: dict[str, str]) -> int:
    """Run Atlas as a child (stdin, stdout and stderr shared) and return its exit status."""
    child = subprocess.Popen([binary, *args], env=environ)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # Atlas got the same Ctrl-C from the terminal; its exit status says what it did


def _regenerate(settings: Settings, environ: dict[str, str]) -> None:
    """Generate the typed module again from schema.hcl, on the local server's dev database; print what changed."""
    from pydb.types import generate

    dev = environ.get("PYDB_LOCAL_DEV_URL")
    result = generate(settings, dev_url=from_atlas(dev) if dev else None,
                      atlas=Atlas(cwd=settings.root, environ=environ, settings=settings))
    if result.written:
        print(f"pydb generate: {result.summary(settings.root)}", flush=True)


def unmanaged_push_warning(args: list[str], environ: dict[str, str]) -> str | None:
    """For `schema apply --env dev`: a warning naming what the shared database holds that Atlas cannot see."""
    target = environ.get("PYDB_TARGET_URL")
    if args[:2] != ["schema", "apply"] or env_name(args) != "dev" or not target:
        return None
    from pydb.describe import unmanaged_objects, unmanaged_warning

    found = unmanaged_objects(target)
    return unmanaged_warning(found) if found else None


def main() -> None:
    """Run the Atlas binary with pydb's environment; never returns."""
    args = sys.argv[1:]
    try:
        settings = load_settings()
        environ = atlas_environ(env_name(args), settings)
        binary = str(find_atlas(settings))
        guard_destructive_push(args, Atlas(environ=environ, settings=settings))
        warning = unmanaged_push_warning(args, environ)
        regenerate = _pushes_locally(args, settings)
    except PydbError as err:
        print(err.report(), file=sys.stderr)
        raise SystemExit(1) from None
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if not regenerate:
        os.execve(binary, [binary, *args], environ)
    status = _wait(binary, args, environ)
    if status == 0:
        try:
            _regenerate(settings, environ)
        except PydbError as err:
            print(f"The schema was applied, but pydb/schema.py was not generated again.\n{err.report()}",
                  file=sys.stderr)
            status = 1
    raise SystemExit(status)


if __name__ == "__main__":
    main()
