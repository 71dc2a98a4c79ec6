"""A cache of seed loads, so an unchanged file on an unchanged schema is not parsed and checked again.

What is kept is what the load sent: the COPY text of each group of rows (refs already resolved to
keys), with the plan's shape (tables in foreign-key order, each group's columns, match and row
count) beside it. A re-run sends that text again through the same staging tables and upserts, with
no Python work per row.

An entry depends only on the seed file's bytes, the data files it names, the environment variables
its `!env` tags read, the schema it was checked against and pydb's seed code. It is found by the
first, and used only when all the others still match; anything else is a miss, and a miss only
costs the normal path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.copy import LibpqWriter

from pydb.config import process_environ
from pydb.seed.plan import RowGroup, TablePlan

log = logging.getLogger("pydb")
_FORMAT = 3
_READ = 1 << 20

__all__ = ["CachedLoad", "CopyRecorder", "PlanCache", "RecordingEnviron"]


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


def _file_digest(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


_Group = tuple[tuple[str, ...], str, tuple[str, ...], int, list[tuple[int, int]]]
_Table = tuple[str, str, int, int, dict[str, Any], list[_Group]]


class _Tee(LibpqWriter):
    """psycopg's COPY writer, also appending what it sends to a file."""

    def __init__(self, cursor: psycopg.Cursor[Any], out: IO[bytes], segments: list[tuple[int, int]]) -> None:
        super().__init__(cursor)
        self._out = out
        self._start = out.tell()
        self._segments = segments

    def write(self, data: Any) -> None:
        """Send data to the server, and keep it."""
        super().write(data)
        self._out.write(data)

    def finish(self, exc: BaseException | None = None) -> None:
        """End the COPY; a finished one is a segment of its group's text."""
        super().finish(exc)
        if exc is None:
            self._segments.append((self._start, self._out.tell() - self._start))


class CopyRecorder:
    """Keeps the COPY text of every group a load writes, for the next run of the same file."""

    def __init__(self, out: IO[bytes] | None, tmp: Path | None) -> None:
        self._out = out
        self._tmp = tmp
        self.segments: dict[int, list[tuple[int, int]]] = {}
        self.usable = out is not None

    def writer(self, cursor: psycopg.Cursor[Any], group: RowGroup) -> psycopg.copy.Writer | None:
        """The writer of a COPY of a group's rows (None: psycopg's own, nothing kept)."""
        if not self.usable or self._out is None:
            return None
        return _Tee(cursor, self._out, self.segments.setdefault(id(group), []))

    def feed(self, copy: psycopg.Copy, segments: list[tuple[int, int]]) -> None:
        """Not a replay: a recorder has nothing to send."""
        raise AssertionError("a recorder does not replay COPY text")

    def remapped(self) -> None:
        """A row was found under another key than the file's: its text would be stale next time."""
        self.usable = False

    def keep(self, path: Path) -> bool:
        """Move what was kept to path; False when there is nothing to keep."""
        if not self.usable or self._out is None or self._tmp is None:
            return False
        self._out.close()
        self._out = None
        self._tmp.replace(path)
        self._tmp = None
        return True

    def discard(self) -> None:
        """Forget what was kept."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()


@dataclass(slots=True)
class CachedLoad:
    """A cached load: its tables in foreign-key order, each group's rows as COPY text in `data`."""

    tables: list[TablePlan]
    data: Path

    def open(self) -> _Replay:
        """The source of the cached COPY text, for the writer."""
        return _Replay(open(self.data, "rb"))


class _Replay:
    """Sends cached COPY text."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def writer(self, cursor: psycopg.Cursor[Any], group: RowGroup) -> psycopg.copy.Writer | None:
        """psycopg's own writer."""
        return None

    def feed(self, copy: psycopg.Copy, segments: list[tuple[int, int]]) -> None:
        """Send a group's COPY text."""
        for start, length in segments:
            self._handle.seek(start)
            while length > 0:
                chunk = self._handle.read(min(length, _READ))
                if not chunk:
                    raise OSError("the cached COPY text is shorter than its index")
                copy.write(chunk)
                length -= len(chunk)

    def remapped(self) -> None:
        """Nothing is kept on a replay."""

    def close(self) -> None:
        """Close the data file."""
        self._handle.close()


class PlanCache:
    """Cached seed loads kept in a folder (None: no cache; every lookup is a miss)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _entry(self, folder: Path, digest: str, shown: str) -> Path:
        key = hashlib.sha256(f"{_FORMAT}:{shown}:{digest}".encode()).hexdigest()[:32]
        return folder / f"seed-{key}.pickle"

    def has(self, digest: str, shown: str) -> bool:
        """Tell whether a load of this exact file is cached (for some schema, data files and environment)."""
        return self.folder is not None and self._entry(self.folder, digest, shown).is_file()

    def load(self, digest: str, shown: str, fingerprint: str) -> CachedLoad | None:
        """The cached load of this file for this schema, these data files and `!env` values, or None."""
        if self.folder is None:
            return None
        entry = self._entry(self.folder, digest, shown)
        try:
            with open(entry, "rb") as handle:
                version, schema, env, files, data, cached = pickle.load(handle)
        except FileNotFoundError:
            return None
        except Exception as err:  # a damaged or foreign entry is a miss
            log.debug("ignoring seed cache entry: %s", err)
            return None
        if version != _code_version() or schema != fingerprint:
            return None
        current = process_environ()
        if any(current.get(name) != value for name, value in env.items()):
            return None
        if any(_file_digest(path) != sha for path, sha in files.items()):
            return None
        plans: list[TablePlan] = []
        for name, path, line, column, facts, groups in cached:
            plan = TablePlan(name, path, line, column, None, **facts)
            plan.groups = [RowGroup(columns, match, key, count, None, segments)
                           for columns, match, key, count, segments in groups]
            plans.append(plan)
        return CachedLoad(plans, self.folder / data)

    def recorder(self) -> CopyRecorder:
        """Where a load keeps its COPY text (nothing kept when there is no cache)."""
        if self.folder is None:
            return CopyRecorder(None, None)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f"seed-{os.getpid()}-{id(self)}.copy.tmp"
            return CopyRecorder(open(tmp, "wb"), tmp)
        except OSError as err:
            log.debug("cannot write the seed cache: %s", err)
            return CopyRecorder(None, None)

    def store(self, recorder: CopyRecorder, digest: str, shown: str, fingerprint: str,
              env: Mapping[str, str | None], files: Mapping[str, str], tables: list[TablePlan]) -> None:
        """Keep a load for the next run of the same file (best effort)."""
        if self.folder is None or not recorder.usable:
            recorder.discard()
            return
        cached: list[_Table] = []
        for plan in tables:
            groups: list[_Group] = []
            for group in plan.groups:
                segments = recorder.segments.get(id(group), [])
                if group.count and not segments:
                    recorder.discard()
                    return
                groups.append((_names(group.columns), group.match, _names(group.key), group.count, segments))
            cached.append((plan.name, plan.path, plan.line, plan.column, _facts(plan), groups))
        entry = self._entry(self.folder, digest, shown)
        # Each load's COPY text has a name of its own: the entry (replaced last, at once) names the one it indexes.
        data = f"{entry.stem}-{os.getpid()}-{id(recorder):x}.copy"
        try:
            if not recorder.keep(self.folder / data):
                return
            tmp = entry.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                pickle.dump((_code_version(), fingerprint, dict(env), dict(files), data, cached), handle,
                            protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(entry)
        except (OSError, pickle.PicklingError) as err:
            log.debug("cannot write seed cache %s: %s", entry, err)
            recorder.discard()
            return
        for old in self.folder.glob(f"{entry.stem}-*.copy"):
            if old.name != data:
                with contextlib.suppress(OSError):
                    old.unlink()


def _facts(plan: TablePlan) -> dict[str, Any]:
    """What writing a table's rows needs to know of it, kept with its cached rows (the schema is keyed too)."""
    return {"uuid_pk": None if plan.uuid_pk is None else str(plan.uuid_pk), "pk": _names(plan.pk),
            "has_updated_at": plan.has_updated_at, "self_ref_columns": _names(plan.self_ref_columns),
            "partitioned": plan.partitioned, "sequence_columns": _names(plan.sequence_columns),
            "domain_columns": {str(k): _names(v) for k, v in plan.domain_columns.items()}}


def _names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Plain strings: column names read by SQLAlchemy are its own str subclass, which would need it to unpickle."""
    return tuple(str(name) for name in names)
