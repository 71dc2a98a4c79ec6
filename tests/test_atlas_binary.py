"""Finding the Atlas binary, and what the user is told when it is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pydb.atlas import find_atlas, first_error
from pydb.errors import AtlasError


def test_the_built_binary_is_found_and_is_atlas() -> None:
    binary = find_atlas()
    assert binary == Path(sys.prefix) / "libexec" / "pydb" / "atlas"
    assert b"ariga.io/atlas" in binary.read_bytes()[:50_000_000]


def test_pydb_atlas_must_be_an_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYDB_ATLAS", str(tmp_path / "nope"))
    with pytest.raises(AtlasError, match=r"PYDB_ATLAS=.*/nope is not an executable file"):
        find_atlas()


def test_no_binary_anywhere_says_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYDB_ATLAS", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    launcher = tmp_path / "bin" / "atlas"
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\n# from pydb.atlas_launcher import main\n")
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", str(launcher.parent))  # only pydb's own launcher: not Atlas
    with pytest.raises(AtlasError, match=r"Atlas is not installed\. Run `make atlas`.*Go is missing too"):
        find_atlas()


def test_first_error_keeps_atlas_own_words() -> None:
    assert first_error("Error: sql/migrate: connected database is not clean\n") == (
        "sql/migrate: connected database is not clean"
    )
    assert first_error("", "last line\n") == "last line"
