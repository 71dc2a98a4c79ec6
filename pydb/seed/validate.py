"""Check a parsed seed file against the reflected schema and turn its scalars into typed values."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import DOMAIN
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pydb.errors import SeedProblem
from pydb.reflect import INSERT_TRIGGER
from pydb.seed.convert import FALSE, FLOAT_RE, INT_RE, TRUE, InvalidValue, column_type, text_converter
from pydb.seed.parse import ENV_VALUE_TAG, REF_TAG, SeedDocument, position

__all__ = ["CheckedRow", "CheckedTable", "Ref", "validate_seed"]

_STR_TAG = "tag:yaml.org,2002:str"
_CORE_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null")}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))


@dataclass(frozen=True, slots=True)
class Ref:
    """A `!ref NAME` value: the primary key of the row whose `_id` is NAME."""

    name: str
    line: int = field(compare=False)
    column: int = field(compare=False)

    def __reduce__(self) -> tuple[type[Ref], tuple[str, int, int]]:
        # Plain constructor arguments pickle faster than the dataclass's slot state (seed plan cache).
        return (Ref, (self.name, self.line, self.column))


@dataclass(slots=True)
class CheckedRow:
    """A row whose columns exist and whose values have the columns' types (refs still unresolved)."""

    table: str
    line: int
    column: int
    name: str | None
    name_line: int
    name_column: int
    values: dict[str, Any]
    # (line, column) of the values the database still checks itself (domain columns), for its refusals
    positions: dict[str, tuple[int, int]] | None = None

    def __reduce__(self) -> tuple[type[CheckedRow], tuple[Any, ...]]:
        return (CheckedRow, (self.table, self.line, self.column, self.name, self.name_line, self.name_column,
                             self.values, self.positions))

    def position_of(self, column: str) -> tuple[int, int]:
        """Where a value of this row is in the file (the row's start when not kept)."""
        return (self.positions or {}).get(column, (self.line, self.column))


@dataclass(slots=True)
class CheckedTable:
    """A table of the seed file with its reflected definition and its checked rows."""

    name: str
    line: int
    column: int
    table: sa.Table
    rows: list[CheckedRow] = field(default_factory=list)


_Converter = Callable[[Node], Any]


def validate_seed(doc: SeedDocument, tables: dict[str, sa.Table]) -> tuple[list[CheckedTable], list[SeedProblem]]:
    """Check every table, column, value and `_id` of a document against the schema; collect all problems."""
    path = doc.path
    problems: list[SeedProblem] = []

    def problem(line: int, col: int, message: str) -> None:
        problems.append(SeedProblem(path, line, col, message))

    checked: list[CheckedTable] = []
    names: dict[str, CheckedRow] = {}
    refs: list[tuple[CheckedRow, str, Ref]] = []
    for seed_table in doc.tables:
        table = tables.get(seed_table.name)
        if table is None:
            problem(seed_table.line, seed_table.column,
                    f"{seed_table.name}: no such table{_suggest(seed_table.name, tables, 'tables')}")
            continue
        out = CheckedTable(seed_table.name, seed_table.line, seed_table.column, table)
        checked.append(out)
        columns = {c.name: c for c in table.columns}
        converters: dict[str, _Converter] = {}
        required = _required_columns(table)
        checked_by_server = {c.name for c in table.columns if isinstance(c.type, DOMAIN)}
        for seed_row in seed_table.rows:
            row = CheckedRow(table.name, seed_row.line, seed_row.column, seed_row.name,
                             seed_row.name_line, seed_row.name_column, {})
            for name, (key, value) in seed_row.cells.items():
                column = columns.get(name)
                if column is None:
                    line, col = position(key)
                    problem(line, col, f"{table.name}.{name}: no such column"
                                       f"{_suggest(name, table.columns.keys(), 'columns')}")
                    continue
                if value.tag == REF_TAG:
                    line, col = position(value)
                    ref = Ref(str(value.value).strip(), line, col)
                    row.values[name] = ref
                    refs.append((row, name, ref))
                    continue
                convert = converters.get(name)
                if convert is None:
                    convert = converters[name] = _converter(column)
                try:
                    row.values[name] = convert(value)
                except InvalidValue as err:
                    line, col = position(value)
                    problem(line, col, f"{table.name}.{name}: {err}")
                    continue
                if name in checked_by_server:
                    if row.positions is None:
                        row.positions = {}
                    row.positions[name] = position(value)
            for name in required:
                if name not in seed_row.cells:
                    problem(row.line, row.column,
                            f"{table.name}: missing required column {name!r} (NOT NULL, no default)")
            if row.name is not None:
                first = names.get(row.name)
                if first is not None:
                    problem(row.name_line, row.name_column,
                            f"duplicate _id {row.name!r} (first at {path}:{first.name_line}:{first.name_column})")
                else:
                    names[row.name] = row
            out.rows.append(row)

    for row, column_name, ref in refs:
        target = names.get(ref.name)
        if target is None:
            problem(ref.line, ref.column,
                    f"{row.table}.{column_name}: !ref {ref.name}: no row has _id {ref.name!r}"
                    f"{_suggest(ref.name, names.keys(), '_id')}")
            continue
        message = _ref_problem(tables, row.table, column_name, target)
        if message:
            problem(ref.line, ref.column, f"{row.table}.{column_name}: !ref {ref.name}: {message}")
    return checked, problems


def _ref_problem(tables: dict[str, sa.Table], table_name: str, column_name: str, target: CheckedRow) -> str | None:
    column = tables[table_name].columns[column_name]
    referred = sorted({fk.column.table.name for fk in column.foreign_keys})
    if referred and target.table not in referred:
        return f"is a row of {target.table}, but the column references {', '.join(referred)}"
    pk = list(tables[target.table].primary_key.columns)
    if len(pk) != 1:
        return f"{target.table} has a composite primary key; a reference needs a single-column key"
    if not isinstance(pk[0].type, sa.Uuid) and pk[0].name not in target.values:
        return (f"{target.table} rows get their key from the database; give row {target.name!r} "
                f"an explicit {pk[0].name}")
    return None


def _required_columns(table: sa.Table) -> list[str]:
    if table.info.get(INSERT_TRIGGER):
        return []  # a BEFORE INSERT trigger may fill any column: leave NOT NULL to the database
    pk = list(table.primary_key.columns)
    derived = pk[0].name if len(pk) == 1 and isinstance(pk[0].type, sa.Uuid) else None
    return [
        c.name for c in table.columns
        if not c.nullable and c.server_default is None and c.identity is None and c.computed is None
        and c.name != derived
    ]


def _suggest(name: str, choices: Any, what: str) -> str:
    options = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f' (did you mean "{close[0]}"?)'
    if options and len(options) <= 12:
        return f" ({what}: {', '.join(options)})"
    return ""


# -- values --------------------------------------------------------------------------------------


def _scalar(node: Node) -> tuple[str | None, bool]:
    """Return (text, plain) of a scalar node; text None means null. Raise InvalidValue for other nodes."""
    if not isinstance(node, ScalarNode):
        raise InvalidValue(f"expected a single value, got a {'list' if isinstance(node, SequenceNode) else 'mapping'}")
    tag = node.tag
    if tag == ENV_VALUE_TAG:
        return node.value, True
    if tag == "tag:yaml.org,2002:null":
        return None, True
    if tag not in _CORE_TAGS:
        raise InvalidValue(f"unknown tag {tag} (seed files know !ref and !env)")
    plain = not node.style
    if plain and node.value in _NULLS:
        return None, True
    return node.value, plain


def _converter(column: sa.Column[Any]) -> _Converter:
    """Check a YAML node for a column: null where allowed, else the column type's text converter."""
    if isinstance(column_type(column), sa.JSON | sa.ARRAY):
        return _structured_converter(column)
    convert = text_converter(column)
    nullable = column.nullable

    def check(node: Node) -> Any:
        text, plain = _scalar(node)
        if text is None:
            if not nullable:
                raise InvalidValue("cannot be null (the column is NOT NULL)")
            return None
        return convert(text, plain)

    return check


def _structured_converter(column: sa.Column[Any]) -> _Converter:
    is_json = isinstance(column.type, sa.JSON)

    def check(node: Node) -> Any:
        value = _plain_python(node)
        if value is None and not column.nullable:
            raise InvalidValue("cannot be null (the column is NOT NULL)")
        if value is None:
            return None
        if is_json:
            return _Json(json.dumps(value, default=str))
        if not isinstance(value, list):
            raise InvalidValue("expected a list")
        return value

    return check


class _Json(str):
    """JSON text for a json/jsonb column."""


def _plain_python(node: Node) -> Any:
    """A YAML value as plain Python data, typing scalars by the YAML 1.2 core schema."""
    if isinstance(node, MappingNode):
        return {str(_plain_python(k)): _plain_python(v) for k, v in node.value}
    if isinstance(node, SequenceNode):
        return [_plain_python(item) for item in node.value]
    if node.tag == REF_TAG:
        raise InvalidValue("!ref cannot be used inside a list or mapping")
    text, plain = _scalar(node)
    if text is None or not plain:
        return text
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    if INT_RE.match(text):
        return int(text)
    if FLOAT_RE.match(text):
        return float(text)
    return text
