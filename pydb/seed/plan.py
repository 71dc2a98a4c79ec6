"""Plan a seed load: foreign-key order of the tables, how each row is found again, stable keys."""

from __future__ import annotations

import itertools
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydb.catalog import PARTITIONED
from pydb.errors import SeedProblem
from pydb.seed.rows import CheckedRow, Ref
from pydb.seed.spool import Spool

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SEED_NAMESPACE", "RowGroup", "SeedPlan", "TablePlan", "TablePlanner", "fk_order"]

# Namespace of the UUIDv5 keys pydb derives for rows without an explicit primary key.
SEED_NAMESPACE = uuid.UUID("5eed5eed-0d0b-4c1e-9a5e-000000000001")


@dataclass(slots=True)
class RowGroup:
    """Rows of one table that set the same columns and are matched the same way: one statement."""

    columns: tuple[str, ...]
    match: str  # "pk" (given or derived from _id), "unique" or "content"
    key: tuple[str, ...]  # the columns the row is matched on (conflict target or unique key)
    count: int = 0  # rows of the file in this group
    rows: Spool | list[CheckedRow] | None = None  # the rows still to write, or None
    copy_data: list[tuple[int, int]] | None = None  # or their COPY text: (offset, length) in a cache's data file


@dataclass(slots=True)
class TablePlan:
    """How one table is loaded: its groups of rows and the facts the writer needs."""

    name: str
    path: str  # the file its rows are in
    line: int
    column: int
    table: sa.Table | None  # None for a plan read back from the seed cache: the facts below are all it needs
    uuid_pk: str | None  # the single uuid primary key column pydb can derive keys for
    pk: tuple[str, ...]
    has_updated_at: bool
    self_ref_columns: tuple[str, ...]
    groups: list[RowGroup] = field(default_factory=list)
    partitioned: bool = False  # no system columns (xmax) in RETURNING on a partitioned table
    sequence_columns: tuple[str, ...] = ()  # columns filled from a sequence (identity, or a nextval() default)
    domain_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> its domain (schema, name)

    @property
    def row_count(self) -> int:
        """Number of rows of this table in the seed file."""
        return sum(g.count for g in self.groups)

    def parents(self) -> list[str]:
        """The other tables this table's foreign keys point at, by name."""
        seen: list[str] = []
        for fk in sorted(self.table.foreign_keys if self.table is not None else (), key=lambda f: f.parent.name):
            target = fk.column.table.name
            if target != self.name and target not in seen:
                seen.append(target)
        return seen


@dataclass(slots=True)
class SeedPlan:
    """Tables in foreign-key order, with their groups of rows."""

    path: str
    tables: list[TablePlan]

    @property
    def row_count(self) -> int:
        """Number of rows in the seed file."""
        return sum(t.row_count for t in self.tables)


def fk_order(path: str, plans: list[TablePlan], problems: list[SeedProblem]) -> list[TablePlan]:
    """Tables ordered parents first (file order among equals); a cycle is a problem naming it."""
    by_name = {p.name: p for p in plans}
    parents = {p.name: [t for t in p.parents() if t in by_name] for p in plans}
    done: list[TablePlan] = []
    placed: set[str] = set()
    remaining = [p.name for p in plans]
    while remaining:
        ready = [n for n in remaining if all(p in placed for p in parents[n])]
        if not ready:
            cycle = _find_cycle(remaining, parents)
            first = by_name[cycle[0]]
            links = ", ".join(
                f"{a}.{_fk_columns(by_name[a].table, b)} -> {b}" for a, b in itertools.pairwise(cycle)
            )
            problems.append(SeedProblem(
                path, first.line, first.column,
                f"foreign keys form a cycle: {' -> '.join(cycle)} ({links}); "
                f"seed these tables from separate files, or drop one of these foreign keys",
            ))
            return done + [by_name[n] for n in remaining]
        for name in ready:
            done.append(by_name[name])
            placed.add(name)
        remaining = [n for n in remaining if n not in placed]
    return done


def _find_cycle(names: list[str], parents: dict[str, list[str]]) -> list[str]:
    """A cycle among names (each depends on the next), as [a, b, ..., a], starting at the first in file order."""
    pending = set(names)
    for start in names:
        stack = [start]
        path_index = {start: 0}
        iters = [iter(p for p in parents[start] if p in pending)]
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                iters.pop()
                path_index.pop(stack.pop())
                continue
            if nxt in path_index:
                return [*stack[path_index[nxt]:], nxt]
            path_index[nxt] = len(stack)
            stack.append(nxt)
            iters.append(iter(p for p in parents[nxt] if p in pending))
    return [names[0], names[0]]


def _fk_columns(table: sa.Table | None, target: str) -> str:
    keys = table.foreign_keys if table is not None else ()
    cols = sorted({fk.parent.name for fk in keys if fk.column.table.name == target})
    return ",".join(cols)


def _unique_keys(table: sa.Table) -> list[tuple[str, ...]]:
    """Unique constraints and plain unique indexes (no expressions, no WHERE), primary key excluded."""
    import sqlalchemy as sa

    pk = tuple(c.name for c in table.primary_key.columns)
    found: dict[tuple[str, ...], str] = {}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and not isinstance(constraint, sa.PrimaryKeyConstraint):
            cols = tuple(c.name for c in constraint.columns)
            if cols:
                found.setdefault(cols, str(constraint.name or ""))
    for index in table.indexes:
        if not index.unique or index.dialect_options["postgresql"].get("where") is not None:
            continue
        if any(not isinstance(e, sa.Column) for e in index.expressions):
            continue
        cols = tuple(c.name for c in index.columns)
        if cols:
            found.setdefault(cols, str(index.name or ""))
    return [cols for cols, _name in sorted(found.items(), key=lambda kv: (kv[1], kv[0])) if cols != pk]


def canonical(value: Any) -> str:
    """A stable text form of a seed value, for derived keys and duplicate detection."""
    kind = type(value)
    if kind is str:
        return f"s:{value}"
    if kind is Ref:
        return f"ref:{value.name}"
    if value is None:
        return "null"
    if kind is bool:
        return f"bool:{value}"
    if kind is Decimal or kind is int or kind is float:
        return f"num:{Decimal(str(value)).normalize()}"
    return f"{kind.__name__}:{value}"


_GroupKey = tuple[tuple[str, ...], str, tuple[str, ...]]
_KeyOf = Callable[[dict[str, Any]], tuple[Any, ...]]
_Seen = dict[tuple[Any, ...], tuple[int, int]]


class TablePlanner:
    """Plans one table's rows as they come: the match key of each, derived keys, duplicates, groups."""

    def __init__(self, name: str, path: str, line: int, column: int, table: sa.Table,
                 problems: list[SeedProblem]) -> None:
        import sqlalchemy as sa
        from sqlalchemy.dialects.postgresql import DOMAIN

        pk = tuple(c.name for c in table.primary_key.columns)
        pk_cols = list(table.primary_key.columns)
        self.uuid_pk = pk_cols[0].name if len(pk_cols) == 1 and isinstance(pk_cols[0].type, sa.Uuid) else None
        self.uniques = _unique_keys(table)
        self_refs = tuple(sorted({fk.parent.name for fk in table.foreign_keys if fk.column.table.name == table.name}))
        sequences = tuple(c.name for c in table.columns if c.identity is not None
                          or "nextval" in str(getattr(c.server_default, "arg", "")))
        domains = {c.name: tuple(part for part in (c.type.schema, c.type.name) if part)
                   for c in table.columns if isinstance(c.type, DOMAIN)}
        self.plan = TablePlan(name, path, line, column, table, self.uuid_pk, pk, "updated_at" in table.columns,
                              self_refs, partitioned=bool(table.info.get(PARTITIONED)), sequence_columns=sequences,
                              domain_columns=domains)
        self.pk = pk
        self.path = path
        self.problems = problems
        self.order = {c.name: i for i, c in enumerate(table.columns)}
        self.groups: dict[_GroupKey, RowGroup] = {}
        self.seen: dict[tuple[str, ...], _Seen] = {}  # by columns: the rows' values there -> the first row
        self.sorted_columns: dict[tuple[str, ...], tuple[str, ...]] = {}
        # (columns given, has an _id) -> how such rows are matched, their group, their key and the keys seen
        self.shapes: dict[tuple[tuple[str, ...], bool], tuple[str, RowGroup, _KeyOf, _Seen]] = {}
        self._match = ""  # how the row planned last is matched

    def _duplicate(self, cols: tuple[str, ...], values: tuple[Any, ...], row: CheckedRow, what: str | None) -> None:
        seen = self.seen.get(cols)
        if seen is None:
            seen = self.seen[cols] = {}
        at = (row.line, row.column)
        try:
            first = seen.setdefault(values, at)
        except TypeError:  # lists (array columns) are not hashable
            first = seen.setdefault(_hashable(values), at)
        if first is not at:
            self._report(cols, row, first, what)

    def _report(self, cols: tuple[str, ...], row: CheckedRow, first: tuple[int, int], what: str | None) -> None:
        where = f"{self.path}:{first[0]}:{first[1]}"
        name = self.plan.name
        if what is None:
            message = f"{name}: duplicate row: the same values as the row at {where}"
        else:
            shown = ", ".join(_short(row.values[c]) for c in cols)
            message = (f"{name}: duplicate row: {what} ({', '.join(cols)}) = ({shown}) "
                       f"is already used by the row at {where}")
        self.problems.append(SeedProblem(self.path, row.line, row.column, message))

    def add(self, row: CheckedRow) -> RowGroup:
        """Plan one row (deriving its key when it has none) and return its group."""
        if self.uniques:
            return self._add(row)
        # Without unique keys, how a row is matched depends only on which columns it sets and on its `_id`.
        values = row.values
        shape = (tuple(values), row.name is not None)
        known = self.shapes.get(shape)
        if known is None:
            group = self._add(row)
            columns = group.columns if self._match == "content" else self.pk
            self.shapes[shape] = (self._match, group, _getter(columns), self.seen.setdefault(columns, {}))
            return group
        match, group, key_of, seen = known
        if match == "id":
            assert self.uuid_pk is not None
            values[self.uuid_pk] = uuid.uuid5(SEED_NAMESPACE, f"{self.plan.name}\x1f_id\x1f{row.name}")
        at = (row.line, row.column)
        try:  # the row's key among those of its kind (its content, or its primary key): a duplicate is found
            first = seen.setdefault(key_of(values), at)
        except TypeError:
            first = seen.setdefault(_hashable(key_of(values)), at)
        if first is not at:
            self._report(group.columns if match == "content" else self.pk, row, first,
                         None if match == "content" else "primary key")
        group.count += 1
        return group

    def _add(self, row: CheckedRow) -> RowGroup:
        values = row.values
        pk, uuid_pk = self.pk, self.uuid_pk
        unique_set: list[tuple[str, ...]] = []
        if self.uniques:
            unique_set = [u for u in self.uniques if all(values.get(c) is not None for c in u)]
            for u in unique_set:
                self._duplicate(u, _key(values, u), row, "unique key")
        has_pk = bool(pk) and all(c in values for c in pk)
        if has_pk:
            match, key = "pk", pk
        elif unique_set:
            match, key = "unique", unique_set[0]
        elif row.name is not None and uuid_pk:
            match, key = "id", pk
        else:
            match, key = "content", ()
        if uuid_pk and not has_pk and match != "content":
            if row.name is not None:
                basis = f"{self.plan.name}\x1f_id\x1f{row.name}"
            else:
                basis = f"{self.plan.name}\x1f{','.join(key)}\x1f" + "\x1f".join(canonical(values[c]) for c in key)
            values[uuid_pk] = uuid.uuid5(SEED_NAMESPACE, basis)
        given = tuple(values)
        columns = self.sorted_columns.get(given)
        if columns is None:
            columns = self.sorted_columns[given] = tuple(sorted(given, key=self.order.__getitem__))
        if match == "content":
            self._duplicate(columns, _key(values, columns), row, None)
        elif uuid_pk or has_pk:
            self._duplicate(pk, _key(values, pk), row, "primary key")
        group_key: _GroupKey
        if match == "content":
            group_key = (columns, "content", ())
        elif uuid_pk:
            group_key = (columns, "unique", key) if match == "unique" else (columns, "pk", pk)
        else:
            group_key = (columns, match, key)
        group = self.groups.get(group_key)
        if group is None:
            group = self.groups[group_key] = RowGroup(columns, group_key[1], group_key[2])
        group.count += 1
        self._match = match
        return group

    def finish(self) -> TablePlan:
        """The table's plan, once its last row is planned (what was kept to find duplicates is let go)."""
        self.seen = {}
        self.shapes = {}
        plan = self.plan
        plan.groups = list(self.groups.values())
        if plan.self_ref_columns:
            # Rows that point at other rows of their own table go after the rows that do not (tree roots).
            plan.groups.sort(key=lambda g: any(c in g.columns for c in plan.self_ref_columns))
        return plan


def _getter(columns: tuple[str, ...]) -> _KeyOf:
    """A function giving the values of some columns as a tuple."""
    if len(columns) == 1:
        only = columns[0]
        return lambda values: (values[only],)
    getter: _KeyOf = operator.itemgetter(*columns)
    return getter


def _key(values: dict[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...]:
    """The values of some columns as a tuple."""
    return tuple([values[c] for c in columns])


def _hashable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as a hashable tuple (lists of array columns as their text)."""
    return tuple(canonical(v) if not isinstance(v, list) else repr(v) for v in values)


def _short(value: Any) -> str:
    text = f"!ref {value.name}" if isinstance(value, Ref) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
