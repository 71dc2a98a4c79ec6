"""Reading for the studio's pages: row counts, filtered and sorted pages by keyset, one row and its relations.

Pages are keyset-paginated: rows are ordered by (sort column, primary key) and a page starts after
(or ends before) the key of a row, so every page costs the same however deep it is. PostgreSQL's
NULL placement is kept: NULLs come last in ascending order and first in descending order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pydb.database import Database
from pydb.errors import translate_driver_errors
from pydb.relations import Relation
from pydb.seed.convert import InvalidValue, convert_text
from pydb.studio.values import decode_cursor, encode_cursor, has_converter, text_of

__all__ = [
    "COUNT_LIMIT", "OPERATORS", "PAGE_SIZE", "Choices", "Count", "Filter", "Page", "View", "child_filter",
    "conditions", "key_condition", "label_column", "parent_choices", "read_page", "read_row", "relation_counts",
    "stream_rows", "table_counts",
]

PAGE_SIZE = 50
COUNT_LIMIT = 10_000
EXPORT_BATCH = 2_000
OPERATORS = {
    "eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥",
    "contains": "contains", "starts": "starts with", "null": "is NULL", "notnull": "is not NULL",
}
_NO_VALUE = frozenset({"null", "notnull"})
_LABELS = ("name", "title", "email", "label", "username", "slug")


@dataclass(frozen=True)
class Filter:
    """One condition of a table page: column, operator (a key of OPERATORS) and the value as typed."""

    column: str
    op: str
    value: str = ""


@dataclass(frozen=True)
class View:
    """What a table page shows: its filters and its order; it round-trips through the page's URL."""

    filters: tuple[Filter, ...] = ()
    sort: str | None = None
    descending: bool = False

    def params(self, *, without: int | None = None) -> list[tuple[str, str]]:
        """The URL query items of this view (leaving out the filter at index `without`)."""
        items: list[tuple[str, str]] = []
        for i, f in enumerate(self.filters):
            if i != without:
                items += [("col", f.column), ("op", f.op), ("val", f.value)]
        if self.sort:
            items.append(("sort", self.sort))
        if self.descending:
            items.append(("dir", "desc"))
        return items

    @classmethod
    def parse(cls, table: sa.Table, columns: Sequence[str], ops: Sequence[str], values: Sequence[str],
              sort: str | None, direction: str | None) -> tuple[View, list[str]]:
        """Read a view from URL query values; unknown columns or operators are dropped and reported."""
        problems: list[str] = []
        filters = []
        for i, name in enumerate(columns):
            op = ops[i] if i < len(ops) else "eq"
            value = values[i] if i < len(values) else ""
            if name not in table.c:
                problems.append(f"{table.name} has no column {name!r}")
            elif op not in OPERATORS:
                problems.append(f"unknown operator {op!r}; operators: {', '.join(OPERATORS)}")
            else:
                filters.append(Filter(name, op, "" if op in _NO_VALUE else value))
        if sort and (sort not in table.c or not has_converter(table.c[sort])):
            problems.append(f"cannot sort {table.name} by {sort!r}")
            sort = None
        return cls(tuple(filters), sort or None, direction == "desc"), problems


@dataclass(frozen=True)
class Page:
    """One page of rows and the cursors of its neighbours (None: no such page)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    first: bool = True


@dataclass(frozen=True)
class Count:
    """How many rows a table has: exact up to COUNT_LIMIT, else the planner's estimate (or unknown)."""

    rows: int | None
    estimated: bool = False

    def __str__(self) -> str:
        if self.rows is None:
            return f"more than {COUNT_LIMIT:,}"
        return f"≈ {self.rows:,}" if self.estimated else f"{self.rows:,}"


def conditions(table: sa.Table, filters: Sequence[Filter]) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of filters; InvalidValue names the column whose value does not fit."""
    out: list[sa.ColumnElement[bool]] = []
    for f in filters:
        column = table.c[f.column]
        if f.op == "null":
            out.append(column.is_(None))
        elif f.op == "notnull":
            out.append(column.is_not(None))
        elif f.op in ("contains", "starts"):
            pattern = f.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{pattern}%" if f.op == "contains" else f"{pattern}%"
            out.append(sa.cast(column, sa.Text).ilike(pattern, escape="\\"))
        else:
            left: sa.ColumnElement[Any] = column
            value: Any = f.value
            if has_converter(column):
                try:
                    value = convert_text(column, f.value)
                except InvalidValue as err:
                    raise InvalidValue(f"{f.column}: {err}") from None
            else:
                left = sa.cast(column, sa.Text)  # types without a converter compare as text
            out.append(left.operate(_COMPARE[f.op], value))
    return out


_COMPARE = {
    "eq": sa.sql.operators.eq, "ne": sa.sql.operators.ne, "lt": sa.sql.operators.lt,
    "le": sa.sql.operators.le, "gt": sa.sql.operators.gt, "ge": sa.sql.operators.ge,
}


def _keys(table: sa.Table, view: View) -> tuple[sa.Column[Any] | None, list[sa.Column[Any]]]:
    """The sort column (None when the primary key is the order) and the key columns that break ties."""
    primary = list(table.primary_key.columns)
    sort = table.c[view.sort] if view.sort else None
    if sort is None or (len(primary) == 1 and sort is primary[0]):
        return None, primary
    return sort, [c for c in primary if c is not sort]


def _order(sort: sa.Column[Any] | None, keys: Sequence[sa.Column[Any]], descending: bool) -> list[Any]:
    columns = ([sort] if sort is not None else []) + list(keys)
    return [c.desc().nulls_first() if descending else c.asc().nulls_last() for c in columns]


def _after(sort: sa.Column[Any] | None, keys: Sequence[sa.Column[Any]], values: Sequence[Any],
           descending: bool) -> sa.ColumnElement[bool]:
    """Rows that come after the key `values` in the order `_order(sort, keys, descending)`."""
    key_values = values[1:] if sort is not None else values
    row, bound = sa.tuple_(*keys), sa.tuple_(*key_values)
    later_key = row < bound if descending else row > bound
    if sort is None:
        return later_key
    nulls_last = not descending
    value = values[0]
    if value is None:
        same = sa.and_(sort.is_(None), later_key)
        return same if nulls_last else sa.or_(sort.is_not(None), same)
    # `sort >= value` first, so an index on the sort column bounds the scan.
    beyond = sort < value if descending else sort > value
    reached = sort <= value if descending else sort >= value
    after = sa.and_(reached, sa.or_(beyond, later_key))
    if nulls_last and sort.nullable:
        after = sa.or_(after, sort.is_(None))
    return after


def read_page(db: Database, table: sa.Table, view: View, *, after: str | None = None, before: str | None = None,
              last: bool = False, size: int = PAGE_SIZE) -> Page:
    """One page of a table's rows in the view's order: the first, the one after/before a cursor, or the last."""
    where = conditions(table, view.filters)
    stmt = sa.select(table).where(*where)
    if not table.primary_key.columns:  # no key to page by: the first rows only
        order = [table.c[view.sort].desc() if view.descending else table.c[view.sort]] if view.sort else []
        with translate_driver_errors(db.url), db.read_engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt.order_by(*order).limit(size)).mappings()]
        return Page(rows)
    sort, keys = _keys(table, view)
    cursor_columns = ([sort] if sort is not None else []) + keys
    backwards = before is not None or last
    descending = view.descending != backwards
    cursor = after if after is not None else before
    if cursor is not None:
        stmt = stmt.where(_after(sort, keys, decode_cursor(cursor_columns, cursor), descending))
    stmt = stmt.order_by(*_order(sort, keys, descending)).limit(size + 1)
    with translate_driver_errors(db.url), db.read_engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, before is not None
    else:
        has_prev, has_next = after is not None, more

    def cursor_of(row: Mapping[str, Any]) -> str:
        return encode_cursor([row[c.name] for c in cursor_columns])

    return Page(
        rows,
        next_cursor=cursor_of(rows[-1]) if rows and has_next else None,
        prev_cursor=cursor_of(rows[0]) if rows and has_prev else None,
        first=not has_prev,
    )


def stream_rows(db: Database, table: sa.Table, view: View) -> Iterator[list[dict[str, Any]]]:
    """Every row of a view, in its order, in batches (a server-side cursor: memory stays flat)."""
    stmt = sa.select(table).where(*conditions(table, view.filters))
    sort, keys = _keys(table, view) if table.primary_key.columns else (None, [])
    if view.sort and not table.primary_key.columns:
        sort = table.c[view.sort]
    stmt = stmt.order_by(*_order(sort, keys, view.descending))
    with translate_driver_errors(db.url), db.connect() as conn:
        result = conn.execution_options(yield_per=EXPORT_BATCH).execute(stmt).mappings()
        for batch in result.partitions():
            yield [dict(r) for r in batch]


def _bounded_count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    """count(*) of at most COUNT_LIMIT + 1 rows: constant cost, exact below the limit."""
    rows = sa.select(sa.literal(1)).select_from(table).where(*where).limit(COUNT_LIMIT + 1).subquery()
    return sa.select(sa.func.count()).select_from(rows).scalar_subquery()


def table_counts(db: Database, tables: Sequence[sa.Table]) -> dict[str, Count]:
    """Rows per table: exact up to COUNT_LIMIT, the planner's estimate (pg_class.reltuples) above it."""
    if not tables:
        return {}
    counts = sa.select(*(_bounded_count(t).label(f"t{i}") for i, t in enumerate(tables)))
    estimates = sa.text(
        "SELECT relname, reltuples::bigint FROM pg_class WHERE relnamespace = to_regnamespace(:schema)"
        " AND relname = ANY(:names)"
    ).bindparams(schema=db.schema, names=[t.name for t in tables])
    with translate_driver_errors(db.url), db.read_engine.connect() as conn:
        exact = conn.execute(counts).one()
        planned: dict[str, int] = {name: rows for name, rows in conn.execute(estimates)}
    out = {}
    for i, t in enumerate(tables):
        if exact[i] <= COUNT_LIMIT:
            out[t.name] = Count(exact[i])
        else:
            estimate = planned.get(t.name, -1)
            out[t.name] = Count(estimate, estimated=True) if estimate > COUNT_LIMIT else Count(None)
    return out


def key_condition(table: sa.Table, key: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`primary key = key` for a table."""
    return sa.and_(*(c == v for c, v in zip(table.primary_key.columns, key, strict=True)))


def read_row(db: Database, table: sa.Table, key: Sequence[Any], to_one: Sequence[str]) -> dict[str, Any] | None:
    """One row by primary key, with its to-one relations (the parent rows), in one query."""
    query = db.query.table(table.name)
    return query.find_first(where=key_condition(table, key), with_=dict.fromkeys(to_one, True))


def relation_counts(db: Database, row: Mapping[str, Any], relations: Sequence[Relation]) -> dict[str, int]:
    """How many rows each to-many relation of a row holds (at most COUNT_LIMIT + 1), in one query."""
    if not relations:
        return {}
    stmt = sa.select(*(
        _bounded_count(r.target, *(r.target.c[t] == row[s] for s, t in r.pairs)).label(r.name) for r in relations
    ))
    with translate_driver_errors(db.url), db.read_engine.connect() as conn:
        return dict(conn.execute(stmt).one()._mapping)


def child_filter(relation: Relation, row: Mapping[str, Any]) -> View:
    """The view of the related table that shows the rows a relation of `row` points at."""
    return View(tuple(Filter(t, "eq", text_of(row[s])) for s, t in relation.pairs if row[s] is not None))


def label_column(table: sa.Table) -> str | None:
    """The column that names a row for people (name, title, email, ...), if the table has one."""
    return next((n for n in _LABELS if n in table.c), None)


@dataclass(frozen=True)
class Choices:
    """The rows a foreign key column can point at, when there are few enough for a list."""

    options: list[tuple[Any, str]] = field(default_factory=list)  # (key value, label)


def parent_choices(db: Database, relation: Relation, limit: int = 100) -> Choices | None:
    """Key and label of every row of a one-column relation's parent table, or None above `limit` rows."""
    if len(relation.pairs) != 1:
        return None
    target = relation.target.c[relation.pairs[0][1]]
    label = label_column(relation.target)
    label_col = relation.target.c[label] if label else target
    stmt = sa.select(target, label_col).order_by(label_col, target).limit(limit + 1)
    with translate_driver_errors(db.url), db.read_engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if len(rows) > limit:
        return None
    return Choices([(key, text_of(name) if name is not None else "NULL") for key, name in rows])
