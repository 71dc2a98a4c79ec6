"""Neon's OpenAPI spec for the double: pinned, checked, cached; when it cannot be had, the tests that need it fail.

The spec comes from the npm package @neondatabase/api-client (tests/neon_spec.py). These tests use
a cache folder of their own, so the shared cache is never touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.neon_spec import NPM_VERSION, SPEC_SHA256, SpecUnavailable, spec_path

NPM_MISSING = f"npm is not installed to fetch @neondatabase/api-client@{NPM_VERSION} (Debian: apt-get install npm)"


def test_the_cached_spec_is_the_pinned_one(neon_openapi: object) -> None:
    path = spec_path()
    assert path.parts[-3:] == ("neon-openapi", NPM_VERSION, "public-v2-for-users.gen.yaml")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SPEC_SHA256
    assert not (REPO / path.name).exists() and not list(REPO.glob("**/public-v2-for-users*.yaml"))


def test_without_npm_and_with_an_empty_cache_the_reason_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    with pytest.raises(SpecUnavailable) as caught:
        spec_path()
    assert str(caught.value) == (
        f"Neon's OpenAPI spec is not cached in {tmp_path / 'cache' / 'neon-openapi' / NPM_VERSION}, and {NPM_MISSING}"
    )


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_an_unreachable_registry_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(SpecUnavailable) as caught:
        spec_path()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Neon's OpenAPI spec is not cached in ")
    assert "`npm pack @neondatabase/api-client@" in message and "failed (exit " in message


def test_a_spec_changed_in_the_cache_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "cache" / "neon-openapi" / NPM_VERSION / "public-v2-for-users.gen.yaml"
    cached.parent.mkdir(parents=True)
    cached.write_text("openapi: 3.0.3\n")
    monkeypatch.setenv("PYDB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SpecUnavailable, match=r"has sha256 [0-9a-f]{64}, not [0-9a-f]{64}: delete it"):
        spec_path()


def test_a_test_on_the_double_fails_when_the_spec_cannot_be_had(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {"PYDB_CACHE_DIR": str(tmp_path / "cache"), "npm_config_registry": "http://127.0.0.1:9/",
            "npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_fetch_retries": "0"}
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "--no-header",
         "tests/test_branches_neon.py::test_create_refuses_an_existing_name_and_a_bad_name"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "passed" not in result.stdout
    reasons = [line for line in result.stdout.splitlines() if line.startswith("Neon's OpenAPI spec is not cached")]
    assert reasons and "`npm pack @neondatabase/api-client@" in reasons[0], result.stdout
