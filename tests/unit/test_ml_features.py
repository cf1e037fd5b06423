"""Customer features on a tiny hand-made dataset whose every answer is known."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from lakehouse.errors import MLError
from lakehouse.ml import features as feat

MONEY = pa.decimal128(12, 2)


def _money(*values: str) -> pa.Array:
    return pa.array([Decimal(v) for v in values], MONEY)


def _inputs() -> dict[str, pa.Table]:
    customers = pa.table(
        {
            "customer_id": [1, 2, 3, 4],
            "created_at": [datetime(2025, 1, 1), datetime(2025, 6, 1), datetime(2025, 12, 1),
                           datetime(2025, 12, 30)],
        }
    )  # fmt: skip
    products = pa.table(
        {"product_id": [10, 11, 12], "category": ["electronics", "home/kitchen", "books"]}
    )
    orders = pa.table(
        {
            "order_id": [100, 101, 102, 103, 104],
            "customer_id": [1, 1, 2, 2, 99],  # 99 is no customer of retail.customers
            "order_ts": [datetime(2025, 12, 1), datetime(2025, 12, 11), datetime(2025, 11, 1),
                         datetime(2025, 12, 21), datetime(2025, 12, 31)],
            "status": ["completed", "shipped", "cancelled", "completed", "completed"],
            "total_amount": _money("30.00", "10.50", "999.00", "20.00", "5.00"),
        }
    )  # fmt: skip
    items = pa.table(
        {
            "order_id": [100, 100, 101, 102, 103, 104],
            "product_id": [10, 11, 12, 10, 13, 10],  # 13 is no known product
            "line_amount": _money("20.00", "10.00", "10.50", "999.00", "20.00", "5.00"),
        }
    )
    clicks = pa.table(
        {
            "session_id": ["S1", "S1", "S2", "S3", "S3", "S4", "S5", "S6"],
            "customer_id": [1, 1, 1, None, 2, 4, None, 99],
            "event_type": ["page_view", "purchase", "page_view", "page_view", "purchase",
                           "page_view", "page_view", "page_view"],
        }
    )  # fmt: skip
    return {
        feat.CUSTOMERS: customers,
        feat.PRODUCTS: products,
        feat.ORDERS: orders,
        feat.ORDER_ITEMS: items,
        feat.CLICKSTREAM: clicks,
    }


def _compute(tables: dict[str, pa.Table]) -> feat.CustomerFeatures:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name.replace(".", "_"), table)
    # Subqueries, as on the lake: the SQL must alias them, never name the tables.
    relations = {name: f"(SELECT * FROM {name.replace('.', '_')})" for name in tables}
    return feat.customer_features(lambda q: con.execute(q).to_arrow_table(), relations)


def test_features_have_the_known_answers() -> None:
    built = _compute(_inputs())
    rows = {row["customer_id"]: row for row in built.table.to_pylist()}
    assert list(rows) == [1, 2, 3, 4]  # every customer, orders or not, in id order
    one, two, three, four = rows[1], rows[2], rows[3], rows[4]
    # reference time = latest order of all (order 104, 2025-12-31)
    assert one["recency_days"] == 20.0 and two["recency_days"] == 10.0
    assert (one["orders"], one["monetary"], one["avg_order_value"]) == (2, 40.5, 20.25)
    # the cancelled 999.00 order counts for nothing
    assert (two["orders"], two["monetary"], two["avg_order_value"]) == (1, 20.0, 20.0)
    assert (one["tenure_days"], two["tenure_days"], three["tenure_days"]) == (364.0, 213.0, 30.0)
    assert (one["sessions"], one["converting_sessions"], one["conversion_rate"]) == (2, 1, 0.5)
    # S3's first event names no customer; the session is still customer 2's
    assert (two["sessions"], two["conversion_rate"]) == (1, 1.0)
    assert (four["sessions"], four["conversion_rate"]) == (1, 0.0)
    assert one["share_electronics"] == pytest.approx(20 / 40.5)
    assert one["share_home"] == pytest.approx(10 / 40.5)
    assert one["share_books"] == pytest.approx(10.5 / 40.5)
    assert one["share_uncategorised"] == 0.0 and one["top_category"] == "electronics"
    assert two["share_uncategorised"] == 1.0 and two["top_category"] == "uncategorised"
    # no orders, no sessions: kept, with NULL where a value is undefined (never a made-up 0)
    assert (three["orders"], three["monetary"], three["sessions"]) == (0, 0.0, 0)
    for column in ("recency_days", "avg_order_value", "conversion_rate", "share_books",
                   "top_category"):  # fmt: skip
        assert three[column] is None, column
    assert three["reference_ts"] == datetime(2025, 12, 31)


def test_stats_count_what_is_not_attributable() -> None:
    stats = _compute(_inputs()).stats
    assert stats.customers == 4
    assert stats.customers_without_orders == 2
    assert stats.customers_without_sessions == 1
    assert stats.unattributed_orders == 1  # order 104 (customer 99)
    assert stats.unattributed_sessions == 2  # S5 (anonymous) and S6 (customer 99)
    assert stats.categories == ("books", "electronics", "home", "uncategorised")
    assert stats.reference_ts == datetime(2025, 12, 31)


@pytest.mark.parametrize("ids", [[1, 1, 3, 4], [1, None, 3, 4]])
def test_repeated_or_null_customer_ids_are_refused(ids: list[int | None]) -> None:
    tables = _inputs()
    customers = tables[feat.CUSTOMERS]
    tables[feat.CUSTOMERS] = customers.set_column(0, "customer_id", pa.array(ids, pa.int64()))
    with pytest.raises(MLError, match="one row per customer") as caught:
        _compute(tables)
    assert caught.value.hint


def test_category_columns_are_named_safely_and_never_collide() -> None:
    assert feat.share_column("Home & Garden") == "share_home_garden"
    assert feat.share_column("%%") == "share_blank"
    tables = _inputs()
    tables[feat.PRODUCTS] = pa.table(
        {"product_id": [10, 11, 12], "category": ["Home", "home", "books"]}
    )
    built = _compute(tables)
    one = built.table.to_pylist()[0]
    assert one["share_home"] == pytest.approx(20 / 40.5)  # "Home" sorts first
    assert one["share_home_2"] == pytest.approx(10 / 40.5)


def test_lake_relations_pin_each_snapshot() -> None:
    relations = feat.lake_relations("lake", {"retail.orders": 7})
    assert relations == {
        "retail.orders": '(SELECT * FROM lake."retail"."orders" AT (VERSION => 7))'
    }
