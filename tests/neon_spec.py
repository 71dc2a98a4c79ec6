"""Neon's OpenAPI spec (API v2), obtained from a pinned npm package and cached, and a counter of what it validated.

The spec is not part of this repository (its licence is not an open one). `spec_path()` takes it
from the npm package @neondatabase/api-client, which ships it as public-v2-for-users.gen.yaml:
`npm pack` fetches the pinned version once, its sha256 is checked, and the YAML file is kept in
~/.cache/pydb/neon-openapi/VERSION/ (or $PYDB_CACHE_DIR), shared by every clone, like the Atlas
build. Without npm or the network, and with nothing in the cache, `SpecUnavailable` says why in
one line; the tests that need the spec then fail with that line.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tests.helpers import cache_dir, made_once

if TYPE_CHECKING:
    from openapi_core import OpenAPI

NPM_PACKAGE = "@neondatabase/api-client"
NPM_VERSION = "2.7.3"
TARBALL_SHA256 = "28368170b48c30a77b1413782f8dcfee02535f4088fdd084bb259bf994568558"
SPEC_MEMBER = "package/public-v2-for-users.gen.yaml"
SPEC_SHA256 = "dacf72ea2d63110b3694c705313e0b2104e9652ae1be3fc01ceebe7b17059c44"
# Where the double's requests are said to go: the spec's only server.
SPEC_SERVER = "https://console.neon.tech"


class SpecUnavailable(Exception):
    """Neon's spec is not cached and cannot be fetched; the message is one line."""


def spec_path() -> Path:
    """Return the cached copy of Neon's OpenAPI spec, fetching the pinned npm package first if needed."""
    target = cache_dir("neon-openapi", NPM_VERSION) / Path(SPEC_MEMBER).name
    made_once(target, _fetch)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SPEC_SHA256:
        raise SpecUnavailable(f"{target} has sha256 {digest}, not {SPEC_SHA256}: delete it to fetch it again")
    return target


def _fetch(target: Path) -> None:
    npm = shutil.which("npm")
    where = f"Neon's OpenAPI spec is not cached in {target.parent}"
    if npm is None:
        raise SpecUnavailable(
            f"{where}, and npm is not installed to fetch {NPM_PACKAGE}@{NPM_VERSION} (Debian: apt-get install npm)"
        )
    with tempfile.TemporaryDirectory(prefix="pydb-neon-spec-") as tmp:
        env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
                   npm_config_audit="false")
        try:
            packed = subprocess.run(
                [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--json", "--ignore-scripts",
                 "--pack-destination", tmp],
                cwd=tmp, env=env, capture_output=True, text=True, timeout=300, check=False,
            )
        except subprocess.TimeoutExpired:
            raise SpecUnavailable(f"{where}, and `npm pack {NPM_PACKAGE}@{NPM_VERSION}` took over 300 s") from None
        if packed.returncode != 0:
            lines = [line for line in packed.stderr.splitlines() if line.strip()]
            reason = next((line for line in lines if "code" in line or "ERR" in line), lines[0] if lines else "")
            raise SpecUnavailable(
                f"{where}, and `npm pack {NPM_PACKAGE}@{NPM_VERSION}` failed (exit {packed.returncode}): "
                f"{reason.strip() or 'no message'}"
            )
        tarball = Path(tmp) / json.loads(packed.stdout)[0]["filename"]
        data = tarball.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != TARBALL_SHA256:
            raise SpecUnavailable(
                f"{NPM_PACKAGE}@{NPM_VERSION} from npm has sha256 {digest}, not the pinned {TARBALL_SHA256}"
            )
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            member = archive.extractfile(SPEC_MEMBER)
            if member is None:
                raise SpecUnavailable(f"{NPM_PACKAGE}@{NPM_VERSION} has no {SPEC_MEMBER}")
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(member.read())
            partial.replace(target)


@functools.cache
def openapi() -> OpenAPI:
    """Return Neon's spec loaded by openapi-core (once per process)."""
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(spec_path()))


class PairCounter:
    """How many request/response pairs this process validated against the spec (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        """Count one validated pair."""
        with self._lock:
            self.count += 1


VALIDATED = PairCounter()
