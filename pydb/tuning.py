"""The few places pydb leans on internals for speed or behaviour, in one module, each tested.

SQLAlchemy offers no public way to give an already reflected column an ON UPDATE default, to ask
whether an expression's structure can be cached (and which values it binds), nor to hand a raw
pooled connection back from asyncio code; Python's collector has no per-task switch; psycopg reads
an interval's text only on behalf of a connection.
Each seam is one small function here, covered by tests/test_tuning.py, so an upgrade that breaks
one breaks a test, not a user.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "checkin",
    "collector_paused",
    "expression_shape",
    "interval_from_text",
    "set_update_default",
    "statement_key",
]


def set_update_default(column: sa.Column[Any], value: sa.ColumnElement[Any]) -> None:
    """Give a reflected column an ON UPDATE default, as `Column(onupdate=value)` would have."""
    # What Column.__init__ does with onupdate=; there is no public setter after construction.
    from sqlalchemy.sql.schema import ColumnDefault

    ColumnDefault(value, for_update=True)._set_parent_with_dispatch(column)


def expression_shape(expression: sa.ClauseElement) -> Hashable | None:
    """A hashable key of an expression's structure, or None when it binds values (or cannot be keyed)."""
    # SQLAlchemy's own statement-cache key; a key with bound values would carry the first call's values.
    key = expression._generate_cache_key()
    if key is None or key.bindparams:
        return None
    return key.key


def statement_key(statement: sa.ClauseElement) -> tuple[Hashable, Sequence[Any], Any] | None:
    """SQLAlchemy's cache key of a statement: its structure, its bound parameters in that order, the key itself."""
    key = statement._generate_cache_key()
    return None if key is None else (key.key, key.bindparams, key)


async def checkin(pooled: Any, *, broken: bool = False) -> None:
    """Give a connection from `AsyncEngine.raw_connection()` back to its pool (`broken`: close it instead)."""
    from sqlalchemy.util import greenlet_spawn

    # The pool's checkin (and close) awaits the driver, which SQLAlchemy does only inside its greenlet.
    if broken:
        await greenlet_spawn(pooled.invalidate)
    await greenlet_spawn(pooled.close)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside the block, then restore it.

    A seed load makes millions of small containers: most live for one row, and those kept (each
    `_id`'s key, the keys that find duplicate rows in a table) form no cycles; with the collector on,
    its passes rescan the kept ones again and again (a quarter of the load's Python time on the
    benchmark's file). The pause covers the whole process, so pydb uses it only around its own
    one-shot batch work (`load_seed`).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def interval_from_text(text: str) -> dt.timedelta:
    """Read an interval as PostgreSQL writes it by default ('1 year 2 mons 04:05:06'), exactly as psycopg does."""
    from psycopg.types.datetime import IntervalLoader

    # psycopg chooses its parser from a connection's IntervalStyle; an interval inside JSON comes without one.
    loader = IntervalLoader(0)
    value: dt.timedelta = IntervalLoader._load_postgres(loader, text.encode())
    return value
