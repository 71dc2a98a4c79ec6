"""The pgvector `vector` column type, so tables holding embeddings reflect and round-trip as lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy.types import UserDefinedType


class Vector(UserDefinedType[list[float]]):
    """pgvector's vector(n): Python list[float] in, list[float] out."""

    cache_ok = True

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim

    def get_col_spec(self, **kw: Any) -> str:
        """Return the SQL type name."""
        return "vector" if self.dim is None else f"vector({self.dim})"

    def bind_processor(self, dialect: Any) -> Any:
        """Return a function turning a list of floats into pgvector's text form."""

        def process(value: Any) -> str | None:
            if value is None:
                return None
            return "[" + ",".join(repr(float(x)) for x in value) + "]"

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """Return a function turning pgvector's text form into a list of floats."""

        def process(value: Any) -> list[float] | None:
            return parse_vector(value)

        return process


def parse_vector(value: Any) -> list[float] | None:
    """Turn pgvector's text form '[1,2,3]' into [1.0, 2.0, 3.0]."""
    if value is None:
        return None
    if isinstance(value, list):
        return [float(x) for x in value]
    text = str(value).strip("[]")
    return [float(x) for x in text.split(",")] if text else []
