"""Settings: environment over [tool.pydb] over defaults; no module reads the environment but pydb/config.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pydb.config import SETTINGS, load_settings
from pydb.errors import ConfigError
from tests.helpers import REPO


def _project(tmp_path: Path, tool: str = "") -> Path:
    (tmp_path / "schema.hcl").write_text("")
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'app'\n\n[tool.pydb]\n{tool}")
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(_project(tmp_path), environ={})
    assert settings.root == tmp_path
    assert settings.state == tmp_path / ".pydb"
    assert settings.cache_folder == tmp_path / ".pydb" / "cache"
    assert (settings.env, settings.debug, settings.progress, settings.seed_cache) == ("development", False, True, True)
    assert settings.database_url is None and not settings.neon and not settings.production


def test_pyproject_then_environment(tmp_path: Path) -> None:
    root = _project(tmp_path, 'env = "production"\nstate_dir = "var/db"\nseed_cache = false\nneon_role = "app"\n')
    from_file = load_settings(root, environ={})
    assert (from_file.env, from_file.state, from_file.seed_cache, from_file.neon_role) == (
        "production", tmp_path / "var" / "db", False, "app")
    env = {"PYDB_ENV": "development", "PYDB_STATE_DIR": "/srv/pydb", "PYDB_SEED_CACHE": "1", "NEON_ROLE": "ops"}
    overridden = load_settings(root, environ=env)
    assert (overridden.env, overridden.state, overridden.seed_cache, overridden.neon_role) == (
        "development", Path("/srv/pydb"), True, "ops")


def test_switches_written_as_the_environment_says_them(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert not load_settings(root, environ={"PYDB_NO_PROGRESS": "1"}).progress
    assert load_settings(root, environ={"PYDB_NO_PROGRESS": ""}).progress
    assert load_settings(root, environ={"PYDB_REFLECT_CACHE": "0"}).cache_folder is None
    assert load_settings(root, environ={"PYDB_DEBUG": "yes"}).debug
    with pytest.raises(ConfigError, match="PYDB_DEBUG must be true or false"):
        load_settings(root, environ={"PYDB_DEBUG": "maybe"})


def test_secrets_stay_out_of_pyproject_and_out_of_repr(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown \[tool.pydb\] key 'neon_api_key'"):
        load_settings(_project(tmp_path, 'neon_api_key = "napi_placeholder"\n'), environ={})
    settings = load_settings(_project(tmp_path), environ={
        "NEON_API_KEY": "napi_placeholder", "DATABASE_URL": "postgresql://u:placeholder@h/db"})
    assert "placeholder" not in repr(settings)


def test_a_bad_pyproject_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "schema.hcl").write_text("")
    (tmp_path / "pyproject.toml").write_text("[tool.pydb\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: cannot read \[tool.pydb\]"):
        load_settings(tmp_path, environ={})


def test_no_module_reads_the_environment_but_config() -> None:
    readers = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "pydb").rglob("*.py")) if path.name != "config.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bos\.environ\b|\bgetenv\(", line)
    ]
    assert readers == []


def test_every_environment_variable_pydb_reads_is_a_setting() -> None:
    known = {s.env for s in SETTINGS}
    # Variables pydb sets for atlas.hcl, and Atlas's own switches, are not settings.
    written = {"PYDB_LOCAL_URL", "PYDB_LOCAL_DEV_URL", "PYDB_DEV_URL", "PYDB_TARGET_URL"}
    mentioned = {
        name for path in (REPO / "pydb").rglob("*.py")
        for name in re.findall(r"\b((?:PYDB|NEON)_[A-Z_]+|DATABASE_URL|ATLAS_DEV_URL)\b", path.read_text())
    }
    assert mentioned - written - known == set()


def test_every_setting_is_in_the_table_of_docs_configuration_md() -> None:
    rows = [line for line in (REPO / "docs" / "configuration.md").read_text().splitlines()
            if line.startswith("| `") and line.count("|") == 6]  # the settings table's rows
    documented = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        name, env, key = (re.match(r"`([^`]+)`", cell) for cell in cells[:3])
        assert name is not None and env is not None, row
        documented[name.group(1)] = (env.group(1), key.group(1) if key else None)
    assert documented == {s.name: (s.env, s.key) for s in SETTINGS}
