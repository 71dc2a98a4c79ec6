"""CSV and JSON export, written batch by batch as rows stream in.

CSV follows PostgreSQL's `COPY ... CSV`: NULL is an empty field and an empty string is `""`, so the
two stay apart (Python 3.11's csv module writes both as an empty field). JSON is one array of
objects; numeric values are strings, to keep every digit.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from pydb.studio.values import text_of

__all__ = ["FORMATS", "csv_chunks", "json_chunks"]

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
_SPECIAL = frozenset(',"\r\n')


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    text = text_of(value)
    if text == "" or not _SPECIAL.isdisjoint(text) or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_chunks(columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    """A header line, then one chunk of CSV lines per batch of rows."""
    yield ",".join(_csv_field(c) for c in columns) + "\r\n"
    for batch in batches:
        yield "".join(",".join(_csv_field(v) for v in row) + "\r\n" for row in batch)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID | dt.date | dt.time | dt.timedelta | bytes | memoryview):
        return text_of(value)
    return str(value)


def json_chunks(columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    """A JSON array of objects (column name → value), one chunk per batch of rows."""
    sep = "[\n"
    for batch in batches:
        parts = []
        for row in batch:
            item = dict(zip(columns, row, strict=True))
            parts.append(sep + json.dumps(item, ensure_ascii=False, default=_json_value))
            sep = ",\n"
        yield "".join(parts)
    yield "[]\n" if sep == "[\n" else "\n]\n"
