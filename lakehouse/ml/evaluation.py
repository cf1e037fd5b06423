"""Ranking metrics and the time-based hold-out for recommenders (pure numpy, no services).

The hold-out is what a shop would see: train on everything before a cut-off,
then ask which products each customer bought in the last weeks that they had
not bought before. Items a customer already bought in training are excluded
from the truth here, and from every ranked list by the recommender, the same
way for the model and for the most-popular baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class HoldOut:
    """Truth for a time-based hold-out.

    ``cutoff_us`` is the first hold-out instant (microseconds since the epoch):
    training uses events strictly before it. ``truth`` maps a customer id to the
    products first bought at or after it (never empty).
    """

    cutoff_us: int
    truth: dict[int, frozenset[int]]


def holdout_cutoff(purchase_ts_us: npt.NDArray[np.int64], holdout_days: int) -> int:
    """The cut-off ``holdout_days`` before the last purchase (microseconds).

    Raises ValueError when there are no purchases or ``holdout_days`` < 1.
    """
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be at least 1, got {holdout_days}")
    if len(purchase_ts_us) == 0:
        raise ValueError("no purchases to split")
    return int(purchase_ts_us.max()) - holdout_days * US_PER_DAY


def holdout_truth(
    customer: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    ts_us: npt.NDArray[np.int64],
    cutoff_us: int,
) -> HoldOut:
    """Per customer, the products bought at or after ``cutoff_us`` and never before it."""
    before = ts_us < cutoff_us
    bought_before = set(zip(customer[before].tolist(), product[before].tolist(), strict=True))
    truth: dict[int, set[int]] = {}
    for c, p in zip(customer[~before].tolist(), product[~before].tolist(), strict=True):
        if (c, p) not in bought_before:
            truth.setdefault(c, set()).add(p)
    return HoldOut(cutoff_us, {c: frozenset(ps) for c, ps in truth.items()})


def precision_at_k(recommended: Sequence[int], relevant: frozenset[int], k: int) -> float:
    """Share of the first ``k`` slots holding a relevant item (an empty slot counts as a miss)."""
    return sum(1 for item in recommended[:k] if item in relevant) / k


def recall_at_k(recommended: Sequence[int], relevant: frozenset[int], k: int) -> float:
    """Share of the relevant items found in the first ``k``; 0 when nothing is relevant."""
    if not relevant:
        return 0.0
    return sum(1 for item in recommended[:k] if item in relevant) / len(relevant)


def average_precision_at_k(recommended: Sequence[int], relevant: frozenset[int], k: int) -> float:
    """AP@k: mean of precision@i at each hit i <= k, divided by min(k, |relevant|)."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / i
    return total / min(k, len(relevant))


def ranking_metrics(
    recommended: Mapping[int, Sequence[int]], truth: Mapping[int, frozenset[int]], k: int
) -> dict[str, float]:
    """``precision@k``, ``recall@k`` and ``map@k`` averaged over the customers in ``truth``.

    A customer of ``truth`` missing from ``recommended`` counts as an empty list.
    Raises ValueError when ``truth`` is empty.
    """
    if not truth:
        raise ValueError("no hold-out customers to evaluate")
    sums = {f"precision_at_{k}": 0.0, f"recall_at_{k}": 0.0, f"map_at_{k}": 0.0}
    for customer, relevant in truth.items():
        ranked = recommended.get(customer, ())
        sums[f"precision_at_{k}"] += precision_at_k(ranked, relevant, k)
        sums[f"recall_at_{k}"] += recall_at_k(ranked, relevant, k)
        sums[f"map_at_{k}"] += average_precision_at_k(ranked, relevant, k)
    return {name: total / len(truth) for name, total in sums.items()}
