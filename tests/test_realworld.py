"""pydb on a schema like real ones (tests/fixtures/realworld.sql): arrays, dates, domains, a sequence no
column owns, a partitioned table whose foreign keys live on its partitions, a trigger-filled NOT NULL
column, a view and CHECK constraints."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pydb
from pydb.errors import SeedError
from pydb.local import LocalServer
from pydb.relations import relations_of
from pydb.seed import load_seed
from pydb.testing import scratch_database
from tests.helpers import REPO, run_pydb

FIXTURE = Path(__file__).parent / "fixtures" / "realworld.sql"

SEED = """\
orders:
  - id: 1
    placed: 2024-01-10
    customer_id: 1
    product_id: 1
    amount: 120.50
  - id: 2
    placed: 2024-02-03
    customer_id: 2
    product_id: 1
    amount: 12.00
customers:
  - id: 1
    name: Ada
    country: GB
    tags: [vip, beta]
    joined: 2024-01-05
    last_seen: 2024-01-05T10:00:00Z
  - id: 2
    name: Grace
    country: US
    joined: 2024-02-01
products:
  - id: 1
    title: Analytical engine
"""


@pytest.fixture
def realworld(pydb_server: LocalServer) -> Iterator[str]:
    """URL of a database of this test's own holding the real-world fixture schema, empty."""
    with scratch_database(pydb_server.url(), "pydb_dev", prefix="pydb_real_") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE.read_text())
        yield url


@pytest.fixture
def seeded(realworld: str, tmp_path: Path) -> str:
    """The real-world database with SEED loaded by pydb seed."""
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    load_seed(path, realworld)
    return realworld


@pytest.fixture
def filled(realworld: str) -> str:
    """The real-world database with SEED's rows written in plain SQL (for what does not test the seed)."""
    with psycopg.connect(realworld, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (id, name, country, tags, joined, last_seen) VALUES"
            " (1, 'Ada', 'GB', '{vip,beta}', '2024-01-05', '2024-01-05T10:00:00Z'),"
            " (2, 'Grace', 'US', '{}', '2024-02-01', NULL);"
            " INSERT INTO products (id, title) VALUES (1, 'Analytical engine');"
            " INSERT INTO orders VALUES (1, '2024-01-10', 1, 1, 120.50), (2, '2024-02-03', 2, 1, 12.00)")
    return realworld


def _seed(tmp_path: Path, url: str, text: str) -> list[str]:
    (tmp_path / "seed.yaml").write_text(textwrap.dedent(text))
    report = load_seed(tmp_path / "seed.yaml", url)
    return [f"{t.table}: {t.inserted} {t.updated} {t.unchanged}" for t in report.tables]


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


# -- 1, 2: pydb find ---------------------------------------------------------------------------


def test_find_prints_array_values_at_the_top_and_in_nested_rows(filled: str) -> None:
    top = run_pydb("find", "customers", "--where", "id=1", "--with", "orders", "--url", filled)
    assert top.returncode == 0, top.stderr
    assert "  tags       ['vip', 'beta']" in top.stdout.splitlines()
    assert "  orders (1)" in top.stdout.splitlines()
    nested = run_pydb("find", "orders_2024_01", "--where", "id=1", "--with", "customer", "--url", filled)
    assert nested.returncode == 0, nested.stderr
    assert "    tags       ['vip', 'beta']" in nested.stdout.splitlines()


@pytest.mark.parametrize(("table", "where", "expected"), [
    ("customers", "joined=2024-01-05", "Ada"),
    ("customers", "last_seen=2024-01-05T10:00:00+00:00", "Ada"),
    ("customers", "country=US", "Grace"),
    ("orders", "amount=12.00", "2024-02-03"),
    ("orders", "placed=2024-01-10", "120.50"),
])
def test_find_where_converts_each_value_to_its_column_type(filled: str, table: str, where: str,
                                                           expected: str) -> None:
    result = run_pydb("find", table, "--where", where, "--url", filled)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_find_where_with_a_bad_value_names_the_column(filled: str) -> None:
    result = run_pydb("find", "customers", "--where", "joined=yesterday", "--url", filled)
    assert (result.returncode, result.stderr) == (
        1, "Error: customers.joined: expected a date (YYYY-MM-DD), got 'yesterday'\n")


# -- 3: sequences no column owns -------------------------------------------------------------------


def test_seed_moves_a_sequence_no_column_owns_past_the_seeded_ids(seeded: str) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        row = conn.execute("INSERT INTO customers (name, country, joined) VALUES ('Hedy', 'AT', '2024-03-01')"
                           " RETURNING id").fetchone()
    assert row == (3,)


# -- 4, 5: partitioned tables ----------------------------------------------------------------------


def test_seed_loads_a_partitioned_table_after_the_parents_of_its_partitions_and_again(
    seeded: str, tmp_path: Path,
) -> None:
    assert _rows(seeded, "SELECT id, tableoid::regclass::text FROM orders ORDER BY id") == [
        (1, "orders_2024_01"), (2, "orders_2024_02")]
    again = _seed(tmp_path, seeded, SEED.replace("amount: 12.00", "amount: 13.00"))
    assert again == ["customers: 0 0 2", "products: 0 0 1", "orders: 0 1 1"]
    assert _rows(seeded, "SELECT amount::text FROM orders WHERE id = 2") == [("13.00",)]


def test_a_partitioned_table_has_the_relations_of_its_partitions_under_its_own_name(filled: str) -> None:
    db = pydb.connect(filled)
    try:
        relations = relations_of(db.tables)
        assert set(relations["customers"]) == {"orders"}
        assert set(relations["orders"]) == {"customer", "product"}
        assert set(relations["orders_2024_01"]) == {"customer", "product"}
        ada = db.query.customers.find_first(where=db.tables["customers"].c.id == 1, with_={"orders": True})
        assert ada is not None and [order["id"] for order in ada["orders"]] == [1]
        order = db.query.orders_2024_02.find_first(with_={"customer": True})
        assert order is not None and order["customer"]["name"] == "Grace"
    finally:
        db.dispose()


# -- 6: refusals by the database, at the value or the row ------------------------------------------


def test_a_value_a_domain_refuses_is_reported_at_the_value(
    realworld: str, tmp_path: Path,
) -> None:
    with pytest.raises(SeedError) as info:
        _seed(tmp_path, realworld, SEED.replace("amount: 12.00", "amount: -5").replace("country: US", "country: usa"))
    assert [str(p).removeprefix(f"{tmp_path}/") for p in info.value.problems] == [
        'seed.yaml:11:13: orders.amount: value for domain positive_amount violates check constraint '
        '"positive_amount_check"',
        'seed.yaml:21:14: customers.country: value for domain country_code violates check constraint '
        '"country_code_check"',
    ]
    assert _rows(realworld, "SELECT count(*) FROM customers") == [(0,)]


def test_a_row_a_check_constraint_refuses_is_reported_at_the_row(
    realworld: str, tmp_path: Path,
) -> None:
    with pytest.raises(SeedError) as info:
        _seed(tmp_path, realworld, SEED.replace("name: Grace", "name: '  '"))
    assert [str(p).removeprefix(f"{tmp_path}/") for p in info.value.problems] == [
        'seed.yaml:19:5: customers: the database refused this row: new row for relation "customers" violates '
        'check constraint "customers_name_not_blank" (Failing row contains (2,   , US, {}, 2024-02-01, null, ).)'
    ]
    assert _rows(realworld, "SELECT count(*) FROM customers") == [(0,)]


# -- 7: columns a trigger fills ----------------------------------------------------------------------


def test_a_not_null_column_a_trigger_fills_is_left_to_the_database(seeded: str) -> None:
    assert _rows(seeded, "SELECT document::text FROM customers WHERE id = 1") == [("'ada':1 'beta':3 'vip':2",)]


# -- 9: what schema.hcl cannot carry -------------------------------------------------------------------


def test_describe_shows_partitions_domains_checks_triggers_and_views(filled: str) -> None:
    result = run_pydb("describe", "--url", filled)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "domain positive_amount: numeric(10,2) CHECK ((VALUE > (0)::numeric))" in lines
    assert "table orders (partitioned table RANGE (placed))" in lines
    assert "table orders_2024_01 (partition of orders FOR VALUES FROM ('2024-01-01') TO ('2024-02-01'))" in lines
    assert "  check customers_name_not_blank: length(TRIM(BOTH FROM name)) > 0" in lines
    assert "  foreign key (customer_id) -> customers(id), declared on its partitions" in lines
    assert any(line.startswith("  trigger customers_document: CREATE TRIGGER customers_document BEFORE INSERT")
               for line in lines)
    assert any(line.startswith("view big_orders: ") for line in lines)
    assert "sequence customers_id_seq: owned by no column" in lines


UNMANAGED = ("domain country_code, domain positive_amount, function customers_document, partition orders_2024_01, "
             "partition orders_2024_02, sequence customers_id_seq, trigger customers_document, view big_orders")


def test_drift_warns_naming_what_schema_hcl_cannot_hold(filled: str, pydb_dev_database: str) -> None:
    result = run_pydb("drift", "--url", filled, "--no-schema", env={"ATLAS_DEV_URL": pydb_dev_database})
    assert result.returncode == 1  # the tables are not in migrations/: drift, and the warning besides
    assert ("warning: the database holds objects that schema.hcl cannot express with this Atlas build "
            f"(Atlas does not compare them): {UNMANAGED}.") in result.stdout


def test_a_push_to_the_dev_env_warns_naming_what_schema_hcl_cannot_hold(filled: str, pydb_dev_database: str) -> None:
    env = dict(os.environ, DATABASE_URL=filled, ATLAS_DEV_URL=pydb_dev_database)
    result = subprocess.run([str(Path(sys.prefix) / "bin" / "atlas"), "schema", "apply", "--env", "dev",
                             "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"cannot express with this Atlas build: {UNMANAGED}." in result.stderr
