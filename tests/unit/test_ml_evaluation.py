"""Ranking metrics and the time-based hold-out, checked against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from lakehouse.ml import evaluation as ev

DAY = ev.US_PER_DAY


def test_precision_counts_empty_slots_as_misses() -> None:
    assert ev.precision_at_k([1, 2, 3], frozenset({2, 9}), 10) == pytest.approx(0.1)
    assert ev.precision_at_k([5, 6], frozenset({5, 6}), 2) == 1.0
    # Only the first k count.
    assert ev.precision_at_k([7, 1], frozenset({1}), 1) == 0.0


def test_recall_divides_by_every_relevant_item() -> None:
    assert ev.recall_at_k([1, 2, 3], frozenset({2, 9}), 10) == 0.5
    assert ev.recall_at_k([1], frozenset(), 10) == 0.0
    assert ev.recall_at_k([9, 1, 2], frozenset({1, 2}), 2) == 0.5


def test_average_precision_by_hand() -> None:
    # Hits at ranks 1 and 3: (1/1 + 2/3) / min(10, 3 relevant) = (5/3) / 3.
    assert ev.average_precision_at_k([4, 8, 5, 0], frozenset({4, 5, 6}), 10) == pytest.approx(5 / 9)
    # Hit at rank 2 only, one relevant: (1/2) / 1.
    assert ev.average_precision_at_k([3, 1], frozenset({1}), 10) == 0.5
    # k cuts the list and the divisor: hits at 1 and 2 of 2 slots, 5 relevant -> 2/2.
    assert ev.average_precision_at_k([1, 2, 3], frozenset({1, 2, 3, 4, 5}), 2) == 1.0
    assert ev.average_precision_at_k([1, 2], frozenset(), 10) == 0.0


def test_ranking_metrics_average_over_the_truth_customers() -> None:
    truth = {1: frozenset({10}), 2: frozenset({20, 21})}
    recommended = {1: [10, 11], 3: [20]}  # customer 2 got nothing: counts as a miss
    got = ev.ranking_metrics(recommended, truth, 2)
    assert got == {"precision_at_2": 0.25, "recall_at_2": 0.5, "map_at_2": 0.5}
    with pytest.raises(ValueError):
        ev.ranking_metrics(recommended, {}, 10)


def test_cutoff_is_holdout_days_before_the_last_purchase() -> None:
    ts = np.array([0, 5 * DAY, 40 * DAY], np.int64)
    assert ev.holdout_cutoff(ts, 28) == 12 * DAY
    for bad, days in ((np.array([], np.int64), 28), (ts, 0)):
        with pytest.raises(ValueError):
            ev.holdout_cutoff(bad, days)


def test_holdout_truth_keeps_only_new_purchases_after_the_cutoff() -> None:
    customer = np.array([1, 1, 1, 2, 2, 3], np.int64)
    product = np.array([7, 7, 8, 9, 9, 4], np.int64)
    ts = np.array([1, 20, 21, 2, 3, 30], np.int64) * DAY
    held = ev.holdout_truth(customer, product, ts, 10 * DAY)
    # 1 re-bought 7 (not new) and bought 8 (new); 2 bought nothing after; 3 is all new.
    assert held.truth == {1: frozenset({8}), 3: frozenset({4})}
    assert held.cutoff_us == 10 * DAY
    # The cut-off instant itself belongs to the hold-out.
    edge = ev.holdout_truth(customer[:1], product[:1], np.array([10 * DAY]), 10 * DAY)
    assert edge.truth == {1: frozenset({7})}
