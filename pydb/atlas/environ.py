"""Where the Atlas binary is, and the environment atlas.hcl reads its URLs from."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pydb.config import Settings, load_settings, process_environ
from pydb.errors import AtlasError, ConfigError
from pydb.urls import host, is_pooled_host, mask_password, to_atlas, to_direct

__all__ = ["LOCAL_ENVS", "TARGET_ENVS", "atlas_environ", "env_name", "find_atlas"]

LAUNCHER_MARK = b"pydb.atlas.launcher"
# Envs of atlas.hcl that use the local server: `local` always; `dev` and `ci` for their dev database
# unless ATLAS_DEV_URL names another one.
LOCAL_ENVS = ("local", "dev", "ci")
TARGET_ENVS = ("dev", "prod")

_INSTALL_HINT = (
    "Atlas is not installed. Run `make atlas` in the repository (it builds Atlas from tools/atlas "
    "with Go into .venv/libexec/pydb/atlas), or set PYDB_ATLAS to an Atlas binary"
)


def _is_launcher(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return LAUNCHER_MARK in head or b"pydb.atlas_launcher" in head


def find_atlas(settings: Settings | None = None) -> Path:
    """Return the Atlas binary: the `atlas` setting, then the one `make atlas` built, then `atlas` on PATH."""
    settings = settings or load_settings()
    if settings.atlas is not None:
        path = settings.atlas
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AtlasError(f"PYDB_ATLAS={path} is not an executable file")
        return path
    built = Path(sys.prefix) / "libexec" / "pydb" / "atlas"
    if built.is_file():
        return built
    for folder in process_environ().get("PATH", "").split(os.pathsep):
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


def atlas_environ(env: str | None, settings: Settings | None = None) -> dict[str, str]:
    """Return the environment for Atlas: pydb's URLs for atlas.hcl, and no update check.

    The `local` env (and `dev`/`ci` without ATLAS_DEV_URL) starts the local server when it is down.
    """
    settings = settings or load_settings()
    environ = process_environ()
    environ["ATLAS_NO_UPDATE_NOTIFIER"] = "1"
    environ["ATLAS_NO_UPGRADE_SUGGESTIONS"] = "1"
    if env in TARGET_ENVS and settings.database_url:
        url = settings.database_url
        if is_pooled_host(host(url)):
            raise ConfigError(
                f"DATABASE_URL is a Neon pooled (-pooler) host; migrations and pushes need the direct host "
                f"(session locks and DDL do not work through PgBouncer). Use: {mask_password(to_direct(url))}"
            )
        environ["PYDB_TARGET_URL"] = to_atlas(url)
    needs_local = env == "local" or (env in LOCAL_ENVS and not settings.atlas_dev_url)
    if needs_local and not environ.get("PYDB_LOCAL_URL"):
        from pydb.local import LocalServer

        result = LocalServer(settings.state).up()
        environ["PYDB_LOCAL_URL"] = to_atlas(result.url)
        environ["PYDB_LOCAL_DEV_URL"] = to_atlas(result.dev_url)
    if settings.atlas_dev_url:
        environ["PYDB_DEV_URL"] = to_atlas(settings.atlas_dev_url)
    else:
        environ.setdefault("PYDB_DEV_URL", environ.get("PYDB_LOCAL_DEV_URL", ""))
    return environ
