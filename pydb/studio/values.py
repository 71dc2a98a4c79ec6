"""Values as the studio shows them, column types for people, and row keys and page cursors in URLs."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

import sqlalchemy as sa

from pydb.seed.convert import CONVERTERS, InvalidValue, column_type, convert_text

__all__ = [
    "CELL_LIMIT", "InvalidValue", "decode_cursor", "encode_cursor", "has_converter", "key_path", "parse_key",
    "text_of", "type_label",
]

CELL_LIMIT = 120
_TYPED = tuple(base for base, _ in CONVERTERS)


def has_converter(column: sa.Column[Any]) -> bool:
    """Tell whether text typed by a person converts to this column's values (the seed's converters)."""
    return isinstance(column_type(column), _TYPED)


def text_of(value: Any) -> str:
    """The full text of a non-NULL value: what a form shows and a CSV file holds; it converts back."""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def type_label(column: sa.Column[Any], dialect: sa.Dialect) -> str:
    """The column's SQL type as PostgreSQL people write it: `varchar(255)`, `user_role`, `timestamptz`."""
    kind = column.type
    if isinstance(kind, sa.Enum) and kind.name:
        return kind.name
    text = kind.compile(dialect=dialect).lower()
    return text.replace("timestamp with time zone", "timestamptz").replace("timestamp without time zone", "timestamp")


def key_path(values: Sequence[Any]) -> str:
    """A row's primary key as one URL path segment (composite keys: values joined by commas)."""
    inner = ",".join(quote(text_of(v), safe="") for v in values)
    return quote(inner, safe=",")


def parse_key(columns: Sequence[sa.Column[Any]], segment: str) -> list[Any]:
    """The primary key values named by a URL path segment (already URL-decoded once by the server)."""
    parts = segment.split(",")
    if len(parts) != len(columns):
        raise InvalidValue(f"expected {len(columns)} key values separated by commas, got {len(parts)}")
    return [convert_text(column, unquote(part)) for column, part in zip(columns, parts, strict=True)]


def encode_cursor(values: Sequence[Any]) -> str:
    """A page cursor: the sort key of a row, as URL-safe text."""
    data = json.dumps([None if v is None else text_of(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(columns: Sequence[sa.Column[Any]], cursor: str) -> list[Any]:
    """The typed sort key a cursor holds, for these columns; InvalidValue when it is not one of ours."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidValue("this page link is damaged (bad cursor); start again from the first page") from None
    if not isinstance(raw, list) or len(raw) != len(columns) or not all(v is None or isinstance(v, str) for v in raw):
        raise InvalidValue("this page link does not fit the table (bad cursor); start again from the first page")
    return [None if text is None else convert_text(column, text) for column, text in zip(columns, raw, strict=True)]
