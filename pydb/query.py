"""Relational queries, pure: a tree of relations compiled to one SELECT, and its rows decoded.

This module builds and decodes; it never touches a connection. `Planner` turns a table and the
options of find_many/find_first/prepare into a `Plan`: one SELECT in which nested relations are
correlated subqueries returning JSON (json_agg of json_build_object), so a user with their projects
and usage rows is one round trip, and a `Decoder` that turns a result row back into Python values
of the columns' types (UUID, datetime, Decimal, ...). `Compiled` is a plan's SQL text for a
dialect and how call values become its parameters. Results are plain dicts: column name -> value,
relation name -> dict (to one) or list of dicts (to many).

Execution is thin and lives with the I/O: pydb.database runs plans for the sync Database and
pydb.async_database for AsyncDatabase; both share every line here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Any, TypedDict, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import DOMAIN, aggregate_order_by
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import LRUCache
from typing_extensions import TypeVar

from pydb.errors import QueryError
from pydb.relations import Relation, relations_of
from pydb.tuning import expression_shape, interval_from_text, statement_key
from pydb.vector import Vector, parse_vector

__all__ = ["Compiled", "Decoder", "Plan", "Planner", "QueryOptions", "Row", "RowT", "first_of", "where_equal"]

Row = dict[str, Any]
# The row type of a query: a plain dict, or a generated TypedDict (pydb/schema.py) statically.
RowT = TypeVar("RowT", default=Row)
_OPTION_KEYS = frozenset({"columns", "where", "order_by", "limit", "offset", "with_"})
_RN = "_pydb_rn"


class QueryOptions(TypedDict, total=False):
    """What find_many, find_first and prepare accept; the same keys nest inside `with_`."""

    where: Any  # a SQLAlchemy boolean expression on the table
    order_by: Any  # an expression or a list of them
    limit: int | None
    offset: int | None
    columns: Iterable[str] | None  # column names; default: all
    with_: Mapping[str, Any] | None  # relation name -> True or a dict of these options


def first_of(options: Mapping[str, Any]) -> QueryOptions:
    """The options of find_first: those of find_many, limited to one row."""
    return {**options, "limit": 1}  # type: ignore[typeddict-item]


@dataclass(frozen=True)
class Plan:
    """One query: the SELECT to send and the decoder of its rows."""

    statement: sa.Select[Any]
    decoder: Decoder


class Planner:
    """The queries of one database's tables: relations from foreign keys, SELECTs cached by shape."""

    def __init__(self, tables: Mapping[str, sa.Table], dialect: sa.Dialect) -> None:
        self.tables = tables
        self.dialect = dialect
        self._relations: dict[str, dict[str, Relation]] | None = None
        # (table, columns, with_ shape) -> SELECT without where/order/limit, and its decoder
        self._shapes: dict[Any, tuple[sa.Select[Any], Decoder]] = {}
        # structure of find_many's options -> compiled SQL, bind names of the `where` values, decoder
        self._calls: LRUCache[Hashable, tuple[Compiled, list[str], Decoder]] = LRUCache(500)

    def relations(self) -> dict[str, dict[str, Relation]]:
        """Table name -> relation name -> Relation."""
        if self._relations is None:
            self._relations = relations_of(dict(self.tables))
        return self._relations

    def table(self, name: str) -> sa.Table:
        """One table by name; QueryError listing the tables when there is none."""
        if name not in self.tables:
            raise QueryError(f"no table {name!r}; tables: {', '.join(sorted(self.tables)) or 'none'}")
        return self.tables[name]

    def plan(self, table: sa.Table, spec: Mapping[str, Any]) -> Plan:
        """The SELECT of find_many on table with these options (one statement for the whole tree)."""
        key = _shape_key(table, spec.get("columns"), spec.get("with_"))
        cached = self._shapes.get(key) if key is not None else None
        if cached is None:
            names = _column_names(table, spec.get("columns"))
            nested, decoders = self._nested(table, table, spec.get("with_"), frozenset({table.name}))
            base = sa.select(*(table.c[n] for n in names), *(expr.label(n) for n, expr in nested.items()))
            cached = (base, Decoder(table, names, decoders))
            if key is not None:
                self._shapes[key] = cached
        base, decoder = cached
        return Plan(_apply(base, spec, table, table), decoder)

    def call(self, table: sa.Table, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any], Decoder]:
        """SQL text, parameters and row decoder of find_many on table with these options.

        Compiled once per structure of the options (the shape of the tree, of `where` and of
        `order_by`, the limit and offset); a call of a known structure only binds the values of its
        `where`, without building or compiling a statement.
        """
        where = spec.get("where")
        where_key = statement_key(where) if where is not None else (None, (), None)
        key = _call_key(table, spec, where_key)
        known = self._calls.get(key) if key is not None else None
        if known is not None and where_key is not None:
            compiled, names, decoder = known
            values = {name: bind.effective_value for name, bind in zip(names, where_key[1], strict=True)}
            sql, params = compiled.render(values)
            return sql, params, decoder
        plan = self.plan(table, spec)
        compiled = Compiled(plan.statement, self.dialect)
        if key is not None and where_key is not None:
            found = compiled.names_of(where_key[1])
            if found is not None:
                self._calls[key] = (compiled, found, plan.decoder)
        sql, params = compiled.render()
        return sql, params, plan.decoder

    def _nested(
        self, table: sa.Table, source: sa.FromClause, with_: Mapping[str, Any] | None, used: frozenset[str]
    ) -> tuple[dict[str, sa.ColumnElement[Any]], dict[str, Decoder]]:
        exprs: dict[str, sa.ColumnElement[Any]] = {}
        decoders: dict[str, Decoder] = {}
        if not with_:
            return exprs, decoders
        known = self.relations()[table.name]
        for name, option in with_.items():
            if name not in known:
                raise QueryError(
                    f"{table.name} has no relation {name!r}; relations: {', '.join(sorted(known)) or 'none'}"
                )
            spec = _spec(option, f"{table.name}.{name}")
            exprs[name], decoders[name] = self._relation_json(known[name], source, spec, used)
        return exprs, decoders

    def _relation_json(
        self, relation: Relation, source: sa.FromClause, spec: Mapping[str, Any], used: frozenset[str]
    ) -> tuple[sa.ColumnElement[Any], Decoder]:
        target = relation.target
        # A table already in the enclosing queries (self-reference, or back to the root) needs an alias of its
        # own at every level: anonymous, so SQLAlchemy numbers them apart.
        rows: sa.FromClause = target.alias() if target.name in used else target
        names = _column_names(target, spec.get("columns"))
        nested, decoders = self._nested(target, rows, spec.get("with_"), used | {target.name})
        values = {n: _json_ready(rows.c[n]) for n in names} | nested
        order = [_rebind(o, target, rows) for o in _as_list(spec.get("order_by"))] or list(
            rows.c[c.name] for c in target.primary_key.columns
        )
        joined = [rows.c[t] == source.c[s] for s, t in relation.pairs]
        where = [_rebind(spec["where"], target, rows)] if spec.get("where") is not None else []
        decoder = Decoder(target, names, decoders, many=relation.many)
        if not relation.many:
            obj = _json_object(values)
            return sa.select(obj).where(*joined, *where).correlate(source).scalar_subquery(), decoder
        if spec.get("limit") is None and spec.get("offset") is None:
            agg = sa.func.json_agg(aggregate_order_by(_json_object(values), *order))
            value = sa.select(sa.func.coalesce(agg, sa.text("'[]'::json"))).where(*joined, *where)
            return value.correlate(source).scalar_subquery(), decoder
        # LIMIT/OFFSET apply to the related rows: number them in a subquery, aggregate in that order.
        inner = (
            sa.select(*(v.label(n) for n, v in values.items()), sa.func.row_number().over(order_by=order).label(_RN))
            .where(*joined, *where).order_by(*order).limit(spec.get("limit")).offset(spec.get("offset"))
            .correlate(source).subquery()
        )
        agg = sa.func.json_agg(aggregate_order_by(_json_object({n: inner.c[n] for n in values}), inner.c[_RN]))
        value = sa.select(sa.func.coalesce(agg, sa.text("'[]'::json"))).select_from(inner)
        return value.scalar_subquery(), decoder


class Compiled:
    """A statement's SQL text for a dialect, and how values become the parameters psycopg is sent.

    Values are by bind name: the `bindparam("id")` placeholders of a prepared query, or the names
    `names_of` gives the bound values of a statement. Lists bound to `IN` (expanding parameters)
    are rendered per call.
    """

    def __init__(self, statement: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self._compiled = compiled
        self.sql = self._compiled.string
        self._expanding = bool(self._compiled.post_compile_params or self._compiled.literal_execute_params)
        self._defaults = dict(self._compiled.params)
        self._processors = {
            name: processor
            for name, bind in self._compiled.binds.items()
            if (processor := bind.type.bind_processor(dialect)) is not None
        }
        self._escaped = dict(getattr(self._compiled, "escaped_bind_names", {}) or {})

    def names_of(self, binds: Sequence[Any]) -> list[str] | None:
        """The names these bound parameters of the statement have in the SQL (None if one is not there)."""
        by_key = {bind.key: name for bind, name in self._compiled.bind_names.items()}
        names = [by_key.get(bind.key) for bind in binds]
        return None if None in names else cast("list[str]", names)

    def render(self, values: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """The SQL and the parameters to send: defaults, then values (by bind name), processed for the driver."""
        params = self._defaults | dict(values or {})
        sql: str = self.sql
        processors: Mapping[str, Callable[[Any], Any]] = self._processors
        if self._expanding:
            state = self._compiled.construct_expanded_state(params, escape_names=False)
            sql, params, processors = state.statement, dict(state.parameters), state.processors
        if processors or self._escaped:
            for name, processor in processors.items():
                if name in params:
                    params[name] = processor(params[name])
            for name, escaped in self._escaped.items():
                if name in params:
                    params[escaped] = params.pop(name)
        return sql, params


def _json_object(values: Mapping[str, sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    return sa.func.json_build_object(*chain.from_iterable((_key(n), v) for n, v in values.items()))


def _shape_key(table: sa.Table, columns: Iterable[str] | None, with_: Any) -> Any:
    """A hashable key for the parts of a query that fix its SELECT list, or None when not cacheable."""
    try:
        return (table.name, id(table), None if columns is None else tuple(columns), _freeze(with_))
    except TypeError:
        return None


def _call_key(table: sa.Table, spec: Mapping[str, Any], where_key: Any) -> Any:
    """A hashable key for the structure of find_many's options, or None when they cannot be cached."""
    shape = _shape_key(table, spec.get("columns"), spec.get("with_"))
    orders = tuple(expression_shape(o) if isinstance(o, sa.ClauseElement) else None
                   for o in _as_list(spec.get("order_by")))
    limit, offset = spec.get("limit"), spec.get("offset")
    if shape is None or where_key is None or None in orders or not _plain(limit) or not _plain(offset):
        return None
    return (shape, where_key[0], orders, limit, offset)


def _plain(value: Any) -> bool:
    return value is None or type(value) is int


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a with_ spec; TypeError when it holds values that must not be reused."""
    if value is None or value is True or isinstance(value, str | int):
        return value
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, sa.ClauseElement):
        shape = expression_shape(value)
        if shape is None:
            raise TypeError("an expression with bound values is not cached")
        return shape
    raise TypeError("not cacheable")


class Decoder:
    """Turns one result row (from the driver, or a related row from JSON) into Python values of the columns' types."""

    def __init__(self, table: sa.Table, names: Sequence[str], nested: Mapping[str, Decoder], many: bool = False):
        self.many = many
        self.nested = list(nested.items())
        converters = {n: _decoder_for(table.c[n].type) for n in names}
        # in JSON, every value that is not already of the column's Python type (UUID, datetime, Decimal, ...)
        self.json_converters = [(n, c) for n, c in converters.items() if c is not _same]
        # from the driver, only what psycopg does not return as a Python value itself (pgvector's text)
        self.native_converters = [(n, c) for n, c in converters.items() if c is parse_vector]

    def __call__(self, row: Mapping[Any, Any], native: bool = False) -> Row:
        """The row as a dict of Python values (a dict row is changed in place: it is the caller's own copy)."""
        out = row if type(row) is dict else dict(row)
        for name, convert in self.native_converters if native else self.json_converters:
            value = out[name]
            if value is not None:
                out[name] = convert(value)
        for name, decoder in self.nested:
            out[name] = decoder.decode_json(out[name])
        return out

    def rows(self, fetched: Iterable[Mapping[Any, Any]]) -> list[Row]:
        """The decoded rows of what a statement returned (driver values, relations as JSON)."""
        return [self(row, native=True) for row in fetched]

    def decode_json(self, value: Any) -> Any:
        """Decode the JSON of one related row (or a list of them)."""
        if self.many:
            return [self(item) for item in value or []]
        return None if value is None else self(value)


def _decoder_for(column_type: sa.types.TypeEngine[Any]) -> Callable[[Any], Any]:
    """How a value of the type comes back from JSON (or, for vectors, from psycopg's text) as psycopg returns it."""
    column_type = _underlying(column_type)
    if isinstance(column_type, Vector):
        return parse_vector
    if isinstance(column_type, sa.Enum):
        return _same  # a label, as text in JSON and from psycopg alike
    if isinstance(column_type, sa.ARRAY):
        item = _decoder_for(column_type.item_type)
        return lambda v: _decode_array(v, item)
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return _same
    return _DECODERS.get(python_type, _same)


def _decode_array(value: Any, item: Callable[[Any], Any]) -> Any:
    if isinstance(value, list):
        return [_decode_array(v, item) for v in value]
    return None if value is None else item(value)


def _text_loader(type_name: str) -> Callable[[Any], Any]:
    """psycopg's own loader of a type's text form (its C one when installed): values in JSON read as columns are."""
    oid = psycopg.postgres.types[type_name].oid
    load = psycopg.adapters.get_loader(oid, psycopg.pq.Format.TEXT)(oid).load  # type: ignore[misc]
    return lambda value: load(str(value).encode())


_DECODERS: dict[type, Callable[[Any], Any]] = {
    uuid.UUID: _text_loader("uuid"),
    dt.datetime: dt.datetime.fromisoformat,
    dt.date: dt.date.fromisoformat,
    dt.time: dt.time.fromisoformat,
    dt.timedelta: interval_from_text,
    Decimal: lambda v: Decimal(str(v)),
    float: float,
    bytes: lambda v: bytes.fromhex(str(v)[2:]),
}


def _same(value: Any) -> Any:
    return value


def _underlying(column_type: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    while isinstance(column_type, DOMAIN):
        column_type = column_type.data_type
    return column_type


def _json_ready(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Keep exact values through JSON: numeric and vector travel as text (arrays of numeric as text[])."""
    column_type = _underlying(column.type)
    item = _underlying(column_type.item_type) if isinstance(column_type, sa.ARRAY) else None
    if item is not None and _exact_number(item):
        return sa.cast(column, postgresql.ARRAY(sa.Text))
    if isinstance(column_type, Vector) or _exact_number(column_type):
        return sa.cast(column, sa.Text)
    return column


def _exact_number(column_type: sa.types.TypeEngine[Any]) -> bool:
    return isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float)


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
    if not any(
        isinstance(e, sa.Column) and e.table is not into and getattr(e.table, "name", None) == table.name
        for e in visitors.iterate(expr)
    ):
        return expr

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


def where_equal(table: sa.Table, values: Mapping[str, str]) -> sa.ColumnElement[bool] | None:
    """Build `col = value AND ...` from text values (as typed on a command line), converted per column type."""
    from pydb.seed.convert import InvalidValue, column_type, convert_text

    clauses = []
    for name, text in values.items():
        if name not in table.c:
            raise QueryError(f"{table.name} has no column {name!r}; columns: {', '.join(table.c.keys())}")
        column = table.c[name]
        try:
            value = convert_text(column, text)
        except InvalidValue as err:
            raise QueryError(f"{table.name}.{name}: {err}") from None
        # A domain column is compared as its base type (the value was converted to that type).
        base = column_type(column)
        clauses.append(sa.type_coerce(column, base) == sa.literal(value, base))
    return sa.and_(*clauses) if clauses else None
