"""Relational queries: find_first/find_many compile a tree of relations into one SQL statement.

Nested relations are built as correlated subqueries returning JSON (json_agg of json_build_object),
so a user with their projects and usage rows is one round trip; values are decoded back to the
column's Python type (UUID, datetime, Decimal, ...). Results are plain dicts: column name → value,
relation name → dict (to one) or list of dicts (to many).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import chain
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import visitors

from pydb.errors import QueryError
from pydb.relations import Relation, relations_of
from pydb.vector import Vector, parse_vector

if TYPE_CHECKING:
    from pydb.database import Database

Row = dict[str, Any]
_OPTION_KEYS = frozenset({"columns", "where", "order_by", "limit", "offset", "with_"})
_RN = "_pydb_rn"


class QueryRoot:
    """`db.query`: one TableQuery per table, by attribute."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._relations: dict[str, dict[str, Relation]] | None = None

    def relations(self) -> dict[str, dict[str, Relation]]:
        """Table name → relation name → Relation."""
        if self._relations is None:
            self._relations = relations_of(self._db.tables)
        return self._relations

    def __getattr__(self, name: str) -> TableQuery:
        if name.startswith("__"):
            raise AttributeError(name)
        tables = self._db.tables
        if name not in tables:
            raise QueryError(f"no table {name!r}; tables: {', '.join(sorted(tables)) or 'none'}")
        return TableQuery(self, tables[name])

    def __dir__(self) -> list[str]:
        return sorted(self._db.tables)


class TableQuery:
    """Queries rooted at one table."""

    def __init__(self, root: QueryRoot, table: sa.Table) -> None:
        self._root = root
        self.table = table

    def statement(
        self,
        *,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        columns: Iterable[str] | None = None,
        with_: Mapping[str, Any] | None = None,
    ) -> sa.Select[Any]:
        """Return the one SELECT that find_many would send."""
        spec = {"where": where, "order_by": order_by, "limit": limit, "offset": offset,
                "columns": columns, "with_": with_}
        stmt, _ = self._build(spec)
        return stmt

    def find_many(
        self,
        *,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        columns: Iterable[str] | None = None,
        with_: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        """Return the matching rows, each with the relations named in with_, in one round trip."""
        spec = {"where": where, "order_by": order_by, "limit": limit, "offset": offset,
                "columns": columns, "with_": with_}
        stmt, decode = self._build(spec)
        with self._root._db.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [decode(dict(row), native=True) for row in rows]

    def find_first(
        self,
        *,
        where: Any = None,
        order_by: Any = None,
        offset: int | None = None,
        columns: Iterable[str] | None = None,
        with_: Mapping[str, Any] | None = None,
    ) -> Row | None:
        """Return the first matching row with its relations, or None."""
        rows = self.find_many(where=where, order_by=order_by, limit=1, offset=offset, columns=columns, with_=with_)
        return rows[0] if rows else None

    # -- compilation -------------------------------------------------------------------------

    def _build(self, spec: Mapping[str, Any]) -> tuple[sa.Select[Any], Decoder]:
        table = self.table
        names = _column_names(table, spec.get("columns"))
        nested, decoders = self._nested(table, table, spec.get("with_"), depth=0)
        stmt = sa.select(*(table.c[n] for n in names), *(expr.label(n) for n, expr in nested.items()))
        stmt = _apply(stmt, spec, table, table)
        return stmt, Decoder(table, names, decoders)

    def _nested(
        self, table: sa.Table, source: sa.FromClause, with_: Mapping[str, Any] | None, depth: int
    ) -> tuple[dict[str, sa.ColumnElement[Any]], dict[str, Decoder]]:
        exprs: dict[str, sa.ColumnElement[Any]] = {}
        decoders: dict[str, Decoder] = {}
        if not with_:
            return exprs, decoders
        known = self._root.relations()[table.name]
        for name, option in with_.items():
            if name not in known:
                raise QueryError(
                    f"{table.name} has no relation {name!r}; relations: {', '.join(sorted(known)) or 'none'}"
                )
            spec = _spec(option, f"{table.name}.{name}")
            exprs[name], decoders[name] = self._relation_json(known[name], source, spec, depth + 1)
        return exprs, decoders

    def _relation_json(
        self, relation: Relation, source: sa.FromClause, spec: Mapping[str, Any], depth: int
    ) -> tuple[sa.ColumnElement[Any], Decoder]:
        target = relation.target
        alias = target.alias(f"{target.name}_{depth}")
        names = _column_names(target, spec.get("columns"))
        nested, decoders = self._nested(target, alias, spec.get("with_"), depth)
        order = [_rebind(o, target, alias) for o in _as_list(spec.get("order_by"))] or [
            alias.c[c.name] for c in target.primary_key.columns
        ]
        inner: sa.Select[Any] = sa.select(
            *(_json_ready(alias.c[n]).label(n) for n in names),
            *(expr.label(n) for n, expr in nested.items()),
            sa.func.row_number().over(order_by=order).label(_RN),
        ).where(*(alias.c[t] == source.c[s] for s, t in relation.pairs))
        inner = _apply(inner, {**spec, "order_by": None}, target, alias).order_by(*order)
        if not relation.many:
            inner = inner.limit(1)
        sub = inner.correlate(source).subquery(f"{target.name}_{depth}_rows")
        obj = sa.func.json_build_object(*chain.from_iterable((_key(n), sub.c[n]) for n in [*names, *nested]))
        if relation.many:
            agg = sa.func.coalesce(sa.func.json_agg(aggregate_order_by(obj, sub.c[_RN])), sa.text("'[]'::json"))
            value = sa.select(agg).select_from(sub).scalar_subquery()
        else:
            value = sa.select(obj).select_from(sub).scalar_subquery()
        return value, Decoder(target, names, decoders, many=relation.many)


class Decoder:
    """Turns one result value (a row, or JSON of rows) back into Python values of the columns' types."""

    def __init__(self, table: sa.Table, names: Sequence[str], nested: Mapping[str, Decoder], many: bool = False):
        self.many = many
        self.nested = dict(nested)
        self.columns = {n: _decoder_for(table.c[n].type) for n in names}

    def __call__(self, row: Row, native: bool = False) -> Row:
        out: Row = {}
        for name, convert in self.columns.items():
            value = row[name]
            out[name] = value if native or value is None else convert(value)
        for name, decoder in self.nested.items():
            out[name] = decoder.decode_json(row[name])
        return out

    def decode_json(self, value: Any) -> Any:
        """Decode the JSON of one related row (or a list of them)."""
        if self.many:
            return [self(item) for item in value or []]
        return None if value is None else self(value)


def _decoder_for(column_type: sa.types.TypeEngine[Any]) -> Callable[[Any], Any]:
    if isinstance(column_type, Vector):
        return parse_vector
    if isinstance(column_type, sa.Enum):
        return str
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return _same
    if python_type is uuid.UUID:
        return lambda v: uuid.UUID(str(v))
    if python_type is dt.datetime:
        return dt.datetime.fromisoformat
    if python_type is dt.date:
        return dt.date.fromisoformat
    if python_type is dt.time:
        return dt.time.fromisoformat
    if python_type is Decimal:
        return lambda v: Decimal(str(v))
    if python_type is bytes:
        return lambda v: bytes.fromhex(str(v)[2:])
    return _same


def _same(value: Any) -> Any:
    return value


def _json_ready(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Keep exact values through JSON: numeric and vector travel as text."""
    column_type = column.type
    if isinstance(column_type, Vector) or (
        isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float)
    ):
        return sa.cast(column, sa.Text)
    return column


def _spec(option: Any, where: str) -> Mapping[str, Any]:
    if option is True:
        return {}
    if not isinstance(option, Mapping):
        raise QueryError(f"with_ value for {where} must be True or a dict of options, not {option!r}")
    unknown = set(option) - _OPTION_KEYS
    if unknown:
        raise QueryError(f"unknown option(s) {', '.join(sorted(unknown))} for {where}; "
                         f"options: {', '.join(sorted(_OPTION_KEYS))}")
    return option


def _column_names(table: sa.Table, columns: Iterable[str] | None) -> list[str]:
    if columns is None:
        return [c.name for c in table.columns]
    names = list(columns)
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise QueryError(f"{table.name} has no column {unknown[0]!r}; columns: {', '.join(table.c.keys())}")
    return names


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _key(name: str) -> sa.ColumnElement[Any]:
    """A JSON key as an SQL literal (names come from the catalog; quotes are doubled anyway)."""
    return sa.literal_column("'" + name.replace("'", "''") + "'")


def _rebind(expr: Any, table: sa.Table, into: sa.FromClause) -> Any:
    """Point the expression's columns of `table` (any reflection of it, matched by name) at `into`."""

    def replace(element: Any) -> Any:
        if isinstance(element, sa.Column) and element.table is not into:
            owner = getattr(element.table, "name", None)
            if owner == table.name and element.name in into.c:
                return into.c[element.name]
        return None

    return visitors.replacement_traverse(expr, {}, replace)  # type: ignore[call-overload]


def _apply(stmt: sa.Select[Any], spec: Mapping[str, Any], table: sa.Table, into: sa.FromClause) -> sa.Select[Any]:
    def adapt(expr: Any) -> Any:
        return _rebind(expr, table, into)

    if spec.get("where") is not None:
        stmt = stmt.where(adapt(spec["where"]))
    order = _as_list(spec.get("order_by"))
    if order:
        stmt = stmt.order_by(*(adapt(o) for o in order))
    if spec.get("limit") is not None:
        stmt = stmt.limit(spec["limit"])
    if spec.get("offset") is not None:
        stmt = stmt.offset(spec["offset"])
    return stmt
