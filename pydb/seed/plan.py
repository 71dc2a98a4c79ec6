"""Plan a seed load: foreign-key order of the tables, how each row is found again, stable keys."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pydb.errors import SeedProblem
from pydb.reflect import PARTITIONED
from pydb.seed.validate import CheckedRow, CheckedTable, Ref

__all__ = ["SEED_NAMESPACE", "RowGroup", "SeedPlan", "TablePlan", "plan_seed"]

# Namespace of the UUIDv5 keys pydb derives for rows without an explicit primary key.
SEED_NAMESPACE = uuid.UUID("5eed5eed-0d0b-4c1e-9a5e-000000000001")


@dataclass(slots=True)
class RowGroup:
    """Rows of one table that set the same columns and are matched the same way: one statement."""

    columns: tuple[str, ...]
    match: str  # "pk" (given or derived from _id), "unique" or "content"
    key: tuple[str, ...]  # the columns the row is matched on (conflict target or unique key)
    rows: list[CheckedRow] = field(default_factory=list)


@dataclass(slots=True)
class TablePlan:
    """How one table is loaded: its groups of rows and the facts the writer needs."""

    name: str
    line: int
    column: int
    table: sa.Table
    uuid_pk: str | None  # the single uuid primary key column pydb can derive keys for
    pk: tuple[str, ...]
    has_updated_at: bool
    self_ref_columns: tuple[str, ...]
    groups: list[RowGroup] = field(default_factory=list)
    partitioned: bool = False  # no system columns (xmax) in RETURNING on a partitioned table

    @property
    def row_count(self) -> int:
        """Number of rows of this table in the seed file."""
        return sum(len(g.rows) for g in self.groups)


@dataclass(slots=True)
class SeedPlan:
    """Tables in foreign-key order and the primary key of every named row, known before any write."""

    path: str
    tables: list[TablePlan]
    keys: dict[str, Any]  # _id -> primary key value
    key_table: dict[str, str]  # _id -> table name

    @property
    def row_count(self) -> int:
        """Number of rows in the seed file."""
        return sum(t.row_count for t in self.tables)


def plan_seed(path: str, checked: list[CheckedTable]) -> tuple[SeedPlan, list[SeedProblem]]:
    """Order tables by foreign keys, pick each row's match key and derive stable keys; collect problems."""
    problems: list[SeedProblem] = []
    ordered = _fk_order(path, checked, problems)
    keys: dict[str, Any] = {}
    key_table: dict[str, str] = {}
    plans = []
    for item in ordered:
        plan = _table_plan(path, item, problems)
        plans.append(plan)
        for group in plan.groups:
            for row in group.rows:
                if row.name is not None and plan.pk and len(plan.pk) == 1 and plan.pk[0] in row.values:
                    keys[row.name] = row.values[plan.pk[0]]
                    key_table[row.name] = plan.name
    return SeedPlan(path, plans, keys, key_table), problems


def _fk_order(path: str, checked: list[CheckedTable], problems: list[SeedProblem]) -> list[CheckedTable]:
    by_name = {c.name: c for c in checked}
    parents: dict[str, list[str]] = {}
    for c in checked:
        seen: list[str] = []
        for fk in sorted(c.table.foreign_keys, key=lambda f: f.parent.name):
            target = fk.column.table.name
            if target in by_name and target != c.name and target not in seen:
                seen.append(target)
        parents[c.name] = seen
    done: list[CheckedTable] = []
    placed: set[str] = set()
    remaining = [c.name for c in checked]
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


def _fk_columns(table: sa.Table, target: str) -> str:
    cols = sorted({fk.parent.name for fk in table.foreign_keys if fk.column.table.name == target})
    return ",".join(cols)


def _unique_keys(table: sa.Table) -> list[tuple[str, ...]]:
    """Unique constraints and plain unique indexes (no expressions, no WHERE), primary key excluded."""
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


def _table_plan(path: str, item: CheckedTable, problems: list[SeedProblem]) -> TablePlan:
    table = item.table
    pk = tuple(c.name for c in table.primary_key.columns)
    pk_cols = list(table.primary_key.columns)
    uuid_pk = pk_cols[0].name if len(pk_cols) == 1 and isinstance(pk_cols[0].type, sa.Uuid) else None
    uniques = _unique_keys(table)
    self_refs = tuple(sorted({fk.parent.name for fk in table.foreign_keys if fk.column.table.name == table.name}))
    plan = TablePlan(item.name, item.line, item.column, table, uuid_pk, pk,
                     "updated_at" in table.columns, self_refs, partitioned=bool(table.info.get(PARTITIONED)))
    order = {c.name: i for i, c in enumerate(table.columns)}
    groups: dict[tuple[tuple[str, ...], str, tuple[str, ...]], RowGroup] = {}
    seen_keys: dict[tuple[tuple[str, ...], tuple[Any, ...]], CheckedRow] = {}

    def duplicate(cols: tuple[str, ...], values: tuple[Any, ...], row: CheckedRow, what: str | None) -> None:
        first = seen_keys.get((cols, values))
        if first is None:
            seen_keys[(cols, values)] = row
            return
        where = f"{path}:{first.line}:{first.column}"
        if what is None:
            message = f"{table.name}: duplicate row: the same values as the row at {where}"
        else:
            shown = ", ".join(_short(row.values[c]) for c in cols)
            message = (f"{table.name}: duplicate row: {what} ({', '.join(cols)}) = ({shown}) "
                       f"is already used by the row at {where}")
        problems.append(SeedProblem(path, row.line, row.column, message))

    sorted_columns: dict[tuple[str, ...], tuple[str, ...]] = {}
    for row in item.rows:
        values = row.values
        unique_set = [u for u in uniques if all(values.get(c) is not None for c in u)] if uniques else []
        for u in unique_set:
            duplicate(u, _key(values, u), row, "unique key")
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
                basis = f"{table.name}\x1f_id\x1f{row.name}"
            else:
                basis = f"{table.name}\x1f{','.join(key)}\x1f" + "\x1f".join(canonical(values[c]) for c in key)
            values[uuid_pk] = uuid.uuid5(SEED_NAMESPACE, basis)
        given = tuple(values)
        columns = sorted_columns.get(given)
        if columns is None:
            columns = sorted_columns[given] = tuple(sorted(given, key=order.__getitem__))
        if match == "content":
            duplicate(columns, _key(values, columns), row, None)
        elif uuid_pk or has_pk:
            duplicate(pk, _key(values, pk), row, "primary key")
        if match == "content":
            group_key: tuple[tuple[str, ...], str, tuple[str, ...]] = (columns, "content", ())
        elif uuid_pk:
            group_key = (columns, "unique", key) if match == "unique" else (columns, "pk", pk)
        else:
            group_key = (columns, match, key)
        group = groups.get(group_key)
        if group is None:
            group = groups[group_key] = RowGroup(columns, group_key[1], group_key[2])
        group.rows.append(row)
    plan.groups = list(groups.values())
    if self_refs:
        # Rows that point at other rows of their own table go after the rows that do not (tree roots).
        plan.groups.sort(key=lambda g: any(c in g.columns for c in self_refs))
    return plan


def _key(values: dict[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...]:
    """The values of some columns as a hashable tuple (lists of array columns become tuples)."""
    out = tuple(values[c] for c in columns)
    try:
        hash(out)
    except TypeError:
        out = tuple(canonical(v) if not isinstance(v, list) else repr(v) for v in out)
    return out


def _short(value: Any) -> str:
    text = f"!ref {value.name}" if isinstance(value, Ref) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
