"""A cache of validated seed plans, so an unchanged file is not parsed and checked again.

A plan depends only on the file's bytes, the environment variables its `!env` tags read, the
schema it was checked against and pydb's seed code. The entry is found by the first two and
used only when the live schema's catalog fingerprint and the code still match; anything else
is a miss, and a miss only costs the normal path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydb.config import process_environ
from pydb.seed.plan import SeedPlan

log = logging.getLogger("pydb")
_FORMAT = 1


class RecordingEnviron(Mapping[str, str]):
    """An environment mapping, remembering which names were read (and what they held)."""

    def __init__(self, base: Mapping[str, str]) -> None:
        self._base = base
        self.read: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str:
        self.read[key] = self._base.get(key)
        return self._base[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Return the variable's value (recording the read), or default."""
        self.read[key] = self._base.get(key)
        return self._base.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read[key] = self._base.get(key)
        return key in self._base

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def _code_version() -> str:
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


class PlanCache:
    """Checked seed plans kept in a folder (None: no cache; every lookup is a miss)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _entry(self, folder: Path, data: bytes, shown: str) -> Path:
        key = hashlib.sha256(f"{_FORMAT}:{shown}:".encode() + data).hexdigest()[:32]
        return folder / f"seed-{key}.pickle"

    def has_plan(self, data: bytes, shown: str) -> bool:
        """Tell whether a plan of this exact file is cached (for some schema and environment)."""
        return self.folder is not None and self._entry(self.folder, data, shown).exists()

    def load_plan(self, data: bytes, shown: str, fingerprint: str) -> SeedPlan | None:
        """Return the cached plan of this file for this schema and these `!env` values, or None."""
        if self.folder is None:
            return None
        try:
            with open(self._entry(self.folder, data, shown), "rb") as handle:
                version, schema, env, plan = pickle.load(handle)
        except FileNotFoundError:
            return None
        except Exception as err:  # a damaged or foreign entry is a miss
            log.debug("ignoring seed plan cache entry: %s", err)
            return None
        if version != _code_version() or schema != fingerprint or not isinstance(plan, SeedPlan):
            return None
        current = process_environ()
        if any(current.get(name) != value for name, value in env.items()):
            return None
        return plan

    def store_plan(self, data: bytes, shown: str, fingerprint: str, env: Mapping[str, str | None],
                   plan: SeedPlan) -> None:
        """Keep a validated plan for the next run of the same file (best effort)."""
        if self.folder is None:
            return
        path = self._entry(self.folder, data, shown)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                pickle.dump((_code_version(), fingerprint, dict(env), plan), handle,
                            protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except (OSError, pickle.PicklingError) as err:
            log.debug("cannot write seed plan cache %s: %s", path, err)
