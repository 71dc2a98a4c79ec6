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
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import visitors

from pydb.errors import QueryError, translate_driver_errors
from pydb.relations import Relation, relations_of
from pydb.tuning import expression_shape
from pydb.vector import Vector, parse_vector

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from pydb.config import Settings
    from pydb.database import Database

Row = dict[str, Any]
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


class QueryRoot:
    """`db.query`: one TableQuery per table, by attribute."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._relations: dict[str, dict[str, Relation]] | None = None
        # (table, columns, with_ shape) -> SELECT without where/order/limit, and its decoder
        self._shapes: dict[Any, tuple[sa.Select[Any], Decoder]] = {}

    def relations(self) -> dict[str, dict[str, Relation]]:
        """Table name → relation name → Relation."""
        if self._relations is None:
            self._relations = relations_of(self._db.tables)
        return self._relations

    def table(self, name: str) -> TableQuery:
        """The queries of one table, by name (QueryError listing the tables when there is none)."""
        tables = self._db.tables
        if name not in tables:
            raise QueryError(f"no table {name!r}; tables: {', '.join(sorted(tables)) or 'none'}")
        return TableQuery(self, tables[name])

    def __getattr__(self, name: str) -> TableQuery:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.table(name)

    def __dir__(self) -> list[str]:
        return sorted(self._db.tables)


class TableQuery:
    """Queries rooted at one table."""

    def __init__(self, root: QueryRoot, table: sa.Table) -> None:
        self._root = root
        self.table = table

    def statement(self, **options: Unpack[QueryOptions]) -> sa.Select[Any]:
        """Return the one SELECT that find_many would send."""
        stmt, _ = self._build(options)
        return stmt

    def find_many(self, *, connection: Connection | None = None, **options: Unpack[QueryOptions]) -> list[Row]:
        """Return the matching rows, each with the relations named in with_, in one round trip.

        Pass `connection` to read inside your own transaction; otherwise a pooled connection is used
        in autocommit mode (no BEGIN/ROLLBACK round trips for a read).
        """
        stmt, decode = self._build(options)
        if connection is not None:
            rows = connection.execute(stmt).mappings().all()
        else:
            with translate_driver_errors(self._root._db.url), self._root._db.read_engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
        return [decode(row, native=True) for row in rows]

    def find_first(self, *, connection: Connection | None = None, **options: Unpack[QueryOptions]) -> Row | None:
        """Return the first matching row with its relations, or None."""
        first: QueryOptions = {**options, "limit": 1}
        rows = self.find_many(connection=connection, **first)
        return rows[0] if rows else None

    def prepare(self, **options: Unpack[QueryOptions]) -> PreparedQuery:
        """Compile a query once, with `sqlalchemy.bindparam("name")` placeholders, for hot paths.

        `q = db.query.users.prepare(where=users.c.id == bindparam("id"))`, then `q.first(id=...)`
        or `q.all(id=...)`: the SQL is compiled once and sent as a server-side prepared statement
        (off on pooled hosts).
        """
        stmt, decode = self._build(options)
        return PreparedQuery(self._root._db, stmt, decode)

    # -- compilation -------------------------------------------------------------------------

    def _build(self, spec: Mapping[str, Any]) -> tuple[sa.Select[Any], Decoder]:
        table = self.table
        key = _shape_key(table, spec.get("columns"), spec.get("with_"))
        cached = self._root._shapes.get(key) if key is not None else None
        if cached is None:
            names = _column_names(table, spec.get("columns"))
            nested, decoders = self._nested(table, table, spec.get("with_"), frozenset({table.name}))
            base = sa.select(*(table.c[n] for n in names), *(expr.label(n) for n, expr in nested.items()))
            cached = (base, Decoder(table, names, decoders))
            if key is not None:
                self._root._shapes[key] = cached
        base, decoder = cached
        return _apply(base, spec, table, table), decoder

    def _nested(
        self, table: sa.Table, source: sa.FromClause, with_: Mapping[str, Any] | None, used: frozenset[str]
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
            exprs[name], decoders[name] = self._relation_json(known[name], source, spec, used)
        return exprs, decoders

    def _relation_json(
        self, relation: Relation, source: sa.FromClause, spec: Mapping[str, Any], used: frozenset[str]
    ) -> tuple[sa.ColumnElement[Any], Decoder]:
        target = relation.target
        # A table already in the enclosing queries (self-reference, or back to the root) needs an alias.
        rows: sa.FromClause = target.alias(f"{target.name}_{len(used)}") if target.name in used else target
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
            .correlate(source).subquery(f"{target.name}_{len(used)}_rows")
        )
        agg = sa.func.json_agg(aggregate_order_by(_json_object({n: inner.c[n] for n in values}), inner.c[_RN]))
        value = sa.select(sa.func.coalesce(agg, sa.text("'[]'::json"))).select_from(inner)
        return value.scalar_subquery(), decoder


def _json_object(values: Mapping[str, sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    return sa.func.json_build_object(*chain.from_iterable((_key(n), v) for n, v in values.items()))


class PreparedQuery:
    """A query compiled once; run it with values for its bindparam placeholders."""

    def __init__(self, db: Database, stmt: sa.Select[Any], decoder: Decoder) -> None:
        self._db = db
        self.statement = stmt
        self._decoder = decoder
        dialect = db.engine.dialect
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self._defaults = dict(compiled.params)
        self._processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.bind_processor(dialect)) is not None
        }
        self._escaped = dict(getattr(compiled, "escaped_bind_names", {}) or {})

    def all(self, **params: Any) -> list[Row]:
        """Return every matching row (with relations) for these parameter values."""
        values = self._defaults | params
        if self._processors or self._escaped:
            for name, processor in self._processors.items():
                values[name] = processor(values[name])
            for name, escaped in self._escaped.items():
                values[escaped] = values.pop(name)
        decode = self._decoder
        return [decode(row, native=True) for row in self._db.fetch_all(self.sql, values)]

    def first(self, **params: Any) -> Row | None:
        """Return the first matching row, or None."""
        rows = self.all(**params)
        return rows[0] if rows else None


def _shape_key(table: sa.Table, columns: Iterable[str] | None, with_: Any) -> Any:
    """A hashable key for the parts of a query that fix its SELECT list, or None when not cacheable."""
    try:
        return (table.name, id(table), None if columns is None else tuple(columns), _freeze(with_))
    except TypeError:
        return None


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
    """Turns one result value (a row, or JSON of rows) back into Python values of the columns' types."""

    def __init__(self, table: sa.Table, names: Sequence[str], nested: Mapping[str, Decoder], many: bool = False):
        self.many = many
        self.nested = dict(nested)
        self.columns = {n: _decoder_for(table.c[n].type) for n in names}
        # values the driver does not already return as Python types (pgvector arrives as text)
        self.native_converters = {n for n in names if isinstance(table.c[n].type, Vector)}

    def __call__(self, row: Mapping[Any, Any], native: bool = False) -> Row:
        if native and not self.nested and not self.native_converters:
            return row if type(row) is dict else dict(row)
        out: Row = {}
        for name, convert in self.columns.items():
            value = row[name]
            if value is not None and (not native or name in self.native_converters):
                value = convert(value)
            out[name] = value
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


def find_rows(
    table: str, equal: Mapping[str, str], relations: Iterable[str] = (), *, limit: int = 1,
    url: str | None = None, settings: Settings | None = None,
) -> list[Row]:
    """Rows of a table whose columns equal text values (as typed on a command line), with relations."""
    from pydb.database import connect

    db = connect(url, settings=settings)
    try:
        query = db.query.table(table)
        return query.find_many(where=where_equal(query.table, equal), limit=limit,
                               with_={name: True for name in relations})
    finally:
        db.dispose()
