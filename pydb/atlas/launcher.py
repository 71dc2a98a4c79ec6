"""`python -m pydb.atlas.launcher` (the slow path of .venv/bin/atlas): hand Atlas the URLs of atlas.hcl, then exec it.

The local server is started when an env needs it; `schema apply --env dev` is refused before anything
runs when its plan drops data (unless `--var allow_drop=true`), and warns naming what the shared
database holds that schema.hcl cannot express. pydb/atlas/atlas.sh runs `--env local` commands
directly while the local server runs.
"""

from __future__ import annotations

import os
import re
import sys

from pydb.atlas.client import Atlas
from pydb.atlas.environ import atlas_environ, env_name, find_atlas
from pydb.config import load_settings
from pydb.errors import DestructiveChangeError, PydbError

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
    except PydbError as err:
        print(err.report(), file=sys.stderr)
        raise SystemExit(1) from None
    if warning:
        print(warning, file=sys.stderr, flush=True)
    os.execve(binary, [binary, *args], environ)


if __name__ == "__main__":
    main()
