"""Check seed rows against the reflected schema as they are read, and turn their values into typed ones."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import DOMAIN
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pydb.catalog import INSERT_TRIGGER
from pydb.errors import SeedProblem
from pydb.seed.convert import FALSE, FLOAT_RE, INT_RE, TRUE, Converter, InvalidValue, column_type, text_converter
from pydb.seed.parse import REF_TAG
from pydb.seed.rows import (
    DATA,
    FIELD,
    NODE,
    NULL,
    PLAIN,
    QUOTED,
    REF,
    TEXT,
    Cell,
    CheckedRow,
    Named,
    Ref,
    SeedRow,
    SeedTable,
)

__all__ = ["CheckedRow", "Named", "Ref", "SeedChecker", "TableChecker"]

_CORE_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null")}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))


_Check = Callable[[int, Any], Any]
_Converter = tuple[_Check, Converter | None]  # (check a cell of any kind, convert plain text) for a column


class SeedChecker:
    """Checks rows against the schema as they come; keeps every `_id` and the refs to names not seen yet."""

    def __init__(self, tables: dict[str, sa.Table], path: str, *, positions: bool = False) -> None:
        self.tables = tables
        self.path = path
        self.positions = positions  # keep where domain values are (for the database's refusals)
        self.problems: list[SeedProblem] = []
        self.names: dict[str, Named] = {}
        self.written: set[str] = set()  # tables whose rows are all written: refs to them are final keys
        self._waiting: list[tuple[str, str, str, Ref]] = []  # (path, table, column, ref) to a name not seen yet
        # refs found fine, by (table, column, target table, target row gives its key): the same ones are too
        self._refs_fine: set[tuple[str, str, str, bool]] = set()

    def problem(self, path: str, line: int, column: int, message: str) -> None:
        """Record a problem."""
        self.problems.append(SeedProblem(path, line, column, message))

    def table(self, seed_table: SeedTable) -> TableChecker | None:
        """The checker of one table's rows, or None (a problem recorded) when the schema has no such table."""
        table = self.tables.get(seed_table.name)
        if table is None:
            self.problem(self.path, seed_table.line, seed_table.column,
                         f"{seed_table.name}: no such table{_suggest(seed_table.name, self.tables, 'tables')}")
            return None
        return TableChecker(self, seed_table, table)

    def resolve(self, path: str, row: CheckedRow, refs: list[tuple[str, Ref]], seed_row: SeedRow) -> bool:
        """Check a row's refs to names already seen; put in the keys of rows already written. True if all were."""
        final = True
        values = row.values
        for column, ref in refs:
            target = self.names.get(ref.name)
            if target is None:
                self._waiting.append((path, row.table, column, _placed(ref, column, row, seed_row)))
                final = False
                continue
            known = (row.table, column, target.table, target.given_pk)
            message = None
            if known not in self._refs_fine:
                message = self._ref_problem(row.table, column, target)
                if message is None:
                    self._refs_fine.add(known)
            if message:
                ref = _placed(ref, column, row, seed_row)
                self.problem(path, ref.line, ref.column, f"{row.table}.{column}: !ref {ref.name}: {message}")
                final = False
            elif target.has_key and target.table in self.written:
                values[column] = target.key
            else:
                final = False
        return final

    def finish(self) -> None:
        """Check the refs to names that came later in the file (or never came)."""
        for path, table, column, ref in self._waiting:
            target = self.names.get(ref.name)
            if target is None:
                self.problem(path, ref.line, ref.column,
                             f"{table}.{column}: !ref {ref.name}: no row has _id {ref.name!r}"
                             f"{_suggest(ref.name, self.names.keys(), '_id')}")
                continue
            message = self._ref_problem(table, column, target)
            if message:
                self.problem(path, ref.line, ref.column, f"{table}.{column}: !ref {ref.name}: {message}")
        self._waiting = []

    def _ref_problem(self, table_name: str, column_name: str, target: Named) -> str | None:
        column = self.tables[table_name].columns[column_name]
        referred = sorted({fk.column.table.name for fk in column.foreign_keys})
        if referred and target.table not in referred:
            return f"is a row of {target.table}, but the column references {', '.join(referred)}"
        pk = list(self.tables[target.table].primary_key.columns)
        if len(pk) != 1:
            return f"{target.table} has a composite primary key; a reference needs a single-column key"
        if not isinstance(pk[0].type, sa.Uuid) and not target.given_pk:
            return (f"{target.table} rows get their key from the database; give row {target.name!r} "
                    f"an explicit {pk[0].name}")
        return None


def _placed(ref: Ref, column: str, row: CheckedRow, seed_row: SeedRow) -> Ref:
    """A ref with its position worked out (a data file's reader leaves it to the messages that need it)."""
    if ref.column:
        return ref
    line, col = seed_row.position(column, seed_row.cells[column])
    placed = row.values[column] = Ref(ref.name, line, col)
    return placed


class TableChecker:
    """Checks the rows of one table: columns, values, required columns, `_id`s."""

    def __init__(self, checker: SeedChecker, seed_table: SeedTable, table: sa.Table) -> None:
        self.checker = checker
        self.name = table.name
        self.path = seed_table.rows_path
        self.columns = {c.name: c for c in table.columns}
        self.converters: dict[str, _Converter] = {}
        self.plains: dict[str, Converter] = {}  # columns whose plain text goes straight to their type's converter
        self.required = _required_columns(table)
        self.required_set = frozenset(self.required)
        self.domains = {c.name for c in table.columns if isinstance(c.type, DOMAIN)}
        pk = list(table.primary_key.columns)
        self.pk = pk[0].name if len(pk) == 1 else None
        self.header = seed_table.header is not None
        if seed_table.header is not None:
            self._check_header(seed_table.header)

    def _check_header(self, header: list[tuple[str, int, int]]) -> None:
        """A data file's column names are checked once, at the header, not at every row."""
        given = set()
        for name, line, col in header:
            given.add(name)
            if name not in self.columns:
                self.checker.problem(self.path, line, col, f"{self.name}.{name}: no such column"
                                                           f"{_suggest(name, self.columns.keys(), 'columns')}")
        for name in self.required:
            if name not in given:
                self.checker.problem(self.path, 1, 1,
                                     f"{self.name}: missing required column {name!r} (NOT NULL, no default)")
        self.required = []

    def check(self, seed_row: SeedRow) -> tuple[CheckedRow, list[tuple[str, Ref]], Named | None]:
        """The row with typed values, its refs (still names), and its `_id` when it is the first to use it."""
        values: dict[str, Any] = {}
        row = CheckedRow(self.name, seed_row.line, seed_row.column, seed_row.name, seed_row.name_line,
                         seed_row.name_column, values)
        refs: list[tuple[str, Ref]] = []
        plains = self.plains
        for name, cell in seed_row.cells.items():
            kind = cell[0]
            if kind in (PLAIN, FIELD):  # the usual cells: text for the column type's converter
                plain = plains.get(name)
                if plain is not None and (kind == FIELD or cell[1] not in _NULLS):
                    try:
                        values[name] = plain(cell[1], True)
                    except InvalidValue as err:
                        self._invalid(seed_row, name, cell, err)
                    continue
            elif kind == REF and name in self.columns:
                # column 0 (a data file): worked out by `resolve` when a message or a later name needs it
                ref = values[name] = Ref(cell[1], cell[2], cell[3])
                refs.append((name, ref))
                continue
            self._check_cell(seed_row, row, name, cell)
        cells = seed_row.cells
        if self.required and not self.required_set <= cells.keys():
            for name in self.required:
                if name not in cells:
                    self.checker.problem(self.path, row.line, row.column,
                                         f"{self.name}: missing required column {name!r} (NOT NULL, no default)")
        named = None
        if row.name is not None:
            checker = self.checker
            first = checker.names.get(row.name)
            if first is not None:
                checker.problem(self.path, row.name_line, row.name_column,
                                f"duplicate _id {row.name!r} (first at {first.path}:{first.line}:{first.column})")
            else:
                named = checker.names[row.name] = Named(row.name, self.name, self.path, row.name_line,
                                                        row.name_column, self.pk is not None and self.pk in values)
        return row, refs, named

    def _check_cell(self, seed_row: SeedRow, row: CheckedRow, name: str, cell: Cell) -> None:
        """Check any cell: its column exists, its value fits (NULL where allowed); keep where domain values are."""
        converter = self.converters.get(name)
        if converter is None:
            column = self.columns.get(name)
            if column is None:
                if not self.header:
                    line, col = seed_row.position(name, cell, at_name=True)
                    self.checker.problem(self.path, line, col, f"{self.name}.{name}: no such column"
                                                               f"{_suggest(name, self.columns.keys(), 'columns')}")
                return
            converter = self.converters[name] = _converter(column)
            if converter[1] is not None and not (self.checker.positions and name in self.domains):
                self.plains[name] = converter[1]
        try:
            row.values[name] = converter[0](cell[0], cell[1])
        except InvalidValue as err:
            self._invalid(seed_row, name, cell, err)
            return
        if self.checker.positions and name in self.domains:
            if row.positions is None:
                row.positions = {}
            row.positions[name] = seed_row.position(name, cell)

    def _invalid(self, seed_row: SeedRow, name: str, cell: Cell, err: InvalidValue) -> None:
        line, col = seed_row.position(name, cell)
        self.checker.problem(self.path, line, col, f"{self.name}.{name}: {err}")


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
    if tag == "tag:yaml.org,2002:null":
        return None, True
    if tag not in _CORE_TAGS:
        raise InvalidValue(f"unknown tag {tag} (seed files know !ref and !env)")
    plain = not node.style
    if plain and node.value in _NULLS:
        return None, True
    return node.value, plain


def _converter(column: sa.Column[Any]) -> _Converter:
    """Check a cell for a column: null where allowed, else the column type's text converter."""
    if isinstance(column_type(column), sa.JSON | sa.ARRAY):
        return _structured_converter(column), None
    convert = text_converter(column)
    nullable = column.nullable

    def check(kind: int, value: Any) -> Any:
        if kind == PLAIN:
            if value not in _NULLS:
                return convert(value, True)
        elif kind == QUOTED:
            return convert(value, False)
        elif kind in (TEXT, FIELD):
            return convert(value, True)
        elif kind == NODE:
            text, plain = _scalar(value)
            if text is not None:
                return convert(text, plain)
        elif kind == DATA:
            raise InvalidValue(f"expected a single value, got a {'list' if isinstance(value, list) else 'mapping'}")
        if not nullable:
            raise InvalidValue("cannot be null (the column is NOT NULL)")
        return None

    return check, convert


def _structured_converter(column: sa.Column[Any]) -> _Check:
    is_json = isinstance(column_type(column), sa.JSON)

    def check(kind: int, cell: Any) -> Any:
        value = _structured(kind, cell)
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


def _structured(kind: int, value: Any) -> Any:
    """A cell as plain Python data for a json or array column."""
    if kind == PLAIN:
        return None if value in _NULLS else _typed(value)
    if kind == TEXT:
        return _typed(value)
    if kind == FIELD:
        try:
            return json.loads(value)
        except ValueError:
            raise InvalidValue(f"expected JSON text, got {value[:40]!r}") from None
    if kind == NODE:
        return _plain_python(value)
    if kind == NULL:
        return None
    return value  # QUOTED text, DATA


class _Json(str):
    """JSON text for a json/jsonb column."""


def _typed(text: str) -> Any:
    """Plain text typed by the YAML 1.2 core schema."""
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    if INT_RE.match(text):
        return int(text)
    if FLOAT_RE.match(text):
        return float(text)
    return text


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
    return _typed(text)
