"""The Atlas CLI: find the binary, give it pydb's URLs, run one subcommand, raise AtlasError on failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pydb.errors import AtlasError, ConfigError, DestructiveChangeError
from pydb.urls import host, is_pooled_host, mask_password, to_atlas, to_direct

LAUNCHER_MARK = b"pydb.atlas_launcher"
# Envs of atlas.hcl that use the local server: `local` always; `dev` and `ci` for their dev database
# unless ATLAS_DEV_URL names another one.
LOCAL_ENVS = ("local", "dev", "ci")
TARGET_ENVS = ("dev", "prod")

_INSTALL_HINT = (
    "Atlas is not installed. Run `make atlas` in the repository (it builds Atlas from tools/atlas "
    "with Go into .venv/libexec/pydb/atlas), or set PYDB_ATLAS to an Atlas binary"
)


@dataclass(frozen=True)
class AtlasResult:
    """What one Atlas command printed, and its exit code."""

    stdout: str
    stderr: str
    exit_code: int


def _is_launcher(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return LAUNCHER_MARK in handle.read(4096)
    except OSError:
        return False


def find_atlas() -> Path:
    """Return the Atlas binary: $PYDB_ATLAS, then the one `make atlas` built, then `atlas` on PATH."""
    configured = os.environ.get("PYDB_ATLAS")
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AtlasError(f"PYDB_ATLAS={configured} is not an executable file")
        return path
    built = Path(sys.prefix) / "libexec" / "pydb" / "atlas"
    if built.is_file():
        return built
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / "atlas"
        if candidate.is_file() and os.access(candidate, os.X_OK) and not _is_launcher(candidate):
            return candidate
    if shutil.which("go") is None:
        raise AtlasError(_INSTALL_HINT + "; Go is missing too: install Go 1.26+ first (apt-get install golang-go)")
    raise AtlasError(_INSTALL_HINT)


def env_name(args: list[str]) -> str | None:
    """Return the value of --env in Atlas's arguments, if any."""
    for i, arg in enumerate(args):
        if arg == "--env" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return None


def atlas_environ(env: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for Atlas: pydb's URLs for atlas.hcl, and no update check."""
    environ = dict(os.environ if base is None else base)
    environ["ATLAS_NO_UPDATE_NOTIFIER"] = "1"
    environ["ATLAS_NO_UPGRADE_SUGGESTIONS"] = "1"
    if env in TARGET_ENVS and environ.get("DATABASE_URL"):
        url = environ["DATABASE_URL"]
        if is_pooled_host(host(url)):
            raise ConfigError(
                f"DATABASE_URL is a Neon pooled (-pooler) host; migrations and pushes need the direct host "
                f"(session locks and DDL do not work through PgBouncer). Use: {mask_password(to_direct(url))}"
            )
        environ["PYDB_TARGET_URL"] = to_atlas(url)
    needs_local = env == "local" or (env in LOCAL_ENVS and not environ.get("ATLAS_DEV_URL"))
    if needs_local and not environ.get("PYDB_LOCAL_URL"):
        from pydb.local import LocalServer

        result = LocalServer().up()
        environ["PYDB_LOCAL_URL"] = to_atlas(result.url)
        environ["PYDB_LOCAL_DEV_URL"] = to_atlas(result.dev_url)
    if environ.get("ATLAS_DEV_URL"):
        environ["PYDB_DEV_URL"] = to_atlas(environ["ATLAS_DEV_URL"])
    else:
        environ.setdefault("PYDB_DEV_URL", environ.get("PYDB_LOCAL_DEV_URL", ""))
    return environ


_DROP = re.compile(r"^\s*(DROP\s+(TABLE|SCHEMA)\b|ALTER\s+TABLE\s+.*\bDROP\s+COLUMN\b)", re.IGNORECASE)


def _allows_drop(args: list[str]) -> bool:
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--var" and i + 1 < len(args) else arg.removeprefix("--var=")
        if value.replace(" ", "").lower() == "allow_drop=true":
            return True
    return False


def guard_destructive_push(args: list[str], environ: dict[str, str]) -> None:
    """Refuse `atlas schema apply --env dev` when its plan drops data, unless --var allow_drop=true."""
    if args[:2] != ["schema", "apply"] or env_name(args) != "dev" or "--dry-run" in args or _allows_drop(args):
        return
    plan_args = [a for a in args if a != "--auto-approve"] + ["--dry-run", "--var", "allow_drop=true"]
    plan = run_atlas(plan_args, environ=environ)
    drops = [line.strip() for line in plan.stdout.splitlines() if _DROP.match(line)]
    if drops:
        raise DestructiveChangeError(
            "refusing to push to the shared database of the dev env: the plan drops data:\n  "
            + "\n  ".join(drops)
            + "\nNothing was applied. To apply these drops too, add: --var allow_drop=true"
        )


def run_atlas(
    args: list[str],
    *,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
    check: bool = True,
) -> AtlasResult:
    """Run one Atlas command with stdin closed; raise AtlasError with its message when check fails."""
    binary = find_atlas()
    env = environ if environ is not None else atlas_environ(env_name(args))
    proc = subprocess.run(
        [str(binary), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False,
    )
    result = AtlasResult(proc.stdout, proc.stderr, proc.returncode)
    if check and proc.returncode != 0:
        raise AtlasError(
            f"atlas {args[0] if args else ''} failed: {mask_password(first_error(proc.stderr, proc.stdout))}",
            stderr=mask_password(proc.stderr),
            exit_code=proc.returncode,
        )
    return result


def first_error(stderr: str, stdout: str = "") -> str:
    """Return Atlas's own error line ("Error: ...") without the prefix, else the last line printed."""
    for line in stderr.splitlines():
        if line.startswith("Error: "):
            return line.removeprefix("Error: ").strip()
    lines = [line for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
