"""Rows that must wait to be written, kept in a temporary file in batches: memory does not grow with them."""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from typing import IO

from pydb.seed.rows import CheckedRow

__all__ = ["BATCH", "Spool", "SpoolFile"]

BATCH = 2000  # rows a spool keeps in memory before it writes them out


class SpoolFile:
    """One temporary file shared by the spools of a load; removed when closed."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self.batches_written = 0

    def dump(self, rows: list[CheckedRow]) -> int:
        """Append a batch of rows; return where it starts."""
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="pydb-seed-")  # noqa: SIM115 - closed by close()
        self._file.seek(0, 2)
        at = self._file.tell()
        pickle.dump(rows, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.batches_written += 1
        return at

    def load(self, at: int) -> list[CheckedRow]:
        """The batch of rows written at `at`."""
        assert self._file is not None
        self._file.seek(at)
        rows: list[CheckedRow] = pickle.load(self._file)
        return rows

    def close(self) -> None:
        """Remove the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class Spool:
    """The rows of one group that wait to be written, in file order."""

    def __init__(self, file: SpoolFile) -> None:
        self._file = file
        self._batches: list[int] = []
        self._tail: list[CheckedRow] = []
        self._count = 0

    def add(self, row: CheckedRow) -> None:
        """Keep a row."""
        self._tail.append(row)
        self._count += 1
        if len(self._tail) >= BATCH:
            self._batches.append(self._file.dump(self._tail))
            self._tail = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[CheckedRow]:
        for at in self._batches:
            yield from self._file.load(at)
        yield from list(self._tail)
