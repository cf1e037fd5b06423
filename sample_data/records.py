"""The generator's intermediate arrays per entity, and its weighted sampler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Rng = np.random.Generator


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
