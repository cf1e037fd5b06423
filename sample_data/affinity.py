"""Product affinities that make the retail sample learnable by a recommender.

Without them every order line is drawn from global popularity (plus a favourite
category), so a most-popular list is as good as any model. Real shops are not
like that; these three structures are what a recommender learns from:

* **taste groups**: each category's products, by popularity, are cut into groups of
  about ``GROUP_SIZE`` (a "line" of related products that sell alike); every buyer
  has two groups they keep coming back to, one inside their favourite category and
  one anywhere, and known visitors mostly browse them;
* **co-purchase**: each group has a companion group in another category (phone ->
  charger); later lines of an order often come from the first line's companion;
* **seasonality by category**: garden sells in spring and summer, toys and
  electronics in November and December, sports in January.

All functions are pure numpy on a caller-supplied ``numpy.random.Generator``, so the
sample stays deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Rng = np.random.Generator

GROUP_SIZE = 20
"""Products per taste group (a category smaller than this is one group)."""

GROUP_FLATNESS = 0.8
"""Popularity within a taste group is the product's Zipf weight to this power (flatter)."""

TASTE_SHARE = 0.6
"""Share of a buyer's order lines drawn from their taste groups."""

FAVOURITE_SHARE = 0.1
"""Share drawn from the favourite category at large (after the taste share)."""

PRIMARY_TASTE = 0.65
"""Share of taste-group lines from the buyer's first (favourite-category) group."""

COMPANION_SHARE = 0.3
"""Share of an order's later lines drawn from its first line's companion group."""

BROWSE_TASTE_SHARE = 0.8
"""Share of a known visitor's product views drawn from their taste groups."""

# Month multipliers (Jan..Dec) for categories whose demand is seasonal; others are flat.
_SEASONS = {
    "garden": (0.5, 0.6, 1.2, 1.8, 2.0, 1.8, 1.5, 1.1, 0.8, 0.6, 0.5, 0.5),
    "toys": (0.7, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.0, 2.2, 2.8),
    "electronics": (0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.0, 1.0, 1.0, 1.6, 1.8),
    "sports": (1.8, 1.4, 1.2, 1.1, 1.1, 1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.9),
}


def taste_groups(category: IntArray, popularity: FloatArray) -> IntArray:
    """Group id per product (0..G-1): each category's products, by popularity, cut into
    runs of about ``GROUP_SIZE`` (a product line sells about as well as its siblings).

    Every group holds products of one category only, and every id in 0..G-1 is used.
    """
    n = len(category)
    order = np.lexsort((-popularity, category))
    cat_sorted = category[order]
    first = np.r_[True, cat_sorted[1:] != cat_sorted[:-1]]
    run = np.cumsum(first) - 1
    rank = np.arange(n) - np.flatnonzero(first)[run]
    size = np.diff(np.r_[np.flatnonzero(first), n])[run]
    per_cat = np.maximum(size // GROUP_SIZE, 1)
    local = np.minimum(rank * per_cat // size, per_cat - 1)
    _, dense = np.unique(cat_sorted * (n + 1) + local, return_inverse=True)
    group = np.empty(n, np.int64)
    group[order] = dense
    return group


def companions(rng: Rng, group_category: IntArray) -> IntArray:
    """A companion group per group, in another category when there is one."""
    n = len(group_category)
    pick = rng.integers(0, n, n)
    for _ in range(8):  # redraw the few that landed in their own category
        same = group_category[pick] == group_category
        if not same.any():
            break
        pick[same] = rng.integers(0, n, int(same.sum()))
    return pick


def season_factors(category_names: tuple[str, ...]) -> FloatArray:
    """(12, C) demand multiplier per month (row 0 = January) and category."""
    factors = np.ones((12, len(category_names)))
    for c, name in enumerate(category_names):
        if name in _SEASONS:
            factors[:, c] = _SEASONS[name]
    return factors


def line_sources(rng: Rng, n: int) -> IntArray:
    """Where each order line comes from: 0 taste group, 1 favourite category, 2 the
    month's popularity (Zipf-like popularity times the category's season)."""
    u = rng.random(n)
    source: IntArray = np.where(u < TASTE_SHARE, 0, 2).astype(np.int64)
    source[(u >= TASTE_SHARE) & (u < TASTE_SHARE + FAVOURITE_SHARE)] = 1
    return source


def pick_taste(rng: Rng, tastes: IntArray, who: IntArray) -> IntArray:
    """One of the two taste groups of each ``who`` (the first with ``PRIMARY_TASTE``)."""
    second = (rng.random(len(who)) >= PRIMARY_TASTE).astype(np.int64)
    picked: IntArray = tastes[who, second]
    return picked
