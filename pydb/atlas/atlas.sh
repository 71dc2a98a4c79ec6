#!/bin/sh
# .venv/bin/atlas, installed by `make atlas`: runs the Atlas binary of .venv/libexec/pydb/ with the URLs
# atlas.hcl reads from the environment. An `--env local` command while the project's local server runs
# needs nothing but the URLs `pydb dev up` saved in .pydb/atlas.env, so it runs Atlas at once; every
# other command goes through `python -m pydb.atlas.launcher`, which starts the local server when it is
# down, checks DATABASE_URL, refuses destructive pushes to the dev env and warns about what Atlas cannot see.
here=$(dirname "$0")
binary="$here/../libexec/pydb/atlas"
slow() { exec "$here/python" -m pydb.atlas.launcher "$@"; }
case " $* " in *" --env local "* | *" --env=local "*) ;; *) slow "$@" ;; esac
[ -z "$PYDB_ATLAS$PYDB_STATE_DIR$PYDB_LOCAL_URL" ] && [ -x "$binary" ] || slow "$@"
dir=$PWD
while [ ! -f "$dir/atlas.hcl" ] && [ ! -f "$dir/schema.hcl" ]; do
    [ "$dir" = / ] && slow "$@"
    dir=$(dirname "$dir")
done
# [tool.pydb] settings (another state folder, another Atlas) are read by the Python launcher only.
grep -q '^\[tool\.pydb\]' "$dir/pyproject.toml" 2>/dev/null && slow "$@"
[ -f "$dir/.pydb/atlas.env" ] && [ -f "$dir/.pydb/pgdata/postmaster.pid" ] || slow "$@"
read -r pid < "$dir/.pydb/pgdata/postmaster.pid" && kill -0 "$pid" 2>/dev/null || slow "$@"
. "$dir/.pydb/atlas.env"
export PYDB_LOCAL_URL PYDB_LOCAL_DEV_URL PYDB_DEV_URL ATLAS_NO_UPDATE_NOTIFIER=1 ATLAS_NO_UPGRADE_SUGGESTIONS=1
exec "$binary" "$@"
