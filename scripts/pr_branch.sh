#!/usr/bin/env bash
# The database steps of a pull request on Neon, one subcommand per step of .github/workflows/database.yml.
# tests/test_pr_workflow_neon.py runs the workflow's steps as written there, against a local double of
# Neon's API, so what CI does is tested here, not only linted.
#
#   scripts/pr_branch.sh lint    pydb lint (Atlas's migrate lint plus squawk) on the migrations added
#                                since origin/$BASE_REF
#   scripts/pr_branch.sh create  make branch pr-$PR_NUMBER a fresh copy of the default branch: create it,
#                                or reset it when it exists (a new push); if it has child branches, its
#                                old state and the children are kept on a branch pr-$PR_NUMBER-before-TIME
#   scripts/pr_branch.sh plan    atlas migrate apply --dry-run on the branch: what deploy will run
#   scripts/pr_branch.sh deploy  atlas migrate apply on the branch's direct (not -pooler) URL
#   scripts/pr_branch.sh seed    pydb seed seed.yaml on the branch
#   scripts/pr_branch.sh drift   pydb drift on the branch: its schema is what migrations/ says
#   scripts/pr_branch.sh delete  delete the branch (the pull request is closed); nothing to do if it is gone
#
# Needs NEON_API_KEY, NEON_PROJECT_ID and PR_NUMBER (and BASE_REF for lint) in the environment, and
# pydb, atlas and python3 on PATH (the repository's .venv/bin). Each step exits non-zero when it fails.
set -euo pipefail

step=${1:?usage: scripts/pr_branch.sh lint|create|plan|deploy|seed|drift|delete}
branch="pr-${PR_NUMBER:?set PR_NUMBER to the pull request number}"

# Names of the branches whose parent is $1 (mode "children") or whose name is $1 (mode "named"), one a line.
branches() {
  pydb branch list --json | python3 -c '
import json, sys
mode, name = sys.argv[1], sys.argv[2]
for b in json.load(sys.stdin):
    if (b["parent"] if mode == "children" else b["name"]) == name:
        print(b["name"])
' "$1" "$2"
}

# Run a command with DATABASE_URL set to the branch's direct URL: migrations, seeds and drift need
# session features a transaction-mode pooler does not keep.
on_branch() {
  local url
  url=$(pydb branch url "$branch")
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    # Keep the password out of the job's log, whatever prints the URL.
    echo "::add-mask::$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).password or "")' "$url")"
  fi
  DATABASE_URL=$url "$@"
}

case "$step" in
  lint)
    pydb lint --git-base "origin/${BASE_REF:?set BASE_REF to the pull request base branch}"
    ;;
  create)
    # Assignments, not tests: a failing lookup stops the step (set -e) instead of reading as "none".
    found=$(branches named "$branch")
    if [ -z "$found" ]; then
      pydb branch create "$branch"
    else
      children=$(branches children "$branch")
      if [ -z "$children" ]; then
        pydb branch reset "$branch"
      else
        pydb branch reset "$branch" --preserve-under "$branch-before-$(date -u +%Y%m%d%H%M%S)"
      fi
    fi
    ;;
  plan)
    on_branch atlas migrate apply --env prod --dry-run
    ;;
  deploy)
    on_branch atlas migrate apply --env prod
    ;;
  seed)
    on_branch pydb seed seed.yaml
    ;;
  drift)
    on_branch pydb drift
    ;;
  delete)
    found=$(branches named "$branch")
    if [ -z "$found" ]; then
      echo "branch $branch does not exist: nothing to delete"
    else
      pydb branch delete "$branch" --yes
    fi
    ;;
  *)
    echo "scripts/pr_branch.sh: unknown step $step (lint, create, plan, deploy, seed, drift or delete)" >&2
    exit 2
    ;;
esac
