"""`pydb generate`: the typed module of schema.hcl (pydb/schema.py), written or checked.

The module gives `from pydb import db, users, ...` static types: a TypedDict per table for rows,
inserts and updates, typed columns, and typed `db.query.<table>` methods (pydb.types.render).
It is made from schema.hcl as Atlas applies it (pydb.types.source), so it is checked in CI like
the migrations are: `pydb generate --check` fails with a diff when it no longer matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydb.errors import TypesError

if TYPE_CHECKING:
    from pydb.atlas import Atlas
    from pydb.config import Settings

__all__ = ["GENERATED_MODULE", "Generated", "generate", "generated_columns", "module_path"]

GENERATED_MODULE = "pydb.schema"


@dataclass(frozen=True)
class Generated:
    """What `pydb generate` did: the module's path, whether it changed, and what changed in it."""

    path: Path
    written: bool
    tables: int
    changes: list[str] = field(default_factory=list)

    def summary(self, root: Path) -> str:
        """One line for people: what was written, or that nothing had to be."""
        shown = _shown(self.path, root)
        if not self.written:
            return f"{shown} is up to date with schema.hcl ({self.tables} tables)"
        return f"wrote {shown}: {self.tables} tables" + (f" ({'; '.join(self.changes)})" if self.changes else "")


def module_path(settings: Settings) -> Path:
    """Where the typed module lives in the project: pydb/schema.py."""
    return settings.root / "pydb" / "schema.py"


def generate(
    settings: Settings, *, output: Path | None = None, check: bool = False, dev_url: str | None = None,
    atlas: Atlas | None = None,
) -> Generated:
    """Write the typed module of the project's schema.hcl (or, with check, raise TypesError when it is stale).

    `dev_url` is the database Atlas normalises on and the scratch copy is made from (default: the
    local server's dev database, started if needed); `atlas` runs Atlas (default: for the project).
    """
    from pydb import _MODULES
    from pydb.atlas import Atlas, atlas_environ
    from pydb.types.render import column_types, render_module
    from pydb.types.source import schema_tables

    path = output or module_path(settings)
    if dev_url is None:
        from pydb.local import DEV_DATABASE, LocalServer

        server = LocalServer(settings.state)
        dev_url = server.url(DEV_DATABASE) if server.is_running() else server.up().dev_url
    # Atlas gets its URLs as flags (the scratch copy): the environment of no env, without the local server's.
    atlas = atlas or Atlas(cwd=settings.root, environ=atlas_environ(None, settings), settings=settings)
    tables = schema_tables(dev_url, atlas)
    text = render_module(tables, _MODULES)
    try:
        old = path.read_text()
    except FileNotFoundError:
        old = ""
    if old == text:
        if not check:
            _record_source(settings)
        return Generated(path, False, len(tables))
    changes = _changes(_columns_in(old), column_types(tables)) if old else ["new"]
    if check:
        shown = _shown(path, settings.root)
        import difflib

        diff = "".join(difflib.unified_diff(
            old.splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=f"{shown} (as it is)", tofile=f"{shown} (from schema.hcl)",
        ))
        raise TypesError(f"{shown} is out of date with schema.hcl ({'; '.join(changes)}); run `pydb generate`",
                         detail=diff)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)  # whole or not at all: an import never sees half a module
    _record_source(settings)
    return Generated(path, True, len(tables), changes)


SOURCE_FILES = ("schema.hcl", "atlas.hcl")


def source_record(settings: Settings) -> Path:
    """Where the hash of the files the typed module was generated from is kept (local state)."""
    return settings.state / "generated-from"


def _record_source(settings: Settings) -> None:
    """Keep the hash of schema.hcl and atlas.hcl, as `cat schema.hcl atlas.hcl | sha256sum` prints it.

    .venv/bin/atlas compares it with the files as they are: a push of an unchanged schema.hcl then needs
    no `pydb generate`, and runs Atlas straight away.
    """
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        with contextlib.suppress(FileNotFoundError):
            digest.update((settings.root / name).read_bytes())
    record = source_record(settings)
    with contextlib.suppress(OSError):
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(f"{digest.hexdigest()}  -\n")


class Promises:
    """The column types the project's typed module promises, read (by importing it) only when they are checked.

    `digest` names the module's text cheaply, so a check already passed against the same catalog is
    not made again on the next start (pydb.database keeps a mark per module, database and catalog).
    """

    def __init__(self, columns: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._columns = columns

    @property
    def digest(self) -> str | None:
        """A hash of the promises: of the given columns, else of the typed module's file (None without one)."""
        if self._columns is not None:
            return hashlib.sha256(repr(sorted((t, sorted(c.items())) for t, c in self._columns.items()))
                                  .encode()).hexdigest()[:24]
        import importlib.util

        spec = importlib.util.find_spec(GENERATED_MODULE)
        if spec is None or spec.origin is None:
            return None
        try:
            return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:24]
        except OSError:
            return None

    def columns(self) -> Mapping[str, Mapping[str, str]] | None:
        """The promised columns (table -> column -> Python type), or None when there is no typed module."""
        return self._columns if self._columns is not None else generated_columns()


def generated_columns() -> Mapping[str, Mapping[str, str]] | None:
    """The column types the project's typed module promises (its COLUMNS), or None when there is no module."""
    import importlib

    try:
        module = importlib.import_module(GENERATED_MODULE)
    except ModuleNotFoundError as err:
        if err.name != GENERATED_MODULE:
            raise
        return None
    columns: Mapping[str, Mapping[str, str]] | None = getattr(module, "COLUMNS", None)
    return columns


def _columns_in(source: str) -> dict[str, dict[str, str]]:
    """The COLUMNS literal of a generated module's source ({} when it has none or is not Python)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "COLUMNS":
            try:
                value = ast.literal_eval(node.value) if node.value is not None else {}
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def _changes(old: Mapping[str, Mapping[str, str]], new: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Column-level differences between two COLUMNS maps, for people: `users.nickname added (str | None)`."""
    changes = []
    for table in sorted(set(old) | set(new)):
        if table not in new:
            changes.append(f"table {table} removed")
        elif table not in old:
            changes.append(f"table {table} added")
        else:
            before, after = old[table], new[table]
            for column in [*before, *(c for c in after if c not in before)]:
                if column not in after:
                    changes.append(f"{table}.{column} removed")
                elif column not in before:
                    changes.append(f"{table}.{column} added ({after[column]})")
                elif before[column] != after[column]:
                    changes.append(f"{table}.{column}: {before[column]} -> {after[column]}")
    return changes or ["no column changed; the rest of the module did"]


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
