"""Unit tests for the synthetic retail data generator (sample_data.retail)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sample_data import TABLES, generate

SCALE, SEED = 0.05, 123
TS, MONEY = pa.timestamp("us"), pa.decimal128(12, 2)
EXPECTED_SCHEMAS = {
    "retail.customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("first_name", pa.string()),
            ("last_name", pa.string()),
            ("email", pa.string()),
            ("country", pa.string()),
            ("city", pa.string()),
            ("segment", pa.string()),
            ("signup_date", pa.date32()),
            ("created_at", TS),
        ]
    ),
    "retail.products": pa.schema(
        [
            ("product_id", pa.int64()),
            ("sku", pa.string()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("brand", pa.string()),
            ("price", MONEY),
            ("cost", MONEY),
            ("created_at", TS),
        ]
    ),
    "retail.orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("order_ts", TS),
            ("order_date", pa.date32()),
            ("status", pa.string()),
            ("channel", pa.string()),
            ("item_count", pa.int32()),
            ("total_amount", MONEY),
            ("session_id", pa.string()),
        ]
    ),
    "retail.order_items": pa.schema(
        [
            ("order_id", pa.int64()),
            ("line_number", pa.int32()),
            ("product_id", pa.int64()),
            ("quantity", pa.int32()),
            ("unit_price", MONEY),
            ("discount", MONEY),
            ("line_amount", MONEY),
        ]
    ),
    "web.clickstream": pa.schema(
        [
            ("event_id", pa.string()),
            ("session_id", pa.string()),
            ("customer_id", pa.int64()),
            ("event_ts", TS),
            ("event_date", pa.date32()),
            ("event_type", pa.string()),
            ("page", pa.string()),
            ("product_id", pa.int64()),
            ("search_query", pa.string()),
            ("order_id", pa.int64()),
            ("device", pa.string()),
            ("referrer", pa.string()),
        ]
    ),
}
NULLABLE = {
    ("retail.orders", "session_id"),
    *(("web.clickstream", c) for c in ("customer_id", "product_id", "search_query", "order_id")),
    ("web.clickstream", "referrer"),
}
EVENT_TYPES = {"page_view", "search", "product_view", "add_to_cart", "remove_from_cart"}
EVENT_TYPES |= {"checkout", "purchase"}
PRODUCT_EVENTS = {"product_view", "add_to_cart", "remove_from_cart"}


@pytest.fixture(scope="module")
def data() -> dict[str, pa.Table]:
    return generate(SCALE, seed=SEED)


def rows(table: pa.Table, *columns: str) -> list[tuple[Any, ...]]:
    """Selected columns as a list of Python tuples."""
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def values(table: pa.Table, column: str) -> list[Any]:
    out: list[Any] = table.column(column).to_pylist()
    return out


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


@pytest.fixture(scope="module")
def sessions(data: dict[str, pa.Table]) -> dict[str, list[tuple[Any, ...]]]:
    """session_id -> events (event_id, event_ts, event_type, product_id, order_id, customer_id)."""
    cols = ("event_id", "event_ts", "event_type", "product_id", "order_id", "customer_id")
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for sid, *event in rows(data["web.clickstream"], "session_id", *cols):
        out[sid].append(tuple(event))
    return {sid: sorted(events) for sid, events in out.items()}


def test_tables_are_returned_in_order(data: dict[str, pa.Table]) -> None:
    assert tuple(EXPECTED_SCHEMAS) == TABLES
    assert list(data) == list(TABLES)


@pytest.mark.parametrize("name", list(EXPECTED_SCHEMAS))
def test_schema_is_exact(data: dict[str, pa.Table], name: str) -> None:
    assert data[name].schema.equals(EXPECTED_SCHEMAS[name]), data[name].schema


@pytest.mark.parametrize("name", list(EXPECTED_SCHEMAS))
def test_only_documented_columns_have_nulls(data: dict[str, pa.Table], name: str) -> None:
    for column in data[name].column_names:
        if (name, column) not in NULLABLE:
            assert data[name].column(column).null_count == 0, column


def test_same_seed_gives_identical_bytes() -> None:
    first, second = generate(0.02, seed=7), generate(0.02, seed=7)
    for name in TABLES:
        assert ipc_bytes(first[name]) == ipc_bytes(second[name]), name


def test_different_seed_gives_different_data() -> None:
    first, second = generate(0.02, seed=7), generate(0.02, seed=8)
    for name in TABLES:
        assert not first[name].equals(second[name]), name


def test_tiny_scale_is_non_empty() -> None:
    tiny = generate(0.01)
    for name in TABLES:
        assert tiny[name].num_rows > 0, name
        assert tiny[name].schema.equals(EXPECTED_SCHEMAS[name])


@pytest.mark.parametrize("scale", [0, -1.0])
def test_non_positive_scale_is_rejected(scale: float) -> None:
    with pytest.raises(ValueError):
        generate(scale)


def test_sizes_scale_linearly(data: dict[str, pa.Table]) -> None:
    counts = {name: table.num_rows for name, table in data.items()}
    assert 900 <= counts["retail.customers"] <= 1_100
    assert 90 <= counts["retail.products"] <= 110
    assert 4_500 <= counts["retail.orders"] <= 5_500
    assert 10_000 <= counts["retail.order_items"] <= 15_000
    assert 45_000 <= counts["web.clickstream"] <= 55_000


@pytest.mark.slow
def test_scale_one_row_counts() -> None:
    full = generate(1.0)
    assert 900_000 <= full["web.clickstream"].num_rows <= 1_100_000
    assert 18_000 <= full["retail.customers"].num_rows <= 22_000
    assert 1_800 <= full["retail.products"].num_rows <= 2_200
    assert 90_000 <= full["retail.orders"].num_rows <= 110_000
    assert 200_000 <= full["retail.order_items"].num_rows <= 300_000


def test_keys_are_unique(data: dict[str, pa.Table]) -> None:
    for name, column in [
        ("retail.customers", "customer_id"),
        ("retail.customers", "email"),
        ("retail.products", "product_id"),
        ("retail.products", "sku"),
        ("retail.orders", "order_id"),
        ("web.clickstream", "event_id"),
    ]:
        keys = values(data[name], column)
        assert len(set(keys)) == len(keys), (name, column)
    lines = rows(data["retail.order_items"], "order_id", "line_number")
    assert len(set(lines)) == len(lines)
    order_products = rows(data["retail.order_items"], "order_id", "product_id")
    assert len(set(order_products)) == len(order_products)  # one line per product and order


def test_customer_attributes(data: dict[str, pa.Table]) -> None:
    customers = data["retail.customers"]
    countries = Counter(values(customers, "country"))
    assert all(len(c) == 2 and c.isupper() for c in countries)
    assert countries.most_common(1)[0][0] == "US"
    assert len(countries) >= 5
    assert set(values(customers, "segment")) == {"consumer", "small_business", "corporate"}
    for cid, first, email, signup, created in rows(
        customers, "customer_id", "first_name", "email", "signup_date", "created_at"
    ):
        assert email.startswith(first.lower() + ".") and f"{cid}@" in email
        assert signup == created.date()


def test_product_attributes(data: dict[str, pa.Table]) -> None:
    products = data["retail.products"]
    allowed = {"electronics", "books", "home", "garden", "toys", "sports", "beauty", "grocery"}
    allowed |= {"fashion", "office"}
    categories = set(values(products, "category"))
    assert categories <= allowed and len(categories) >= 8
    for price, cost in rows(products, "price", "cost"):
        assert Decimal(0) < cost < price


def test_line_arithmetic_and_order_totals(data: dict[str, pa.Table]) -> None:
    price = dict(rows(data["retail.products"], "product_id", "price"))
    lines: dict[int, list[int]] = defaultdict(list)
    totals: dict[int, Decimal] = defaultdict(Decimal)
    items = data["retail.order_items"]
    cols = ("order_id", "line_number", "product_id", "quantity", "unit_price", "discount")
    for oid, line, pid, qty, unit, discount, amount in rows(items, *cols, "line_amount"):
        assert qty >= 1 and unit == price[pid]
        assert Decimal(0) <= discount < unit * qty
        assert amount == unit * qty - discount
        lines[oid].append(line)
        totals[oid] += amount
    assert any(d > 0 for d in values(items, "discount"))
    for oid, count, total in rows(data["retail.orders"], "order_id", "item_count", "total_amount"):
        assert sorted(lines[oid]) == list(range(1, count + 1))
        assert total == totals[oid]


def test_foreign_keys(data: dict[str, pa.Table]) -> None:
    customer_ids = set(values(data["retail.customers"], "customer_id"))
    product_ids = set(values(data["retail.products"], "product_id"))
    order_ids = set(values(data["retail.orders"], "order_id"))
    clicks = data["web.clickstream"]
    assert set(values(data["retail.orders"], "customer_id")) <= customer_ids
    assert set(values(data["retail.order_items"], "order_id")) == order_ids
    assert set(values(data["retail.order_items"], "product_id")) <= product_ids
    assert set(values(clicks, "customer_id")) - {None} <= customer_ids
    assert set(values(clicks, "product_id")) - {None} <= product_ids
    assert set(values(clicks, "order_id")) - {None} <= order_ids
    assert set(values(data["retail.orders"], "session_id")) - {None} <= set(
        values(clicks, "session_id")
    )


def test_timestamps_lie_in_2024_and_2025(data: dict[str, pa.Table]) -> None:
    lo, hi = datetime(2024, 1, 1), datetime(2026, 1, 1)
    for name, ts_col, date_col in [
        ("retail.orders", "order_ts", "order_date"),
        ("web.clickstream", "event_ts", "event_date"),
    ]:
        for ts, day in rows(data[name], ts_col, date_col):
            assert lo <= ts < hi and day == ts.date()
    created = dict(rows(data["retail.customers"], "customer_id", "created_at"))
    for cid, ts in rows(data["retail.orders"], "customer_id", "order_ts"):
        assert ts > created[cid]


def test_product_popularity_is_skewed(data: dict[str, pa.Table]) -> None:
    sold: Counter[int] = Counter()
    for pid, qty in rows(data["retail.order_items"], "product_id", "quantity"):
        sold[pid] += qty
    n_products = data["retail.products"].num_rows
    top = sum(q for _, q in sold.most_common(n_products // 10))
    assert top / sum(sold.values()) > 0.45


def test_repeat_customers_and_non_buyers(data: dict[str, pa.Table]) -> None:
    per_customer = Counter(values(data["retail.orders"], "customer_id"))
    repeat_orders = sum(n for n in per_customer.values() if n > 1)
    assert repeat_orders / data["retail.orders"].num_rows > 0.7
    never = data["retail.customers"].num_rows - len(per_customer)
    assert never >= 0.05 * data["retail.customers"].num_rows


def test_seasonality(data: dict[str, pa.Table]) -> None:
    months = Counter(d.month for d in values(data["retail.orders"], "order_date"))
    # Customer-base growth alone makes late months busier; seasonality must add a clear peak.
    assert min(months[11], months[12]) > 1.6 * months[2]
    assert min(months[11], months[12]) > 1.25 * max(months[9], months[10])
    weekly = Counter(d.weekday() for d in values(data["retail.orders"], "order_date"))
    assert len(weekly) == 7


def test_status_channel_and_session_link(data: dict[str, pa.Table]) -> None:
    orders = data["retail.orders"]
    statuses = Counter(values(orders, "status"))
    assert set(statuses) == {"completed", "shipped", "cancelled", "returned"}
    assert statuses["completed"] > 0.5 * orders.num_rows
    assert set(values(orders, "channel")) == {"web", "mobile", "store"}
    for channel, session in rows(orders, "channel", "session_id"):
        assert (session is None) == (channel == "store")


def test_purchase_events_match_orders(data: dict[str, pa.Table], sessions: Any) -> None:
    orders = data["retail.orders"]
    online = {
        oid: (cid, ts, sid)
        for oid, cid, ts, sid, ch in rows(
            orders, "order_id", "customer_id", "order_ts", "session_id", "channel"
        )
        if ch != "store"
    }
    clicks = data["web.clickstream"]
    purchases = rows(
        clicks.filter(pc.equal(clicks["event_type"], "purchase")),
        "order_id",
        "session_id",
        "customer_id",
        "event_ts",
    )
    assert sorted(p[0] for p in purchases) == sorted(online)
    for oid, sid, cid, ts in purchases:
        order_cid, order_ts, order_sid = online[oid]
        assert sid == order_sid and cid == order_cid
        assert timedelta(0) <= order_ts - ts <= timedelta(seconds=5)
        others = [e[1] for e in sessions[sid] if e[2] != "purchase"]
        assert others and max(others) < ts


def test_converting_sessions_have_cart_and_checkout(
    data: dict[str, pa.Table], sessions: Any
) -> None:
    products: dict[int, set[int]] = defaultdict(set)
    for oid, pid in rows(data["retail.order_items"], "order_id", "product_id"):
        products[oid].add(pid)
    for oid, sid in rows(data["retail.orders"], "order_id", "session_id"):
        if sid is None:
            continue
        events = sessions[sid]
        (purchase_ts,) = [e[1] for e in events if e[2] == "purchase"]
        assert products[oid] <= {e[3] for e in events if e[2] == "add_to_cart"}
        assert any(e[2] == "checkout" and e[1] < purchase_ts for e in events)


def test_sessions_are_time_ordered_and_short(sessions: Any) -> None:
    spans = []
    for events in sessions.values():
        times = [e[1] for e in events]  # events sorted by event_id = position in session
        assert all(a < b for a, b in pairwise(times))
        assert len({e[5] for e in events}) == 1  # one customer (or anonymous) per session
        spans.append((times[-1] - times[0]).total_seconds())
    assert max(spans) < 3 * 3600
    assert 60 < float(np.median(spans)) < 3600


def test_event_fields_depend_on_type(data: dict[str, pa.Table]) -> None:
    clicks = data["web.clickstream"]
    cols = ("event_type", "page", "product_id", "search_query", "order_id", "device", "referrer")
    for kind, page, pid, query, oid, device, referrer in rows(clicks, *cols):
        assert kind in EVENT_TYPES and device in {"desktop", "mobile", "tablet"}
        assert (pid is not None) == (kind in PRODUCT_EVENTS)
        assert (query is not None) == (kind == "search")
        assert (oid is not None) == (kind == "purchase")
        assert page.startswith("/")
        if kind in ("product_view", "add_to_cart"):
            assert page == f"/product/{pid}"
        if kind in ("search", "checkout"):
            assert page == f"/{kind}"
        assert referrer is None or referrer.isalpha()
    assert clicks["referrer"].null_count > 0


def test_funnel_is_monotone(data: dict[str, pa.Table], sessions: Any) -> None:
    counts = Counter(values(data["web.clickstream"], "event_type"))
    funnel = [counts[k] for k in ("page_view", "product_view", "add_to_cart", "checkout")]
    funnel.append(counts["purchase"])
    assert all(a > b for a, b in pairwise(funnel)), funnel
    assert counts["search"] > 0 and counts["remove_from_cart"] > 0
    converting = sum(any(e[2] == "purchase" for e in ev) for ev in sessions.values())
    assert len(sessions) - converting > 0.3 * len(sessions)
    anonymous = sum(ev[0][5] is None for ev in sessions.values())
    assert 0 < anonymous < len(sessions)


def test_signup_dates_precede_2026(data: dict[str, pa.Table]) -> None:
    signups = values(data["retail.customers"], "signup_date")
    assert min(signups) >= date(2020, 1, 1) and max(signups) < date(2026, 1, 1)
