"""`.venv/bin/atlas`: hand Atlas the URLs of atlas.hcl (starting the local server when an env needs it)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run the Atlas binary with pydb's environment; never returns."""
    from pydb.atlas import atlas_environ, env_name, find_atlas, guard_destructive_push
    from pydb.errors import PydbError

    args = sys.argv[1:]
    try:
        environ = atlas_environ(env_name(args))
        binary = str(find_atlas())
        guard_destructive_push(args, environ)
    except PydbError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    os.execve(binary, [binary, *args], environ)


if __name__ == "__main__":
    main()
