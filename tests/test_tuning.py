"""The seams of pydb/tuning.py still do what pydb relies on, with the SQLAlchemy installed."""

from __future__ import annotations

import gc

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pydb.tuning import collector_paused, expression_shape, interval_from_text, set_update_default

DIALECT: sa.Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


def _table() -> sa.Table:
    return sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text), sa.Column("updated_at", sa.DateTime(timezone=True)))


def test_an_update_default_reaches_update_statements() -> None:
    table = _table()
    set_update_default(table.c.updated_at, sa.func.now())
    sql = str(sa.update(table).values(name="x").compile(dialect=DIALECT))
    assert "updated_at=now()" in sql
    explicit = sa.update(table).values(name="x", updated_at=sa.literal("2025-01-01"))
    assert "now()" not in str(explicit.compile(dialect=DIALECT))
    assert "now()" not in str(sa.insert(table).values(name="x").compile(dialect=DIALECT))


def test_expression_shape_keys_structure_and_refuses_bound_values() -> None:
    table = _table()
    assert expression_shape(table.c.name.is_(None)) == expression_shape(table.c.name.is_(None))
    assert expression_shape(table.c.name.is_(None)) != expression_shape(table.c.id.is_(None))
    assert expression_shape(table.c.name == "ada") is None
    assert expression_shape(table.c.name == sa.bindparam("name")) is None


def test_the_collector_is_restored_even_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_an_interval_in_json_reads_as_psycopg_reads_the_column(pydb_database: str) -> None:
    import psycopg

    texts = ["1 year 2 mons 3 days 04:05:06.5", "-3 days +01:00:00", "00:00:00.000001", "-1 mons -00:00:01"]
    with psycopg.connect(pydb_database) as conn:
        for text in texts:
            column, in_json = conn.execute("SELECT %s::interval, json_build_object('i', %s::interval)->>'i'",
                                           (text, text)).fetchone() or (None, None)
            assert interval_from_text(str(in_json)) == column, text
