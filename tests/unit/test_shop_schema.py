"""The shop DDL and the traffic simulator's planner, without a server."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import pytest

from lakehouse.shop_planner import ChangeKind, ShopPlanner, ShopState, TickPlan
from sample_data import generate
from sample_data.shop import (
    ORDER_STATUSES,
    ORDER_TRANSITIONS,
    SHOP_DDL,
    SHOP_KEYS,
    SHOP_TABLES,
    shop_tables,
)


def _table_ddl(table: str) -> str:
    match = re.search(
        rf"CREATE TABLE IF NOT EXISTS public\.{table} \((.*?)\n\);", SHOP_DDL, re.DOTALL
    )
    assert match, f"no CREATE TABLE for {table}"
    return match.group(1)


@pytest.mark.parametrize("table", SHOP_TABLES)
def test_every_table_has_a_primary_key_and_updated_at(table: str) -> None:
    body = _table_ddl(table)
    assert re.search(rf"^\s*{SHOP_KEYS[table]}\s+bigint .*PRIMARY KEY", body, re.MULTILINE)
    assert body.count("PRIMARY KEY") == 1
    assert re.search(r"^\s*updated_at\s+timestamptz NOT NULL DEFAULT now\(\)", body, re.M)
    assert f"BEFORE UPDATE ON public.{table}" in SHOP_DDL


def test_ddl_is_idempotent_and_has_the_foreign_keys() -> None:
    creates = [line for line in SHOP_DDL.splitlines() if line.lstrip().startswith("CREATE")]
    assert len(creates) >= len(SHOP_TABLES) * 2
    assert all("IF NOT EXISTS" in line or "OR REPLACE" in line for line in creates)
    assert "(order_id) REFERENCES public.orders ON DELETE CASCADE" in SHOP_DDL
    assert "(customer_id) REFERENCES public.customers" in SHOP_DDL
    for status in ORDER_STATUSES:
        assert f"'{status}'" in _table_ddl("orders")


def test_shop_tables_match_the_ddl_columns() -> None:
    tables = shop_tables(generate(scale=0.01, seed=3))
    assert tuple(tables) == SHOP_TABLES
    for name, table in tables.items():
        declared = re.findall(r"^\s{4}(\w+)\s", _table_ddl(name), re.MULTILINE)
        assert set(table.column_names) <= set(declared), name
        assert SHOP_KEYS[name] in table.column_names
    item_ids = tables["order_items"].column("order_item_id").to_pylist()
    assert item_ids == list(range(1, len(item_ids) + 1))


def _state() -> ShopState:
    """A small shop: 40 customers (the last 10 never ordered), 12 products, 60 orders."""
    names = ("Ana", "Lopez"), ("Ravi", "Sato"), ("Mia", "Jansen")
    customers = [
        (i, *names[i % 3], f"{names[i % 3][0]}.{names[i % 3][1]}{i}@example.com".lower(), "US")
        for i in range(1, 41)
    ]
    statuses = ("placed", "paid", "shipped", "completed", "cancelled", "returned")
    orders = [(i, statuses[i % 6], 1 + i % 4) for i in range(1, 61)]
    state = ShopState.from_rows(
        customers, range(31, 41), [(i, 999 + 100 * i) for i in range(1, 13)], orders
    )
    for table, queue in state.new_ids.items():
        queue.extend(range(1_000 if table != "order_items" else 5_000, 9_000))
    return state


def _plans(seed: int, budgets: list[int]) -> list[dict[str, Any]]:
    planner = ShopPlanner(_state(), random.Random(seed))
    return [vars(planner.plan(budget, budget + 10)) for budget in budgets]


def test_planner_is_deterministic_for_a_seed() -> None:
    budgets = [10, 1, 25, 7, 40, 3]
    assert _plans(7, budgets) == _plans(7, budgets)
    assert _plans(7, budgets) != _plans(8, budgets)


def test_draw_kind_follows_the_mix_deterministically() -> None:
    def draws(seed: int) -> list[ChangeKind]:
        planner = ShopPlanner(_state(), random.Random(seed))
        return [planner.draw_kind() for _ in range(4_000)]

    assert draws(1) == draws(1)
    counts = Counter(draws(1))
    assert set(counts) == set(ChangeKind)
    assert counts[ChangeKind.ADVANCE_ORDER] > counts[ChangeKind.NEW_ORDER]
    assert counts[ChangeKind.NEW_ORDER] > counts[ChangeKind.DELETE_CUSTOMER]


def test_plans_respect_the_budget_and_the_limit() -> None:
    state = _state()
    lines_per_order = dict(state.item_counts)
    planner = ShopPlanner(state, random.Random(11))
    for budget in (1, 2, 5, 17, 50, 1, 30):
        plan = planner.plan(budget, budget)
        assert plan.rows == budget
        assert _planned_rows(plan, lines_per_order) == budget
        lines_per_order |= {row[0]: row[3] for row in plan.new_orders}
    for _ in range(20):
        assert 3 <= planner.plan(3, 100).rows <= 3 + 4


def _planned_rows(plan: TickPlan, lines_per_order: dict[int, int]) -> int:
    """Rows the plan changes, counted from its statements."""
    return (
        len(plan.new_customers)
        + len(plan.new_orders)
        + len(plan.new_items)
        + len(plan.status_changes)
        + len(plan.email_changes)
        + len(plan.address_changes)
        + len(plan.price_changes)
        + len(plan.deleted_customers)
        + sum(1 + lines_per_order[order_id] for (order_id,) in plan.deleted_orders)
    )


def test_every_planned_update_changes_a_value() -> None:
    state = _state()
    emails = {cid: c.email for cid, c in state.customers.items()}
    countries = {cid: c.country for cid, c in state.customers.items()}
    prices = dict(state.prices)
    planner = ShopPlanner(state, random.Random(5))
    plans = [planner.plan(20, 30) for _ in range(10)]
    for plan in plans:
        for new, order_id, old in plan.status_changes:
            assert new in ORDER_TRANSITIONS[old][0], (order_id, old, new)
        for email, customer_id, _ in plan.email_changes:
            assert email != emails[customer_id]
            emails[customer_id] = email
        for country, _, customer_id, _ in plan.address_changes:
            assert country != countries[customer_id]
            countries[customer_id] = country
        for price, product_id, _ in plan.price_changes:
            assert int(price * 100) != prices[product_id]
            prices[product_id] = int(price * 100)
    assert sum(len(p.status_changes) for p in plans) > 0
    assert sum(len(p.email_changes) + len(p.address_changes) for p in plans) > 0


def test_rows_created_in_a_tick_are_not_touched_again_in_it() -> None:
    planner = ShopPlanner(_state(), random.Random(2))
    for _ in range(30):
        plan = planner.plan(40, 50)
        new_orders = {row[0] for row in plan.new_orders}
        new_customers = {row[0] for row in plan.new_customers}
        assert not new_orders & {order_id for _, order_id, _ in plan.status_changes}
        assert not new_customers & {cid for (cid,) in plan.deleted_customers}
        assert not new_customers & {row[1] for row in plan.new_orders}
        ordered = {row[1] for row in plan.new_orders}
        assert not ordered & {cid for (cid,) in plan.deleted_customers}


def test_new_orders_have_consistent_lines_and_totals() -> None:
    planner = ShopPlanner(_state(), random.Random(9))
    plan = planner.plan(200, 210)
    assert plan.new_orders
    for order_id, _, _, item_count, total in plan.new_orders:
        lines = [row for row in plan.new_items if row[1] == order_id]
        assert [row[2] for row in lines] == list(range(1, item_count + 1))
        assert 1 <= item_count <= 4
        assert len({row[3] for row in lines}) == item_count
        assert sum(row[7] for row in lines) == total
        for *_, quantity, unit_price, discount, amount in lines:
            assert amount == unit_price * quantity - discount
