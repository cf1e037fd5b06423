"""web.clickstream: converting and browse-only sessions, their events and the table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sample_data import affinity
from sample_data.calendar import _START_US, _US_PER_S, _sample_times
from sample_data.columns import _TS, _dates, _ids, _labels, _nullable
from sample_data.records import FloatArray, IntArray, Rng, _Customers, _Items, _Orders, _Products
from sample_data.vocabulary import (
    _ADD,
    _BROWSE_PAGES,
    _CHECKOUT,
    _DEVICE_CDF,
    _DEVICES,
    _EVENT_TYPES,
    _N_PHASES,
    _PAGES,
    _PURCHASE,
    _PV,
    _REFERRER_P,
    _REFERRERS,
    _REMOVE,
    _SEARCH,
    _SEARCH_TERMS,
    _STORE,
    _VIEW,
)


@dataclass(frozen=True)
class _Sessions:
    """Converting sessions (one per web/mobile order) first, then browse-only sessions."""

    customer: IntArray  # customer index, -1 = anonymous
    order: IntArray  # order index, -1 = no purchase
    anchor: IntArray  # purchase time (converting) or start time (browse-only)
    device: IntArray
    referrer: IntArray
    phases: IntArray  # (n_sessions, _N_PHASES): number of events per template phase


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
