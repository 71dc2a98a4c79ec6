"""What the seed readers and checker produce: tables, rows and cells, each with its position in its file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DATA", "FIELD", "NODE", "NULL", "PLAIN", "QUOTED", "REF", "TEXT", "Cell", "CheckedRow", "Named",
           "ReadAgain", "Ref", "RowPlace", "SeedRow", "SeedTable"]

# What a cell holds (its first item).
PLAIN = 0  # a YAML plain scalar: typed by its column; null, ~ and an empty value are NULL
QUOTED = 1  # quoted (or block) text: never NULL, never a number or a boolean
TEXT = 2  # text taken as written, never NULL: a resolved `!env`, a JSON number or boolean
FIELD = 3  # a CSV field: like TEXT, and JSON text for json and array columns
NULL = 4  # NULL: an empty CSV field, a JSON null
REF = 5  # `!ref NAME`: the value is NAME
NODE = 6  # any other YAML node (a list, a mapping, another tag), checked as a node
DATA = 7  # a JSON list or object from a JSON Lines file

Cell = tuple[int, Any, int, int, int, int]
"""(kind, value, line, column of the value, line, column of the column's name); 1-based.

A column of 0 means the reader did not work it out: the row's `locate` finds it when a message needs it."""

Locate = Callable[[str, bool], tuple[int, int]]
"""locate(column, at_name): where a cell's value (or, at_name, its column name) starts, for data files."""


@dataclass(slots=True)
class RowPlace:
    """Where a row is: its table, where it starts, its `_id` and where that is (0, 0 without one)."""

    table: str
    line: int
    column: int
    name: str | None
    name_line: int
    name_column: int


@dataclass(slots=True)
class SeedRow(RowPlace):
    """One row as read: its cells (column -> Cell), its `_id` and where it starts."""

    cells: dict[str, Cell]
    locate: Locate | None = None

    def position(self, column: str, cell: Cell, at_name: bool = False) -> tuple[int, int]:
        """Where one of this row's cells (or its column name) starts."""
        line, col = (cell[4], cell[5]) if at_name else (cell[2], cell[3])
        if col == 0 and self.locate is not None:
            return self.locate(column, at_name)
        return line, col


@dataclass(slots=True)
class SeedTable:
    """One top-level key of a seed file: a table name, where it is in the seed file, and its rows as they are read.

    `rows` must be read to its end before the next table is asked for.
    """

    name: str
    line: int
    column: int
    rows_path: str  # the file its rows are in: the seed file, or its `!csv` / `!jsonl` data file
    rows: Iterator[SeedRow]
    header: list[tuple[str, int, int]] | None = None  # a CSV file's column names, with their positions
    estimate: int = 0  # rows a data file is expected to hold (its lines), for progress


@dataclass(slots=True, unsafe_hash=True)  # never changed once made; not frozen: a frozen __init__ is 3x slower
class Ref:
    """A `!ref NAME` value: the primary key of the row whose `_id` is NAME."""

    name: str
    line: int = field(compare=False)
    column: int = field(compare=False)

    def __reduce__(self) -> tuple[type[Ref], tuple[str, int, int]]:
        # Plain constructor arguments pickle faster than the dataclass's slot state (rows kept on disk).
        return (Ref, (self.name, self.line, self.column))


@dataclass(slots=True)
class CheckedRow(RowPlace):
    """A row whose columns exist and whose values have the columns' types (refs still unresolved)."""

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
class Named:
    """A row with an `_id`: where the name is, and (once its row is planned) its primary key."""

    name: str
    table: str
    path: str
    line: int
    column: int
    given_pk: bool  # the row gives its table's primary key itself
    key: Any = None
    has_key: bool = False


class ReadAgain(Exception):
    """The line reader met something it cannot split into rows safely: the file is to be read by the event reader."""
