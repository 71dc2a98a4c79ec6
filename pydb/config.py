"""Settings: one object, read once from the environment and `[tool.pydb]` in pyproject.toml.

Precedence: command-line flags (applied by the CLI with `Settings.replace`), then environment
variables, then `[tool.pydb]` in the project's pyproject.toml, then defaults. Every setting is in
SETTINGS and documented in docs/configuration.md; no other module reads the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydb.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings", "load_settings", "process_environ", "project_root", "resolve_url"]

_MARKERS = ("atlas.hcl", "schema.hcl")


@dataclass(frozen=True)
class Setting:
    """How one setting is named in the environment and in `[tool.pydb]`."""

    name: str
    env: str
    key: str | None  # None: environment only (URLs with passwords, secrets)
    kind: str  # "str", "bool", "int", "path" or "off-or-path"


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "DATABASE_URL", None, "str"),
    Setting("env", "PYDB_ENV", "env", "str"),
    Setting("debug", "PYDB_DEBUG", "debug", "bool"),
    Setting("progress", "PYDB_NO_PROGRESS", "progress", "bool"),
    Setting("atlas", "PYDB_ATLAS", "atlas", "path"),
    Setting("state_dir", "PYDB_STATE_DIR", "state_dir", "path"),
    Setting("reflect_cache", "PYDB_REFLECT_CACHE", "reflect_cache", "off-or-path"),
    Setting("seed_cache", "PYDB_SEED_CACHE", "seed_cache", "bool"),
    Setting("async_pool_size", "PYDB_ASYNC_POOL_SIZE", "async_pool_size", "int"),
    Setting("test_state_dir", "PYDB_TEST_STATE_DIR", "test_state_dir", "path"),
    Setting("atlas_dev_url", "ATLAS_DEV_URL", None, "str"),
    Setting("neon_api_key", "NEON_API_KEY", None, "str"),
    Setting("neon_project_id", "NEON_PROJECT_ID", "neon_project_id", "str"),
    Setting("neon_api_url", "NEON_API_URL", "neon_api_url", "str"),
    Setting("neon_database", "NEON_DATABASE", "neon_database", "str"),
    Setting("neon_role", "NEON_ROLE", "neon_role", "str"),
    Setting("studio_statement_timeout", "PYDB_STUDIO_STATEMENT_TIMEOUT", "studio_statement_timeout", "str"),
)
# Environment variables whose meaning is inverted: set to 1 to turn the setting off.
_NEGATED = {"PYDB_NO_PROGRESS"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Everything pydb can be configured with; build it with load_settings()."""

    root: Path
    database_url: str | None = field(default=None, repr=False)
    env: str = "development"
    debug: bool = False
    progress: bool = True
    atlas: Path | None = None
    state_dir: Path | None = None
    reflect_cache: Path | None = None
    reflect_cache_off: bool = False
    seed_cache: bool = True
    async_pool_size: int = 5  # connections of an AsyncDatabase's pool, at most (no overflow)
    test_state_dir: Path | None = None
    atlas_dev_url: str | None = field(default=None, repr=False)
    neon_api_key: str | None = field(default=None, repr=False)
    neon_project_id: str | None = None
    neon_api_url: str = "https://console.neon.tech/api/v2"
    neon_database: str = "neondb"
    neon_role: str = "neondb_owner"
    studio_statement_timeout: str = "10s"  # PostgreSQL's statement_timeout for `pydb studio`'s SQL page

    @property
    def state(self) -> Path:
        """The folder of local state: the local server, its logs and caches."""
        return self.state_dir or self.root / ".pydb"

    @property
    def cache_folder(self) -> Path | None:
        """Where reflected schemas and seed plans are cached, or None when caching is off."""
        if self.reflect_cache_off:
            return None
        return self.reflect_cache or self.state / "cache"

    @property
    def test_state(self) -> Path:
        """The folder of the pytest plugin's server."""
        return self.test_state_dir or self.root / ".pydb" / "test"

    @property
    def production(self) -> bool:
        """Tell whether PYDB_ENV says this is a production environment."""
        return self.env.strip().lower() == "production"

    @property
    def neon(self) -> bool:
        """Tell whether branches are Neon branches (both NEON_API_KEY and NEON_PROJECT_ID are set)."""
        return bool(self.neon_api_key and self.neon_project_id)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed (command-line flags)."""
        return dataclasses.replace(self, **changes)


def project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above start (default: cwd) holding atlas.hcl or schema.hcl."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).is_file() for marker in _MARKERS):
            return folder
    return here


def resolve_url(url: str | None = None, settings: Settings | None = None) -> str:
    """Return the database URL to use: the argument, else DATABASE_URL, else the running local database."""
    if url:
        return url
    settings = settings or load_settings()
    if settings.database_url:
        return settings.database_url
    from pydb.local import LocalServer

    server = LocalServer(settings.state)
    if server.is_running():
        return server.url()
    raise ConfigError("no database: set DATABASE_URL, or start the local one with `pydb dev up`")


def process_environ() -> dict[str, str]:
    """Return a copy of this process's environment, to hand on to a child process."""
    return dict(os.environ)


def load_settings(root: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings: environment variables over `[tool.pydb]` of the project's pyproject.toml."""
    base = project_root(root)
    env = os.environ if environ is None else environ
    table = _tool_table(base / "pyproject.toml")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw: object = None
        source = setting.env
        if setting.env in env and (env[setting.env] != "" or setting.kind == "bool"):
            raw = env[setting.env]
            if setting.env in _NEGATED:
                raw = str(_as_bool(raw, source)).lower() == "false"
        elif setting.key is not None and setting.key in table:
            raw, source = table[setting.key], f"[tool.pydb] {setting.key}"
        if raw is None:
            continue
        values.update(_convert(setting, raw, source, base))
    return Settings(root=base, **values)


def _convert(setting: Setting, raw: object, source: str, base: Path) -> dict[str, Any]:
    if setting.kind == "bool":
        return {setting.name: _as_bool(raw, source)}
    if setting.kind == "int":
        return {setting.name: _as_positive_int(raw, source)}
    if not isinstance(raw, str):
        raise ConfigError(f"{source} must be a string, not {raw!r}")
    if setting.kind == "path":
        return {setting.name: base / Path(raw).expanduser()}
    if setting.kind == "off-or-path":
        if raw.strip() == "0":
            return {f"{setting.name}_off": True}
        return {setting.name: base / Path(raw).expanduser()}
    return {setting.name: raw}


def _as_positive_int(raw: object, source: str) -> int:
    try:
        number = int(str(raw).strip()) if not isinstance(raw, bool) else 0
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{source} must be a whole number of at least 1, not {raw!r}")
    return number


def _as_bool(raw: object, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{source} must be true or false (1/0), not {raw!r}")


def _tool_table(path: Path) -> dict[str, Any]:
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _read_tool_table(path, stamp)


@functools.lru_cache(maxsize=8)
def _read_tool_table(path: Path, stamp: int) -> dict[str, Any]:
    import tomllib

    try:
        text = path.read_text()
        if "pydb" not in text:
            return {}  # no [tool.pydb]: no need to parse the file
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read [tool.pydb]: {err}") from err
    table = data.get("tool", {}).get("pydb", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.pydb] must be a table")
    known = {s.key for s in SETTINGS if s.key}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown [tool.pydb] key {unknown[0]!r}; keys: {', '.join(sorted(known))}")
    return dict(table)
