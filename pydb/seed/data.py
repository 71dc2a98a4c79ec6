"""Rows from data files next to a seed file: `table: !csv data/rows.csv` and `table: !jsonl data/rows.jsonl`.

CSV: the first record names the columns (`_id` names rows, as in YAML). An empty field is NULL;
any other field is text read as if written plain in YAML, so `true`, `12` and `2025-01-31` fit
boolean, integer and date columns; a json or array column takes JSON text; a field `!ref NAME`
is the primary key of the row named NAME. JSON Lines: one JSON object per line, its keys the
columns; the string "!ref NAME" is a reference. Both are read a record at a time; positions of
values are worked out only when a message needs one.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from pydb.seed.rows import DATA, FIELD, NULL, QUOTED, REF, TEXT, Cell, SeedRow

__all__ = ["DATA_TAGS", "data_table"]

DATA_TAGS = {"!csv": "csv", "!jsonl": "jsonl"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_REF = "!ref "
_Report = Callable[[str, int, int, str], None]
Header = list[tuple[str, int, int]]


def data_table(
    kind: str, table: str, path: Path, shown: str, problem: _Report, files: dict[str, str],
) -> tuple[Iterator[SeedRow], Header | None, int] | str:
    """The rows of a CSV or JSON Lines file, a CSV file's header and its number of lines; or why it cannot be opened.

    When its rows have been read to the end, files[path] is the sha256 of the bytes read.
    """
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the rows' reader
        lines = _count_lines(path)
    except OSError as err:
        return err.strerror or str(err)
    digest = hashlib.sha256()
    text = io.TextIOWrapper(io.BufferedReader(_Hashing(raw, digest), 1 << 16), encoding="utf-8", newline="")

    def finished() -> None:
        files[str(path)] = digest.hexdigest()

    if kind == "jsonl":
        return _jsonl_rows(table, shown, text, problem, finished), None, lines
    return (*_csv_table(table, shown, text, problem, finished), max(lines - 1, 0))


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


class _Hashing(io.RawIOBase):
    """A binary file that hashes what is read from it."""

    def __init__(self, raw: IO[bytes], digest: Any) -> None:
        self._raw = raw
        self._digest = digest

    def readable(self) -> bool:
        """It is."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into buffer, hashing the bytes."""
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return int(count or 0)

    def close(self) -> None:
        """Close the file."""
        self._raw.close()
        super().close()


# -- CSV -------------------------------------------------------------------------------------------


class _Lines:
    """A text file's lines for csv.reader, counting them and keeping those of the record being read."""

    __slots__ = ("_lines", "current", "number", "start")

    def __init__(self, text: IO[str]) -> None:
        self._lines = iter(text)
        self.number = 0
        self.start = 1
        self.current: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        if not self.current:
            self.start = self.number
        self.current.append(line)
        return line

    def record(self) -> tuple[int, str]:
        """The first line and the text of the record just read."""
        text = self.current[0] if len(self.current) == 1 else "".join(self.current)
        self.current = []
        return self.start, text


def _csv_table(table: str, shown: str, text: IO[str], problem: _Report,
               finished: Callable[[], None]) -> tuple[Iterator[SeedRow], Header | None]:
    lines = _Lines(text)
    records = csv.reader(lines, strict=True)
    try:
        header = next(records, None)
    except (csv.Error, UnicodeDecodeError) as err:
        problem(shown, max(lines.number, 1), 1, f"{table}: {err}")
        text.close()
        return iter(()), None
    if header is None:
        problem(shown, 1, 1, f"{table}: the file is empty; a CSV file starts with a header row of column names")
        text.close()
        return iter(()), None
    start, record = lines.record()
    places = [(start + line, col + 1) for line, col in _field_starts(record)]
    names: list[str | None] = []
    first: dict[str, int] = {}
    for index, name in enumerate(header):
        line, col = places[index]
        if not name:
            problem(shown, line, col, f"{table}: a column of the header has no name")
            names.append(None)
        elif name in first:
            problem(shown, line, col, f"{table}.{name}: column given twice in the header (first at column "
                                      f"{places[first[name]][1]})")
            names.append(None)
        else:
            first[name] = index
            names.append(name)
    columns = [(name, *places[i]) for i, name in enumerate(names) if name is not None and name != "_id"]
    rows = _csv_rows(table, shown, records, lines, names, places, problem, finished, text)
    return rows, columns


def _csv_rows(table: str, shown: str, records: Iterator[list[str]], lines: _Lines, names: list[str | None],
              places: list[tuple[int, int]], problem: _Report, finished: Callable[[], None],
              text: IO[str]) -> Iterator[SeedRow]:
    width = len(names)
    index = {name: i for i, name in enumerate(names) if name is not None}
    named = index.pop("_id", None)
    cell_names = [None if name == "_id" else name for name in names]
    try:
        for fields in records:
            start, record = lines.record()
            if not fields:
                continue  # a blank line
            if len(fields) != width:
                problem(shown, start, 1, f"{table}: {len(fields)} fields, but the header has {width}")
                continue
            cells: dict[str, Cell] = {
                column: (FIELD, value, start, 0, 1, 0) if value and value[0] != "!" else _special(value, start)
                for column, value in zip(cell_names, fields, strict=True) if column is not None}
            row = SeedRow(table, start, 1, None, 0, 0, cells,
                          functools.partial(_csv_locate, record, start, index, named, places))
            if named is not None and fields[named]:
                line, col = _csv_locate(record, start, index, named, places, "_id", False)
                if _NAME_RE.match(fields[named]):
                    row.name, row.name_line, row.name_column = fields[named], line, col
                else:
                    problem(shown, line, col, f"{table}: _id must be a name of letters, digits, '_', '-' or '.'")
            yield row
    except csv.Error as err:
        problem(shown, lines.number, 1, f"{table}: {err}")
    except UnicodeDecodeError as err:
        problem(shown, lines.number + 1, 1, f"{table}: cannot read {shown}: {err}")
    else:
        finished()
    finally:
        text.close()


def _special(value: str, line: int) -> Cell:
    """The cell of an empty field (NULL), a `!ref NAME` field, or other text starting with `!`."""
    if not value:
        return NULL, None, line, 0, 1, 0
    if value.startswith(_REF):
        return REF, value[len(_REF):].strip(), line, 0, 1, 0
    return FIELD, value, line, 0, 1, 0


def _csv_locate(record: str, start: int, index: dict[str, int], named: int | None, places: list[tuple[int, int]],
                column: str, at_name: bool) -> tuple[int, int]:
    """Where a field of a CSV record starts (or, at_name, its name in the header)."""
    where = named if column == "_id" else index[column]
    assert where is not None
    if at_name:
        return places[where]
    line, col = _field_starts(record)[where]
    return start + line, col + 1


def _field_starts(record: str) -> list[tuple[int, int]]:
    """(line offset, 0-based column) where each field of a CSV record starts."""
    starts = [(0, 0)]
    line = col = 0
    quoted = False
    for char in record:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            starts.append((line, col + 1))
        if char == "\n":
            line, col = line + 1, 0
        else:
            col += 1
    return starts


# -- JSON Lines ------------------------------------------------------------------------------------


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members, in order, duplicates kept."""


def _jsonl_rows(table: str, shown: str, text: IO[str], problem: _Report,
                finished: Callable[[], None]) -> Iterator[SeedRow]:
    number = 0
    try:
        for raw in text:
            number += 1
            if not raw.strip():
                continue
            try:
                pairs = json.loads(raw, object_pairs_hook=_Pairs, parse_float=Decimal)
            except json.JSONDecodeError as err:
                problem(shown, number, err.colno, f"{table}: invalid JSON: {err.msg}")
                continue
            column = len(raw) - len(raw.lstrip()) + 1
            if not isinstance(pairs, _Pairs):
                problem(shown, number, column, f"{table}: a row is a JSON object of column names to values")
                continue
            yield _jsonl_row(table, shown, raw, number, column, pairs, problem)
    except UnicodeDecodeError as err:
        problem(shown, number + 1, 1, f"{table}: cannot read {shown}: {err}")
    else:
        finished()
    finally:
        text.close()


def _jsonl_row(table: str, shown: str, raw: str, number: int, column: int, pairs: _Pairs,
               problem: _Report) -> SeedRow:
    cells: dict[str, Cell] = {}
    row = SeedRow(table, number, column, None, 0, 0, cells, functools.partial(_json_locate, raw, number))
    for index, (key, value) in enumerate(pairs):
        if key in cells or (key == "_id" and row.name is not None):
            _name, key_col, _value_col = _json_members(raw)[index]
            problem(shown, number, key_col, f"{table}.{key}: column given twice in one row")
            continue
        kind = type(value)
        if key == "_id":
            if kind is str and _NAME_RE.match(value):
                row.name, row.name_line, row.name_column = value, number, _json_members(raw)[index][2]
            else:
                problem(shown, number, _json_members(raw)[index][2],
                        f"{table}: _id must be a name of letters, digits, '_', '-' or '.'")
            continue
        if kind is str:
            cells[key] = (REF, value[len(_REF):].strip(), number, 0, number, 0) if value.startswith(_REF) else \
                (QUOTED, value, number, 0, number, 0)
        elif kind is bool:
            cells[key] = (TEXT, "true" if value else "false", number, 0, number, 0)
        elif kind is int or kind is Decimal or kind is float:
            cells[key] = (TEXT, str(value), number, 0, number, 0)
        elif value is None:
            cells[key] = (NULL, None, number, 0, number, 0)
        else:
            cells[key] = (DATA, _plain(value), number, 0, number, 0)
    return row


def _plain(value: Any) -> Any:
    """A JSON list or object as plain Python data (numbers with a fraction as floats, like YAML's)."""
    if isinstance(value, _Pairs):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def _json_locate(raw: str, number: int, column: str, at_name: bool) -> tuple[int, int]:
    """Where a member of a JSON object line starts (its value, or at_name its key)."""
    for name, key_col, value_col in _json_members(raw):
        if name == column:
            return number, key_col if at_name else value_col
    return number, 1


def _json_members(raw: str) -> list[tuple[str, int, int]]:
    """(key, 1-based column of the key, of the value) of each member of a JSON object line."""
    decoder = json.JSONDecoder()
    members: list[tuple[str, int, int]] = []
    at = raw.index("{") + 1
    blank = " \t\r\n"
    while True:
        while raw[at] in blank:
            at += 1
        if raw[at] == "}":
            return members
        key_at = at
        key, at = json.decoder.scanstring(raw, at + 1)  # type: ignore[attr-defined]
        while raw[at] in blank:
            at += 1
        at += 1  # the colon
        while raw[at] in blank:
            at += 1
        value_at = at
        _value, at = decoder.raw_decode(raw, at)
        members.append((key, key_at + 1, value_at + 1))
        while raw[at] in blank:
            at += 1
        if raw[at] == ",":
            at += 1
