"""Read a seed file: YAML with line/column positions, `!ref NAME` and `!env NAME[:-DEFAULT]`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pydb.config import process_environ
from pydb.errors import SeedProblem

__all__ = ["ENV_TAG", "REF_TAG", "SeedDocument", "SeedRow", "SeedTable", "parse_seed", "position"]

REF_TAG = "!ref"
ENV_TAG = "!env"
ENV_VALUE_TAG = "tag:pydb,2025:env-value"  # a resolved !env: text, never null
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_KEY = "<<"
_ENV_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader without YAML 1.1's implicit typing: a column's type decides what a scalar means
    (so `01234` stays text in a varchar column and `yes` is not a boolean)."""

    yaml_implicit_resolvers: dict[str, list[object]] = {}  # noqa: RUF012

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        """The default tag of an untagged node (called once per node, so kept trivial)."""
        if kind is ScalarNode:
            return _STR_TAG
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


@dataclass(slots=True)
class SeedRow:
    """One row of a seed file: its cells (column -> (key node, value node)) and its `_id`."""

    table: str
    line: int
    column: int
    name: str | None = None
    name_line: int = 0
    name_column: int = 0
    cells: dict[str, tuple[Node, Node]] = field(default_factory=dict)


@dataclass(slots=True)
class SeedTable:
    """One top-level key of a seed file: a table name and its rows."""

    name: str
    line: int
    column: int
    rows: list[SeedRow] = field(default_factory=list)


@dataclass(slots=True)
class SeedDocument:
    """A parsed seed file: its tables in file order."""

    path: str
    tables: list[SeedTable] = field(default_factory=list)


def position(node: Node) -> tuple[int, int]:
    """Return the 1-based (line, column) where a YAML node starts."""
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def parse_seed(
    text: str, path: str | Path = "seed.yaml", *, environ: Mapping[str, str] | None = None,
) -> tuple[SeedDocument, list[SeedProblem]]:
    """Parse seed YAML into tables and rows, resolving `!env`; return the document and its problems."""
    shown = str(path)
    env = process_environ() if environ is None else environ
    problems: list[SeedProblem] = []
    doc = SeedDocument(shown)

    def problem(node: Node | None, message: str, at: tuple[int, int] | None = None) -> None:
        line, col = at or (position(node) if node is not None else (1, 1))
        problems.append(SeedProblem(shown, line, col, message))

    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            what = f"{err.context}: {err.problem}"
        problem(None, f"YAML syntax error: {what}", (line, col))
        return doc, problems
    except yaml.YAMLError as err:
        problem(None, f"YAML syntax error: {err}")
        return doc, problems

    if root is None:
        return doc, problems
    if not isinstance(root, MappingNode):
        problem(root, "a seed file is a mapping of table names to lists of rows")
        return doc, problems

    seen_tables: dict[str, SeedTable] = {}
    for key, value in root.value:
        if not isinstance(key, ScalarNode) or not key.value:
            problem(key, "a table name must be a plain string")
            continue
        line, col = position(key)
        if key.value in seen_tables:
            first = seen_tables[key.value]
            problem(key, f"table {key.value!r} appears twice (first at {shown}:{first.line}:{first.column}); "
                         f"put all its rows under one key")
            continue
        table = SeedTable(key.value, line, col)
        seen_tables[key.value] = table
        doc.tables.append(table)
        if isinstance(value, ScalarNode) and value.tag != REF_TAG and value.value in ("", "~", "null") \
                and not value.style:
            continue  # `table:` with no rows
        if not isinstance(value, SequenceNode):
            problem(value, f"{key.value}: expected a list of rows (`- column: value`)")
            continue
        for item in value.value:
            row = _row(key.value, item, env, problem)
            if row is not None:
                table.rows.append(row)
    return doc, problems


def _row(table: str, node: Node, env: Mapping[str, str], problem: _Problem) -> SeedRow | None:
    if not isinstance(node, MappingNode):
        problem(node, f"{table}: a row is a mapping of column names to values")
        return None
    line, col = position(node)
    row = SeedRow(table, line, col)
    for key, value in _merged(node, problem):
        if not isinstance(key, ScalarNode) or key.tag not in (_STR_TAG,) or not key.value:
            problem(key, f"{table}: a column name must be a plain string")
            continue
        name = key.value
        if name in row.cells or (name == "_id" and row.name is not None):
            first = row.cells[name][0] if name in row.cells else None
            where = f" (first at line {position(first)[0]})" if first is not None else ""
            problem(key, f"{table}.{name}: column given twice in one row{where}")
            continue
        if name == "_id":
            if not isinstance(value, ScalarNode) or value.tag not in (_STR_TAG,) or not value.value \
                    or not _NAME_RE.match(value.value):
                problem(value, f"{table}: _id must be a name of letters, digits, '_', '-' or '.'")
                continue
            row.name = value.value
            row.name_line, row.name_column = position(value)
            continue
        if value.tag == ENV_TAG:
            resolved = _env(table, name, value, env, problem)
            if resolved is None:
                continue
            value = resolved
        elif value.tag == REF_TAG and (not isinstance(value, ScalarNode) or not value.value):
            problem(value, f"{table}.{name}: !ref takes the _id of a row, e.g. `!ref admin`")
            continue
        row.cells[name] = (key, value)
    return row


def _merged(node: MappingNode, problem: _Problem) -> list[tuple[Node, Node]]:
    """The pairs of a mapping with YAML merge keys (`<<: *defaults`) applied; explicit keys win."""
    if not any(isinstance(k, ScalarNode) and k.value == _MERGE_KEY and not k.style for k, _ in node.value):
        return list(node.value)
    explicit: list[tuple[Node, Node]] = []
    inherited: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == _MERGE_KEY and not key.style:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if isinstance(source, MappingNode):
                    inherited.extend(_merged(source, problem))
                else:
                    problem(source, "a merge key (<<) takes a mapping or a list of mappings")
        else:
            explicit.append((key, value))
    names = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
    taken: set[str] = set()
    merged = list(explicit)
    for key, value in inherited:
        name = key.value if isinstance(key, ScalarNode) else None
        if name in names or name in taken:
            continue
        if isinstance(name, str):
            taken.add(name)
        merged.append((key, value))
    return merged


def _env(table: str, column: str, node: Node, env: Mapping[str, str], problem: _Problem) -> ScalarNode | None:
    if not isinstance(node, ScalarNode) or not (match := _ENV_RE.match(node.value.strip())):
        problem(node, f"{table}.{column}: !env takes a variable name, e.g. `!env SEED_ADMIN_HASH` "
                      f"or `!env SEED_ADMIN_HASH:-default`")
        return None
    var, default = match.group(1), match.group(2)
    value = env.get(var)
    if not value and default is not None:
        value = default
    if value is None:
        problem(node, f"{table}.{column}: environment variable {var} is not set "
                      f"(set it, or give a default: `!env {var}:-VALUE`)")
        return None
    return ScalarNode(ENV_VALUE_TAG, value, node.start_mark, node.end_mark, style="")


class _Problem(Protocol):
    def __call__(self, node: Node | None, message: str, at: tuple[int, int] | None = None) -> None: ...
