"""The check at first use: the column types a generated module promises, against a live database's tables."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from pydb.types.render import column_types

__all__ = ["mismatches"]


def mismatches(expected: Mapping[str, Mapping[str, str]], tables: Mapping[str, sa.Table]) -> list[str]:
    """What differs between the promised types (table -> column -> type) and the tables; [] when they match.

    Tables and columns the database has beyond the promised ones are fine: code typed by an older
    module does not use them.
    """
    live = column_types(tables)
    problems = []
    for table, columns in expected.items():
        if table not in live:
            problems.append(f"table {table} is missing")
            continue
        for column, promised in columns.items():
            found = live[table].get(column)
            if found is None:
                problems.append(f"{table}.{column} is missing")
            elif found != promised:
                problems.append(f"{table}.{column} is {found}, typed as {promised}")
    return problems
