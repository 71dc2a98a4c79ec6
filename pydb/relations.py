"""Relations derived from foreign keys, with the names `with_=` uses.

Rules, for a foreign key from child table C (columns X) to parent table P:
- C gets P under X's name without `_id` (`projects.owner_id` → `projects.owner`); a multi-column key
  or a column not ending in `_id` gives P's table name instead.
- P gets the list of C rows under C's name (`users.projects`, `users.ai_usage_log`). When C has
  several keys to P, each is `<C>_by_<X without _id>` (`projects_by_owner`, `projects_by_reviewer`).
- A self-reference (C is P) follows the same rules: `categories.parent` and `categories.categories`.
- A name equal to a column of the table gets `_rel` appended.
- A partitioned table has the foreign keys of its partitions (pydb.reflect copies them onto it), so
  `customers.orders` reaches every partition; a partition keeps its own to-one relations
  (`orders_2024_01.customer`) but is not a to-many relation of its parents.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa

from pydb.catalog import PARTITION_OF


@dataclass(frozen=True)
class Relation:
    """One way across a foreign key: from `source` to `target`, many or one."""

    name: str
    source: sa.Table
    target: sa.Table
    pairs: tuple[tuple[str, str], ...]  # (source column, target column)
    many: bool


def _child_side_name(columns: list[str], parent: str) -> str:
    if len(columns) == 1 and columns[0].endswith("_id") and len(columns[0]) > 3:
        return columns[0][: -len("_id")]
    return parent


def relations_of(tables: dict[str, sa.Table]) -> dict[str, dict[str, Relation]]:
    """Return table name → relation name → Relation for every foreign key among the tables."""
    result: dict[str, dict[str, Relation]] = {name: {} for name in tables}
    for child in tables.values():
        keys = [fk for fk in child.foreign_key_constraints if fk.referred_table.name in tables]
        per_parent = Counter(fk.referred_table.name for fk in keys)
        for fk in keys:
            parent = tables[fk.referred_table.name]
            columns = [c.name for c in fk.columns]
            referred = [e.column.name for e in fk.elements]
            to_parent = tuple(zip(columns, referred, strict=True))
            one_name = _child_side_name(columns, parent.name)
            many_name = child.name
            if per_parent[parent.name] > 1:
                many_name = f"{child.name}_by_{_child_side_name(columns, parent.name)}"
            _add(result[child.name], child, Relation(one_name, child, parent, to_parent, many=False))
            if child.info.get(PARTITION_OF):
                continue
            back = tuple((target, source) for source, target in to_parent)
            _add(result[parent.name], parent, Relation(many_name, parent, child, back, many=True))
    return result


def _add(bucket: dict[str, Relation], table: sa.Table, relation: Relation) -> None:
    name = relation.name
    while name in table.columns or name in bucket:
        name += "_rel"
    bucket[name] = Relation(name, relation.source, relation.target, relation.pairs, relation.many)
