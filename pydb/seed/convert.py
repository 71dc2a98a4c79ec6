"""Text to typed column values: one small converter per column type, shared by seed files, `pydb find` and the studio.

A converter takes the text of a value and whether it was written plain (unquoted in YAML; a
quoted `"true"` is text, not a boolean) and returns the Python value for the column, or raises
InvalidValue saying why not.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import DOMAIN

__all__ = ["Converter", "InvalidValue", "column_type", "convert_text", "text_converter"]

Converter = Callable[[str, bool], Any]

TRUE = frozenset(("true", "True", "TRUE"))
FALSE = frozenset(("false", "False", "FALSE"))
INT_RE = re.compile(r"^[-+]?[0-9]+$")
FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL_FLOATS = {".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity", ".nan": "NaN"}
_INT_LIMITS = ((sa.BigInteger, 2**63), (sa.SmallInteger, 2**15), (sa.Integer, 2**31))


class InvalidValue(ValueError):
    """A value does not fit its column; the message says why."""


def shown(text: str) -> str:
    """A value as quoted in a message, cut at 60 characters."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def column_type(column: sa.Column[Any]) -> sa.types.TypeEngine[Any]:
    """The type values of a column are converted to: a domain's underlying type."""
    kind = column.type
    while isinstance(kind, DOMAIN):
        kind = kind.data_type
    return kind


def _enum(kind: sa.Enum) -> Converter:
    labels = list(kind.enums)
    allowed = frozenset(labels)
    type_name = kind.name or "enum"

    def convert(text: str, plain: bool) -> Any:
        if text not in allowed:
            raise InvalidValue(f"{shown(text)} is not a value of {type_name} (one of: {', '.join(labels)})")
        return text

    return convert


def _boolean(kind: sa.Boolean) -> Converter:
    def convert(text: str, plain: bool) -> Any:
        if plain and text in TRUE:
            return True
        if plain and text in FALSE:
            return False
        raise InvalidValue(f"expected true or false, got {shown(text)}")

    return convert


def _integer(kind: sa.Integer) -> Converter:
    limit = next(bound for base, bound in _INT_LIMITS if isinstance(kind, base))

    def convert(text: str, plain: bool) -> Any:
        if not plain or not INT_RE.match(text):
            raise InvalidValue(f"expected an integer, got {shown(text)}")
        number = int(text)
        if not -limit <= number < limit:
            raise InvalidValue(f"{number} is out of range for {kind}")
        return number

    return convert


def _float(kind: sa.Float[Any]) -> Converter:
    def convert(text: str, plain: bool) -> Any:
        if plain and (FLOAT_RE.match(text) or text.lower() in _SPECIAL_FLOATS):
            return float(_SPECIAL_FLOATS.get(text.lower(), text))
        raise InvalidValue(f"expected a number, got {shown(text)}")

    return convert


def _numeric(kind: sa.Numeric[Any]) -> Converter:
    precision, scale = kind.precision, kind.scale or 0

    def convert(text: str, plain: bool) -> Any:
        if not plain or not FLOAT_RE.match(text):
            raise InvalidValue(f"expected a number, got {shown(text)}")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidValue(f"expected a number, got {shown(text)}") from None
        if precision is not None and number != 0 and number.adjusted() + 1 > precision - scale:
            raise InvalidValue(f"{text} does not fit numeric({precision},{scale})")
        return number

    return convert


def _iso(parse: Callable[[str], Any], expected: str) -> Callable[[Any], Converter]:
    """A converter factory for ISO 8601 text (timestamps, dates, times)."""

    def factory(kind: Any) -> Converter:
        def convert(text: str, plain: bool) -> Any:
            try:
                return parse(text.strip())
            except ValueError:
                raise InvalidValue(f"expected {expected}, got {shown(text)}") from None

        return convert

    return factory


def _uuid(kind: sa.Uuid[Any]) -> Converter:
    def convert(text: str, plain: bool) -> Any:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise InvalidValue(f"expected a uuid, got {shown(text)}") from None

    return convert


def _string(kind: sa.String) -> Converter:
    length = kind.length

    def convert(text: str, plain: bool) -> Any:
        if length is not None and len(text) > length:
            raise InvalidValue(f"{len(text)} characters, longer than the column's {length}")
        return text

    return convert


def _as_text(kind: sa.types.TypeEngine[Any]) -> Converter:
    return lambda text, plain: text


# Most specific type first: Enum is a String, Float a Numeric, BigInteger an Integer.
CONVERTERS: tuple[tuple[type[Any], Callable[[Any], Converter]], ...] = (
    (sa.Enum, _enum),
    (sa.Boolean, _boolean),
    (sa.Integer, _integer),
    (sa.Float, _float),
    (sa.Numeric, _numeric),
    (sa.DateTime, _iso(dt.datetime.fromisoformat, "a timestamp (ISO 8601, e.g. 2025-01-31T09:30:00Z)")),
    (sa.Date, _iso(dt.date.fromisoformat, "a date (YYYY-MM-DD)")),
    (sa.Time, _iso(dt.time.fromisoformat, "a time (HH:MM[:SS])")),
    (sa.Uuid, _uuid),
    (sa.String, _string),
)


def text_converter(column: sa.Column[Any]) -> Converter:
    """The converter of a column's type (text kept as text for types pydb has no converter for)."""
    kind = column_type(column)
    for base, factory in CONVERTERS:
        if isinstance(kind, base):
            return factory(kind)
    return _as_text(kind)


def convert_text(column: sa.Column[Any], text: str) -> Any:
    """Convert text typed by a person (command line, form) to the column's value; InvalidValue if it does not fit."""
    return text_converter(column)(text, True)
