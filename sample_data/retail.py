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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sample_data import affinity
from sample_data.vocabulary import (
    _ADD,
    _ADJECTIVES,
    _BRANDS,
    _BROWSE_PAGES,
    _CAT_NAMES,
    _CAT_SHARE,
    _CATEGORIES,
    _CHANNEL_P,
    _CHANNELS,
    _CHECKOUT,
    _COUNTRIES,
    _DEVICE_CDF,
    _DEVICES,
    _EMAIL_DOMAINS,
    _EVENT_TYPES,
    _FIRST_NAMES,
    _HOUR_W,
    _LAST_NAMES,
    _MONTH_W,
    _N_PHASES,
    _NOUNS,
    _PAGES,
    _PROMO_DAYS,
    _PURCHASE,
    _PV,
    _REFERRER_P,
    _REFERRERS,
    _REMOVE,
    _SEARCH,
    _SEARCH_TERMS,
    _SEGMENT_ACTIVITY,
    _SEGMENT_P,
    _SEGMENTS,
    _STATUS_P,
    _STATUSES,
    _STORE,
    _VIEW,
    _WEEKDAY_W,
    _words,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Rng = np.random.Generator

TABLES: tuple[str, ...] = (
    "retail.customers",
    "retail.products",
    "retail.orders",
    "retail.order_items",
    "web.clickstream",
)

_US_PER_S = 1_000_000
_US_PER_HOUR = 3600 * _US_PER_S
_US_PER_DAY = 24 * _US_PER_HOUR
_EPOCH = date(1970, 1, 1)
_DAY0 = (date(2024, 1, 1) - _EPOCH).days
_N_DAYS = (date(2026, 1, 1) - date(2024, 1, 1)).days
_START_US = _DAY0 * _US_PER_DAY
_END_US = (_DAY0 + _N_DAYS) * _US_PER_DAY
_MARGIN_US = 3 * _US_PER_HOUR  # longer than the longest possible session
_SIGNUP_DAYS = ((date(2020, 1, 1) - _EPOCH).days, (date(2025, 12, 1) - _EPOCH).days)
_PRODUCT_DAYS = ((date(2022, 1, 1) - _EPOCH).days, _DAY0)
_MONEY = pa.decimal128(12, 2)
_TS = pa.timestamp("us")
_CENT = pa.scalar(Decimal("0.01"), pa.decimal128(3, 2))


@dataclass(frozen=True)
class _Sampler:
    """Inverse-CDF sampler over items split into groups 0..G-1; group g's cdf lies in (g, g+1]."""

    items: IntArray
    cdf: FloatArray

    @classmethod
    def build(cls, weights: FloatArray, groups: IntArray) -> _Sampler:
        """Every group id in 0..max(groups) must own at least one item with positive weight."""
        order = np.lexsort((np.arange(len(groups)), groups))
        w, g = weights[order], groups[order]
        first = np.r_[True, g[1:] != g[:-1]]
        seg = np.cumsum(first) - 1
        cum = np.cumsum(w)
        cdf = g + (cum - (cum - w)[first][seg]) / np.add.reduceat(w, np.flatnonzero(first))[seg]
        last = np.r_[g[1:] != g[:-1], True]
        cdf[last] = g[last] + 1.0
        return cls(order.astype(np.int64), cdf)

    def draw(self, rng: Rng, groups: IntArray) -> IntArray:
        """One weighted item per entry of ``groups``, drawn within that group."""
        pos = np.searchsorted(self.cdf, groups + rng.random(len(groups)), side="right")
        return self.items[np.minimum(pos, len(self.items) - 1)]


@dataclass(frozen=True)
class _Customers:
    """Customer attributes used by the fact tables (index = customer_id - 1)."""

    created_us: IntArray
    weight: FloatArray  # relative order rate; 0 for customers who never order
    fav_cat: IntArray
    segment: IntArray


@dataclass(frozen=True)
class _Products:
    """Product attributes used by the fact tables (index = product_id - 1)."""

    price_cents: IntArray
    overall: _Sampler  # Zipf-like popularity over all products (single group 0)
    by_cat: _Sampler  # the same popularity within each category
    group: IntArray  # taste group per product (see sample_data.affinity)
    by_group: _Sampler  # the same popularity within each taste group
    companion: IntArray  # companion group per taste group
    seasonal: _Sampler  # popularity x category season; group = month, item = month * n + product


@dataclass(frozen=True)
class _Orders:
    """Orders sorted by time (index = order_id - 1) and the position of their lines."""

    customer: IntArray
    ts: IntArray
    channel: IntArray
    status: IntArray
    item_count: IntArray
    item_start: IntArray


@dataclass(frozen=True)
class _Items:
    """Order lines, grouped by order and numbered from 1 within it."""

    order: IntArray
    line: IntArray
    product: IntArray
    quantity: IntArray
    discount: IntArray
    amount: IntArray


@dataclass(frozen=True)
class _Sessions:
    """Converting sessions (one per web/mobile order) first, then browse-only sessions."""

    customer: IntArray  # customer index, -1 = anonymous
    order: IntArray  # order index, -1 = no purchase
    anchor: IntArray  # purchase time (converting) or start time (browse-only)
    device: IntArray
    referrer: IntArray
    phases: IntArray  # (n_sessions, _N_PHASES): number of events per template phase


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


def _decimal(cents: IntArray) -> pa.Array:
    """Exact ``decimal128(12, 2)`` from integer cents (no float rounding involved)."""
    whole = pa.array(cents, pa.int64()).cast(pa.decimal128(19, 0))
    return pc.multiply(whole, _CENT).cast(_MONEY)


def _labels(values: Sequence[str | None], idx: IntArray) -> pa.Array:
    """String array ``values[idx]``; negative indices and ``None`` values become null."""
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int64(), mask=idx < 0))


def _ids(prefix: str, numbers: IntArray, width: int) -> pa.Array:
    """Zero-padded string ids like ``S000000042``; null where ``numbers < 0``."""
    text = pa.array(numbers, pa.int64(), mask=numbers < 0).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(text, width, "0"), "")


def _nullable(index: IntArray) -> pa.Array:
    """int64 ids ``index + 1``, null where ``index < 0``."""
    return pa.array(index + 1, pa.int64(), mask=index < 0)


def _dates(us: IntArray) -> pa.Array:
    """date32 of microsecond timestamps."""
    return pa.array((us // _US_PER_DAY).astype(np.int32), pa.date32())


def _p(weights: Sequence[float]) -> FloatArray:
    """Weights normalised to probabilities."""
    w = np.asarray(weights, dtype=np.float64)
    p: FloatArray = w / w.sum()
    return p


def _in_groups(rng: Rng, group: IntArray, groups: Sequence[Sequence[str]]) -> IntArray:
    """Uniform index into ``flatten(groups)``, restricted to the member's group."""
    size = np.array([len(g) for g in groups], dtype=np.int64)
    offset = np.cumsum(size) - size
    return offset[group] + np.floor(rng.random(len(group)) * size[group]).astype(np.int64)


def _calendar_cdf() -> FloatArray:
    """CDF over the days of 2024-2025: month seasonality, weekdays, promo days, growth."""
    day_numbers = np.arange(_DAY0, _DAY0 + _N_DAYS)
    month = day_numbers.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    w = _MONTH_W[month] * _WEEKDAY_W[(day_numbers + 3) % 7]
    w = w * (1.0 + 0.1 * np.arange(_N_DAYS) / _N_DAYS)
    for day, factor in _PROMO_DAYS.items():
        w[(day - date(2024, 1, 1)).days] *= factor
    cdf: FloatArray = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    return cdf


def _mass_before(cdf: FloatArray, us: IntArray) -> FloatArray:
    """Share of the calendar's activity lying before the day of each timestamp."""
    day = np.clip(us // _US_PER_DAY - _DAY0, 0, _N_DAYS)
    mass: FloatArray = np.where(day > 0, cdf[np.maximum(day - 1, 0)], 0.0)
    return mass


def _sample_times(rng: Rng, cdf: FloatArray, floor_us: IntArray) -> IntArray:
    """Seasonal timestamps >= 3 h after ``floor_us``, at least 3 h inside 2024-2025."""
    n = len(floor_us)
    lo = _mass_before(cdf, floor_us)
    day = np.searchsorted(cdf, lo + rng.random(n) * (1.0 - lo), side="right")
    hour = np.searchsorted(np.cumsum(_HOUR_W) / _HOUR_W.sum(), rng.random(n), side="right")
    ts = (_DAY0 + np.minimum(day, _N_DAYS - 1)) * _US_PER_DAY + np.minimum(hour, 23) * _US_PER_HOUR
    ts = ts + rng.integers(0, _US_PER_HOUR, n)
    lower = np.maximum(floor_us, _START_US) + _MARGIN_US
    jitter = rng.integers(0, _US_PER_HOUR, n)  # clamped times must not pile up on one instant
    ts = np.where(ts < lower, lower + jitter, ts)
    return np.where(ts > _END_US - _MARGIN_US, _END_US - _MARGIN_US - jitter, ts)


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


def _phases(rng: Rng, cart_items: IntArray, converting: bool, browse_mean: float) -> IntArray:
    """Events per template phase (see ``_N_PHASES``) for each session; at most 46 events."""
    n = len(cart_items)
    ph = np.zeros((n, _N_PHASES), np.int64)
    ph[:, 0] = 1
    ph[:, 1] = np.minimum(rng.poisson(browse_mean, n), 15)
    ph[:, 2] = 2 * cart_items
    ph[:, 3] = 3 * (rng.random(n) < 0.12)
    if converting:
        ph[:, 4:] = 1
    else:
        ph[:, 4] = (cart_items > 0) & (rng.random(n) < 0.6)
        ph[:, 5] = ph[:, 4] * (rng.random(n) < 0.4)
    return ph


def _make_sessions(
    rng: Rng, orders: _Orders, cust: _Customers, cal: FloatArray, target: int
) -> _Sessions:
    """One converting session per web/mobile order, then browse-only ones up to ~target events."""
    conv = np.flatnonzero(orders.channel != _STORE)
    conv_ph = _phases(rng, orders.item_count[conv], True, 0.8)
    remaining, min_n = target - int(conv_ph.sum()), max(1, len(conv) // 2)
    cand = max(remaining // 2, min_n) + 1
    cart = np.where(rng.random(cand) < 0.3, rng.integers(1, 3, cand), 0)
    browse_ph = _phases(rng, cart, False, 2.0)
    fits = int(np.searchsorted(np.cumsum(browse_ph.sum(1)), remaining, side="right"))
    n_b = max(min_n, fits)
    who = np.where(rng.random(n_b) < 0.35, rng.integers(0, len(cust.weight), n_b), -1)
    start = _sample_times(rng, cal, np.where(who >= 0, cust.created_us[who], _START_US))
    purchase = orders.ts[conv] - rng.integers(0, 3 * _US_PER_S + 1, len(conv))
    group = np.r_[orders.channel[conv], np.full(n_b, 2)]  # web, app, browse-only
    u = rng.random(len(group))
    device = np.minimum((u[:, None] >= _DEVICE_CDF[group]).sum(1), 2).astype(np.int64)
    referrer = rng.choice(len(_REFERRERS), len(group), p=_REFERRER_P).astype(np.int64)
    customer = np.r_[orders.customer[conv], who].astype(np.int64)
    order = np.r_[conv, np.full(n_b, -1)].astype(np.int64)
    phases = np.vstack([conv_ph, browse_ph[:n_b]])
    return _Sessions(customer, order, np.r_[purchase, start], device, referrer, phases)


def _layout(phases: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
    """Per event: session, position, phase, position within phase; per session: first event."""
    length = phases.sum(1)
    first = np.cumsum(length) - length
    sess = np.repeat(np.arange(len(length)), length)
    pos = np.arange(len(sess)) - first[sess]
    ends = np.cumsum(phases, axis=1)
    phase = np.zeros(len(sess), np.int64)
    for k in range(_N_PHASES - 1):
        phase += pos >= ends[sess, k]
    within = pos - (ends - phases)[sess, phase]
    return sess, pos, phase, within, first


def _event_kinds(
    rng: Rng, phase: IntArray, within: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Event type, static page index and search term index (-1 if none) per event."""
    kind = np.array([_PV, _PV, _VIEW, _VIEW, _PV, _CHECKOUT, _PURCHASE])[phase]
    browse = phase == 1
    kind[browse] = rng.choice([_PV, _SEARCH, _VIEW], int(browse.sum()), p=[0.55, 0.2, 0.25])
    kind[(phase == 2) & (within % 2 == 1)] = _ADD
    extra = phase == 3
    kind[extra] = np.array([_VIEW, _ADD, _REMOVE])[within[extra]]
    page = np.array([0, 0, 0, 0, 1, 2, 3])[phase]  # "/", "/cart", "/checkout", confirmation
    page[kind == _SEARCH] = 4
    page[kind == _REMOVE] = 1
    browse_pv = browse & (kind == _PV)
    page[browse_pv] = _BROWSE_PAGES[rng.integers(0, len(_BROWSE_PAGES), int(browse_pv.sum()))]
    term = np.where(kind == _SEARCH, rng.integers(0, len(_SEARCH_TERMS), len(kind)), -1)
    return kind, page, term


def _event_products(
    rng: Rng,
    kind: IntArray,
    phase: IntArray,
    within: IntArray,
    order: IntArray,
    visitor: IntArray,
    orders: _Orders,
    items: _Items,
    prod: _Products,
    taste: IntArray,
) -> IntArray:
    """Product index per event (-1 if none); a converting cart holds exactly the order's lines.

    Known visitors (``visitor >= 0``) view products of their taste groups half the time.
    """
    product = prod.overall.draw(rng, np.zeros(len(kind), np.int64))
    known = np.flatnonzero((visitor >= 0) & (rng.random(len(kind)) < affinity.BROWSE_TASTE_SHARE))
    product[known] = prod.by_group.draw(rng, affinity.pick_taste(rng, taste, visitor[known]))
    cart = (phase == 2) & (order >= 0)
    product[cart] = items.product[orders.item_start[order[cart]] + within[cart] // 2]
    src = np.arange(len(kind))  # add/remove events act on the product viewed just before
    src[phase == 2] -= within[phase == 2] % 2
    src[phase == 3] -= within[phase == 3]
    return np.where(np.isin(kind, (_VIEW, _ADD, _REMOVE)), product[src], -1)


def _event_times(
    rng: Rng, s: _Sessions, sess: IntArray, first: IntArray
) -> tuple[IntArray, IntArray]:
    """Event times strictly increasing within a session (1-180 s apart), and session starts.

    Converting sessions end exactly at their purchase time.
    """
    gap = _US_PER_S + (rng.exponential(25.0, len(sess)) * _US_PER_S).astype(np.int64)
    gap = np.minimum(gap, 180 * _US_PER_S)
    gap[first] = 0
    cum = np.cumsum(gap)
    offset = cum - cum[first][sess]
    last = np.r_[first[1:], len(sess)] - 1
    start = np.where(s.order >= 0, s.anchor - offset[last], s.anchor)
    return start[sess] + offset, start


def _clickstream(
    rng: Rng, s: _Sessions, orders: _Orders, items: _Items, prod: _Products, taste: IntArray
) -> tuple[pa.Table, IntArray]:
    """Clickstream sorted by session start then position; and session number per order (-1)."""
    sess, pos, phase, within, first = _layout(s.phases)
    kind, page, term = _event_kinds(rng, phase, within)
    visitor = s.customer[sess]
    product = _event_products(
        rng, kind, phase, within, s.order[sess], visitor, orders, items, prod, taste
    )
    ts, start = _event_times(rng, s, sess, first)
    number = np.empty(len(start), np.int64)
    number[np.argsort(start, kind="stable")] = np.arange(1, len(start) + 1)
    perm = np.argsort(number[sess], kind="stable")
    ev = {"sess": sess, "pos": pos, "kind": kind, "page": page, "term": term, "product": product}
    ev = {name: values[perm] for name, values in (ev | {"ts": ts}).items()}
    order_session = np.full(len(orders.ts), -1, np.int64)
    order_session[s.order[s.order >= 0]] = number[s.order >= 0]
    return _clickstream_table(ev, s, number), order_session


def _clickstream_table(ev: dict[str, IntArray], s: _Sessions, number: IntArray) -> pa.Table:
    """web.clickstream from per-event arrays; product pages are ``/product/<product_id>``."""
    sess, kind, product, ts = ev["sess"], ev["kind"], ev["product"], ev["ts"]
    session_id = _ids("S", number[sess], 9)
    product_page = pc.binary_join_element_wise(
        "/product/", _nullable(product).cast(pa.string()), ""
    )
    is_product_page = pa.array(np.isin(kind, (_VIEW, _ADD)))
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise(session_id, _ids("", ev["pos"], 3), "-"),
            "session_id": session_id,
            "customer_id": _nullable(s.customer[sess]),
            "event_ts": pa.array(ts, _TS),
            "event_date": _dates(ts),
            "event_type": _labels(_EVENT_TYPES, kind),
            "page": pc.if_else(is_product_page, product_page, _labels(_PAGES, ev["page"])),
            "product_id": _nullable(product),
            "search_query": _labels(_SEARCH_TERMS, ev["term"]),
            "order_id": _nullable(np.where(kind == _PURCHASE, s.order[sess], -1)),
            "device": _labels(_DEVICES, s.device[sess]),
            "referrer": _labels(_REFERRERS, s.referrer[sess]),
        }
    )


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
