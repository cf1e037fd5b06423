"""Deterministic synthetic retail data: customers, products, orders, order lines, clickstream.

``generate(scale, seed)`` returns one :class:`pyarrow.Table` per name in :data:`TABLES`.
Guarantees (checked in ``tests/unit/test_sample_data.py``):

* same ``(scale, seed)`` -> identical tables (only ``numpy.random.default_rng(seed)``);
* scale 1: ~20k customers, ~2k products, ~100k orders, ~250k order lines, ~1M events;
* orders and events lie in 2024-2025 (naive UTC); sign-ups start in 2020, products
  are created in 2022-2023; orders come at least 3 h after the buyer's sign-up;
* exact ``decimal128(12, 2)`` money: ``line_amount = unit_price * quantity - discount``,
  ``total_amount = sum(line_amount)``;
* Zipf-like product popularity, mostly repeat buyers, ~30% never order, Nov/Dec peak;
* learnable product affinities (:mod:`sample_data.affinity`): taste groups per buyer,
  co-purchased companion groups, seasonal categories; known visitors browse their tastes;
* every web/mobile order has one ``purchase`` event: the last event of the order's session,
  same customer, 0-3 s before ``order_ts``, after ``add_to_cart`` for each order line and a
  ``checkout``; the remaining sessions never purchase.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sample_data import affinity
from sample_data.calendar import (
    _END_US,
    _PRODUCT_DAYS,
    _SIGNUP_DAYS,
    _US_PER_DAY,
    _US_PER_S,
    _calendar_cdf,
    _mass_before,
    _sample_times,
)
from sample_data.clickstream import _clickstream, _make_sessions
from sample_data.columns import _TS, _dates, _decimal, _ids, _in_groups, _labels, _nullable, _p
from sample_data.records import (
    FloatArray,
    IntArray,
    Rng,
    _Customers,
    _Items,
    _Orders,
    _Products,
    _Sampler,
)
from sample_data.vocabulary import (
    _ADJECTIVES,
    _BRANDS,
    _CAT_NAMES,
    _CAT_SHARE,
    _CATEGORIES,
    _CHANNEL_P,
    _CHANNELS,
    _COUNTRIES,
    _EMAIL_DOMAINS,
    _FIRST_NAMES,
    _LAST_NAMES,
    _NOUNS,
    _SEGMENT_ACTIVITY,
    _SEGMENT_P,
    _SEGMENTS,
    _STATUS_P,
    _STATUSES,
    _words,
)

TABLES: tuple[str, ...] = (
    "retail.customers",
    "retail.products",
    "retail.orders",
    "retail.order_items",
    "web.clickstream",
)


def generate(scale: float = 1.0, seed: int = 42) -> dict[str, pa.Table]:
    """Return ``{name: table}`` for every name in :data:`TABLES`, in that order.

    Identical ``(scale, seed)`` give identical tables. Raises ``ValueError`` if scale <= 0.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rng = np.random.default_rng(seed)
    cal = _calendar_cdf()
    customers, cust = _make_customers(rng, max(50, round(20_000 * scale)), cal)
    products, prod = _make_products(rng, max(50, round(2_000 * scale)))
    taste = _customer_tastes(rng, cust, prod)
    orders = _make_orders(rng, max(100, round(100_000 * scale)), cust, cal)
    items = _make_items(rng, orders, cust, prod, taste)
    sessions = _make_sessions(rng, orders, cust, cal, max(1_000, round(1_000_000 * scale)))
    clicks, order_session = _clickstream(rng, sessions, orders, items, prod, taste)
    orders_t = _orders_table(orders, items, order_session)
    tables = (customers, products, orders_t, _items_table(items, prod), clicks)
    return dict(zip(TABLES, tables, strict=True))


def _make_customers(rng: Rng, n: int, cal: FloatArray) -> tuple[pa.Table, _Customers]:
    """Customers table; 15% are inactive, the rest order at a gamma-distributed rate."""
    first = _labels(_FIRST_NAMES, rng.integers(0, len(_FIRST_NAMES), n))
    last = _labels(_LAST_NAMES, rng.integers(0, len(_LAST_NAMES), n))
    country = rng.choice(len(_COUNTRIES), n, p=_p([v[0] for v in _COUNTRIES.values()]))
    cities = [_words(v[1], "|") for v in _COUNTRIES.values()]
    city = _in_groups(rng, country, cities)
    segment = rng.choice(len(_SEGMENTS), n, p=_SEGMENT_P)
    span = _SIGNUP_DAYS[1] - _SIGNUP_DAYS[0]
    signup = _SIGNUP_DAYS[0] + np.floor(span * rng.random(n) ** 0.85).astype(np.int64)
    created = signup * _US_PER_DAY + rng.integers(6 * 3600, 23 * 3600, n) * _US_PER_S
    rate = rng.gamma(1.0, 1.0, n) * _SEGMENT_ACTIVITY[segment] * (rng.random(n) >= 0.15)
    ids = pa.array(np.arange(1, n + 1, dtype=np.int64))
    domain = _labels(_EMAIL_DOMAINS, rng.integers(0, len(_EMAIL_DOMAINS), n))
    email = pc.binary_join_element_wise(
        pc.utf8_lower(first), ".", pc.utf8_lower(last), ids.cast(pa.string()), "@", domain, ""
    )
    table = pa.table(
        {
            "customer_id": ids,
            "first_name": first,
            "last_name": last,
            "email": email,
            "country": _labels(tuple(_COUNTRIES), country),
            "city": _labels([c for g in cities for c in g], city),
            "segment": _labels(_SEGMENTS, segment),
            "signup_date": _dates(created),
            "created_at": pa.array(created, _TS),
        }
    )
    fav = rng.choice(len(_CAT_NAMES), n, p=_p(_CAT_SHARE)).astype(np.int64)
    weight = rate * (1.0 - _mass_before(cal, created))  # late sign-ups have less time to buy
    return table, _Customers(created, weight, fav, segment.astype(np.int64))


def _make_products(rng: Rng, n: int) -> tuple[pa.Table, _Products]:
    """Products table; every category has a product, popularity ~ rank ** -1.1."""
    cat = rng.choice(len(_CAT_NAMES), n, p=_p(_CAT_SHARE))
    cat[: len(_CAT_NAMES)] = np.arange(len(_CAT_NAMES))
    brand = _labels([b for g in _BRANDS for b in g], _in_groups(rng, cat, _BRANDS))
    noun = _labels([w for g in _NOUNS for w in g], _in_groups(rng, cat, _NOUNS))
    adjective = _labels(_ADJECTIVES, rng.integers(0, len(_ADJECTIVES), n))
    raw = np.array([v[1] for v in _CATEGORIES.values()])[cat] * np.exp(rng.normal(0.0, 0.55, n))
    price = np.maximum(np.ceil(raw) * 100 - 1, 99).astype(np.int64)  # x.99 prices
    cost = np.clip(np.floor(price * rng.uniform(0.35, 0.8, n)), 1, price - 1).astype(np.int64)
    weight = ((rng.permutation(n) + 1.0) ** -1.1).astype(np.float64)
    days = rng.integers(0, (_PRODUCT_DAYS[1] - _PRODUCT_DAYS[0]) * _US_PER_DAY, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    code = _labels([c[:3].upper() for c in _CAT_NAMES], cat)
    table = pa.table(
        {
            "product_id": pa.array(ids),
            "sku": pc.binary_join_element_wise(code, _ids("", ids, 6), "-"),
            "name": pc.binary_join_element_wise(brand, adjective, noun, " "),
            "category": _labels(_CAT_NAMES, cat),
            "brand": brand,
            "price": _decimal(price),
            "cost": _decimal(cost),
            "created_at": pa.array(_PRODUCT_DAYS[0] * _US_PER_DAY + days, _TS),
        }
    )
    overall = _Sampler.build(weight, np.zeros(n, np.int64))
    by_cat = _Sampler.build(weight, cat.astype(np.int64))
    group = affinity.taste_groups(cat.astype(np.int64), weight)
    group_cat = np.zeros(int(group.max()) + 1, np.int64)
    group_cat[group] = cat
    companion = affinity.companions(rng, group_cat)
    by_group = _Sampler.build(weight**affinity.GROUP_FLATNESS, group)
    in_season = weight[None, :] * affinity.season_factors(_CAT_NAMES)[:, cat]
    seasonal = _Sampler.build(in_season.ravel(), np.repeat(np.arange(12), n))
    return table, _Products(price, overall, by_cat, group, by_group, companion, seasonal)


def _customer_tastes(rng: Rng, cust: _Customers, prod: _Products) -> IntArray:
    """(customers, 2) taste groups: one in the favourite category, one anywhere."""
    n = len(cust.fav_cat)
    first = prod.group[prod.by_cat.draw(rng, cust.fav_cat)]
    second = prod.group[prod.overall.draw(rng, np.zeros(n, np.int64))]
    return np.column_stack([first, second]).astype(np.int64)


def _make_orders(rng: Rng, n: int, cust: _Customers, cal: FloatArray) -> _Orders:
    """Orders sorted by time; buyers drawn by order rate, times seasonal and after sign-up."""
    who = rng.choice(len(cust.weight), n, p=cust.weight / cust.weight.sum())
    ts = _sample_times(rng, cal, cust.created_us[who])
    by_time = np.argsort(ts, kind="stable")
    who, ts = who[by_time], ts[by_time]
    channel = rng.choice(len(_CHANNELS), n, p=_CHANNEL_P).astype(np.int64)
    status = rng.choice(len(_STATUSES), n, p=_STATUS_P).astype(np.int64)
    in_transit = (ts > _END_US - 10 * _US_PER_DAY) & (status == 0) & (rng.random(n) < 0.8)
    status = np.where(in_transit, 1, status)
    count = np.minimum(1 + rng.poisson(1.5, n), 8).astype(np.int64)
    return _Orders(who.astype(np.int64), ts, channel, status, count, np.cumsum(count) - count)


def _make_items(
    rng: Rng, orders: _Orders, cust: _Customers, prod: _Products, taste: IntArray
) -> _Items:
    """Order lines: distinct products per order, drawn by the buyer's affinities."""
    order = np.repeat(np.arange(len(orders.ts)), orders.item_count)
    n = len(order)
    buyer = orders.customer[order]
    day = (orders.ts[order] // _US_PER_DAY).astype("datetime64[D]")
    month = day.astype("datetime64[M]").astype(np.int64) % 12
    product = _line_products(rng, buyer, month, cust, prod, taste)
    line = np.arange(n) - orders.item_start[order] + 1
    first = product[orders.item_start[order]]
    companion = prod.by_group.draw(rng, prod.companion[prod.group[first]])
    paired = (line > 1) & (rng.random(n) < affinity.COMPANION_SHARE)
    product = _dedupe(rng, order, np.where(paired, companion, product), prod)
    corporate = cust.segment[buyer] == 2
    quantity = np.minimum(rng.geometric(np.where(corporate, 0.4, 0.7)), 10).astype(np.int64)
    gross = prod.price_cents[product] * quantity
    pct = rng.choice(np.array([0, 5, 10, 15, 20]), n, p=[0.75, 0.08, 0.08, 0.05, 0.04])
    discount = gross * pct // 100
    return _Items(order, line, product, quantity, discount, gross - discount)


def _line_products(
    rng: Rng,
    buyer: IntArray,
    month: IntArray,
    cust: _Customers,
    prod: _Products,
    taste: IntArray,
) -> IntArray:
    """Product per line from a taste group, the favourite category or the season's mix."""
    source = affinity.line_sources(rng, len(buyer))
    tasted = prod.by_group.draw(rng, affinity.pick_taste(rng, taste, buyer))
    favourite = prod.by_cat.draw(rng, cust.fav_cat[buyer])
    seasonal = prod.seasonal.draw(rng, month) % len(prod.price_cents)
    picked: IntArray = np.select([source == 0, source == 1], [tasted, favourite], seasonal)
    return picked


def _dedupe(rng: Rng, order: IntArray, product: IntArray, prod: _Products) -> IntArray:
    """Redraw products repeated within an order until every order's products are distinct."""
    product = product.copy()
    for attempt in range(200):
        srt = np.lexsort((product, order))
        same = (order[srt][1:] == order[srt][:-1]) & (product[srt][1:] == product[srt][:-1])
        dup = srt[1:][same]
        if dup.size == 0:
            return product
        if attempt < 10:
            product[dup] = prod.overall.draw(rng, np.zeros(dup.size, np.int64))
        else:
            product[dup] = rng.integers(0, len(prod.price_cents), dup.size)
    raise RuntimeError("could not make order lines distinct")


def _orders_table(orders: _Orders, items: _Items, order_session: IntArray) -> pa.Table:
    """retail.orders; total_amount is the exact sum of the order's line amounts."""
    return pa.table(
        {
            "order_id": _nullable(np.arange(len(orders.ts), dtype=np.int64)),
            "customer_id": _nullable(orders.customer),
            "order_ts": pa.array(orders.ts, _TS),
            "order_date": _dates(orders.ts),
            "status": _labels(_STATUSES, orders.status),
            "channel": _labels(_CHANNELS, orders.channel),
            "item_count": pa.array(orders.item_count.astype(np.int32)),
            "total_amount": _decimal(np.add.reduceat(items.amount, orders.item_start)),
            "session_id": _ids("S", order_session, 9),
        }
    )


def _items_table(items: _Items, prod: _Products) -> pa.Table:
    """retail.order_items; unit_price is the product's list price."""
    return pa.table(
        {
            "order_id": _nullable(items.order),
            "line_number": pa.array(items.line.astype(np.int32)),
            "product_id": _nullable(items.product),
            "quantity": pa.array(items.quantity.astype(np.int32)),
            "unit_price": _decimal(prod.price_cents[items.product]),
            "discount": _decimal(items.discount),
            "line_amount": _decimal(items.amount),
        }
    )
