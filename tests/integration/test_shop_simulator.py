"""The shop database on a real PostgreSQL: initial load, schema, and simulated traffic."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lakehouse import Settings
from lakehouse.simulate import ShopSimulator, simulate_shop
from lakehouse.testing.postgres import create_database, drop_database
from sample_data import generate
from sample_data.shop import SHOP_KEYS, SHOP_TABLES, load_shop

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_postgres]

SCALE, SEED = 0.05, 42


@pytest.fixture(scope="module")
def shop_dsn(stack: Settings, stack_services: list[str]) -> str:
    """The stack's PostgreSQL; the tests create (and drop) their own database on it."""
    if "postgres" not in stack_services:
        pytest.skip("needs postgres")
    return stack.postgres_dsn("postgres")


@pytest.fixture(scope="module")
def fresh_shop(stack: Settings, shop_dsn: str) -> Iterator[str]:
    """DSN of a new, empty database on the same server, dropped afterwards."""
    name = f"shop_test_{uuid.uuid4().hex[:10]}"
    create_database(stack, name)
    try:
        yield stack.postgres_dsn(name)
    finally:
        drop_database(stack, name)


@pytest.fixture(scope="module")
def loaded(fresh_shop: str) -> tuple[dict[str, int], dict[str, int]]:
    """The first load_shop into the fresh database: rows it reported, rows then counted."""
    with psycopg.connect(fresh_shop, autocommit=True) as conn:
        return load_shop(conn, scale=SCALE, seed=SEED), _counts(conn)


@pytest.fixture
def conn(fresh_shop: str, loaded: object) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_shop, autocommit=True) as connection:
        yield connection


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in SHOP_TABLES:
        row = conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()
        counts[table] = row[0] if row else 0
    return counts


def test_load_shop_loads_the_sample_once(
    loaded: tuple[dict[str, int], dict[str, int]], fresh_shop: str
) -> None:
    sample = generate(scale=SCALE, seed=SEED)
    expected = {table: sample[f"retail.{table}"].num_rows for table in SHOP_TABLES}
    assert loaded == (expected, expected)
    with psycopg.connect(fresh_shop, autocommit=True) as conn:
        before = _counts(conn)
        assert load_shop(conn, scale=SCALE, seed=SEED) == dict.fromkeys(SHOP_TABLES, 0)
        assert _counts(conn) == before


def test_primary_keys_identities_and_triggers(conn: psycopg.Connection[Any]) -> None:
    keys = dict(
        conn.execute(
            """SELECT tc.table_name, string_agg(kcu.column_name, ',')
               FROM information_schema.table_constraints tc
               JOIN information_schema.key_column_usage kcu
                 USING (constraint_schema, constraint_name)
               WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'
               GROUP BY tc.table_name"""
        ).fetchall()
    )
    assert keys == SHOP_KEYS
    triggers = conn.execute(
        """SELECT event_object_table FROM information_schema.triggers
           WHERE trigger_schema = 'public' AND action_timing = 'BEFORE'
             AND event_manipulation = 'UPDATE'"""
    ).fetchall()
    assert {row[0] for row in triggers} == set(SHOP_TABLES)
    updated_at = conn.execute(
        """SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'
           AND column_name = 'updated_at' AND data_type = 'timestamp with time zone'
           AND is_nullable = 'NO'"""
    ).fetchall()
    assert {row[0] for row in updated_at} == set(SHOP_TABLES)
    for table, key in SHOP_KEYS.items():
        last, largest = conn.execute(
            f"SELECT (SELECT last_value FROM {table}_{key}_seq), max({key}) FROM public.{table}"
        ).fetchone()  # type: ignore[misc]
        assert last >= largest, table


def test_update_bumps_updated_at(conn: psycopg.Connection[Any]) -> None:
    customer_id, before = conn.execute(
        "SELECT customer_id, updated_at FROM public.customers ORDER BY customer_id LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    conn.execute(
        "UPDATE public.customers SET city = city || '.' WHERE customer_id = %s", (customer_id,)
    )
    after = conn.execute(
        "SELECT updated_at FROM public.customers WHERE customer_id = %s", (customer_id,)
    ).fetchone()[0]  # type: ignore[index]
    assert after > before


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """Updatable values and updated_at per row id, for the tables the simulator updates."""
    queries = {
        "orders": "SELECT order_id, status, updated_at FROM public.orders",
        "customers": "SELECT customer_id, email, country, updated_at FROM public.customers",
        "products": "SELECT product_id, price, updated_at FROM public.products",
    }
    return {
        table: {row[0]: row[1:] for row in conn.execute(query)} for table, query in queries.items()
    }


def test_simulator_paces_mixes_and_bumps_updated_at(
    conn: psycopg.Connection[Any], fresh_shop: str
) -> None:
    before, rows_before = _snapshot(conn), sum(_counts(conn).values())
    stats = ShopSimulator(fresh_shop, rate=200, seed=7).run(duration=2.0)
    assert 340 <= stats.changes <= 440, stats
    assert stats.inserts > 0 and stats.updates > 0 and stats.deletes > 0, stats
    assert stats.changes == stats.inserts + stats.updates + stats.deletes
    assert 25 <= stats.transactions <= 45, stats
    assert 1.9 <= stats.elapsed <= 3.0 and 150 <= stats.achieved_rate <= 230, stats
    assert sum(_counts(conn).values()) - rows_before == stats.inserts - stats.deletes
    after = _snapshot(conn)
    changed = 0
    for table, rows in before.items():
        for row_id, (*values, updated_at) in rows.items():
            if row_id in after[table] and list(after[table][row_id][:-1]) != values:
                assert after[table][row_id][-1] > updated_at, (table, row_id)
                changed += 1
    assert changed > 0


def test_no_orphans_and_consistent_orders_after_a_run(
    conn: psycopg.Connection[Any], fresh_shop: str
) -> None:
    stats = simulate_shop(fresh_shop, rate=2_000, duration=1.0, seed=3)
    assert stats.changes > 1_000, stats
    orphans = conn.execute(
        """SELECT (SELECT count(*) FROM public.order_items i WHERE NOT EXISTS
                     (SELECT 1 FROM public.orders o WHERE o.order_id = i.order_id)),
                  (SELECT count(*) FROM public.orders o WHERE NOT EXISTS
                     (SELECT 1 FROM public.customers c WHERE c.customer_id = o.customer_id))"""
    ).fetchone()
    assert orphans == (0, 0)
    mismatched = conn.execute(
        """SELECT count(*) FROM public.orders o
           JOIN (SELECT order_id, count(*) AS lines, sum(line_amount) AS total
                 FROM public.order_items GROUP BY order_id) i USING (order_id)
           WHERE i.lines <> o.item_count OR i.total <> o.total_amount"""
    ).fetchone()
    assert mismatched == (0,)
    empty = conn.execute(
        """SELECT count(*) FROM public.orders o WHERE NOT EXISTS
           (SELECT 1 FROM public.order_items i WHERE i.order_id = o.order_id)"""
    ).fetchone()
    assert empty == (0,)


def test_max_changes_is_exact_and_stop_ends_a_run(fresh_shop: str, loaded: object) -> None:
    simulator = ShopSimulator(fresh_shop, rate=5_000, seed=11)
    assert simulator.run(max_changes=150).changes == 150
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    stats = simulator.run(stop=stop)
    timer.join()
    assert 0.25 <= stats.elapsed <= 1.0 and stats.changes > 0, stats
