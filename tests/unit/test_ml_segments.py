"""Segment naming on synthetic centroids, and k choice on synthetic customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lakehouse.errors import MLError
from lakehouse.ml import segments
from lakehouse.ml.profiles import DEFAULT_NAME, QUALIFIERS, base_name, name_segments


@pytest.mark.parametrize(
    ("standing", "expected"),
    [
        ({"orders": 1.2, "monetary": 1.5, "recency_days": -0.8}, "loyal high spenders"),
        ({"orders": 0.9, "monetary": 1.1, "recency_days": 1.4}, "at risk"),
        ({"tenure_days": -1.3, "orders": -0.2}, "new customers"),
        ({"orders": -1.0, "sessions": 1.2}, "browsers who rarely buy"),
        ({"orders": -1.0, "sessions": -0.2, "recency_days": 1.1}, "inactive customers"),
        ({"avg_order_value": 1.3}, "big-basket buyers"),
        ({"conversion_rate": 0.9}, "decisive shoppers"),
        ({name: 0.1 for name in QUALIFIERS}, DEFAULT_NAME),
    ],
)
def test_rules_name_a_centroid_by_its_standing(standing: dict[str, float], expected: str) -> None:
    assert base_name(standing) == expected


def test_names_are_unique_and_say_how_equals_differ() -> None:
    standings = {
        0: {"sessions": 0.3, "monetary": 0.1},
        1: {"sessions": -0.4, "monetary": 0.0},
        2: {"orders": 1.2, "monetary": 1.5, "recency_days": -0.8},
    }
    names = name_segments(standings)
    assert names == {
        0: "regular customers (more visits)",
        1: "regular customers (fewer visits)",
        2: "loyal high spenders",
    }


def test_names_follow_the_centroids_not_the_ids() -> None:
    standings = {
        0: {"orders": 1.2, "monetary": 1.5, "recency_days": -0.8},
        1: {"tenure_days": -1.3},
        2: {"orders": -1.0, "sessions": 1.2},
    }
    names = name_segments(standings)
    permuted = name_segments({0: standings[2], 1: standings[0], 2: standings[1]})
    assert permuted == {0: names[2], 1: names[0], 2: names[1]}


@pytest.mark.parametrize("group", [3, 4, 6])
def test_many_equal_names_still_come_out_unique(group: int) -> None:
    rng = np.random.default_rng(1)
    standings = {
        sid: {name: float(v) for name, v in zip(QUALIFIERS, rng.uniform(-0.3, 0.3, 7), strict=True)}
        for sid in range(group)
    }
    names = name_segments(standings)
    assert len(set(names.values())) == group
    assert all(name.startswith(DEFAULT_NAME) for name in names.values())


def test_identical_centroids_are_numbered() -> None:
    names = name_segments({0: {}, 1: {}})
    assert names == {0: f"{DEFAULT_NAME} 1", 1: f"{DEFAULT_NAME} 2"}


def _customers(groups: int, per_group: int = 60) -> pd.DataFrame:
    """``groups`` well separated kinds of customer, the first never having ordered."""
    rng = np.random.default_rng(7)
    frames = []
    for g in range(groups):
        n = per_group
        frame = pd.DataFrame(
            {
                "recency_days": rng.normal(30 + 200 * g, 5, n),
                "orders": rng.poisson(1 + 12 * g, n).astype(float),
                "monetary": rng.normal(50 + 900 * g, 10, n),
                "avg_order_value": rng.normal(40 + 30 * g, 3, n),
                "tenure_days": rng.normal(100 + 300 * g, 10, n),
                "sessions": rng.poisson(2 + 10 * g, n).astype(float),
                "conversion_rate": rng.uniform(0.1, 0.2, n) + 0.2 * g,
            }
        )
        frames.append(frame)
    frames[0].loc[:, ["recency_days", "avg_order_value"]] = np.nan  # never ordered
    frames[0].loc[:, ["orders", "monetary"]] = 0.0
    return pd.concat(frames, ignore_index=True)[list(segments.MODEL_FEATURES)]


def test_k_is_the_best_silhouette_and_nulls_are_scored() -> None:
    frame = _customers(4)
    choice = segments.choose_k(frame, (3, 6))
    assert choice.k == 4
    assert set(choice.silhouettes) == {3, 4, 5, 6}
    assert choice.silhouettes[4] == max(choice.silhouettes.values())
    labels = choice.pipeline.predict(frame)
    assert len(set(labels[:60])) == 1  # the never-ordered customers (NULLs) form one segment
    assert segments.choose_k(frame, (3, 6)).silhouettes == choice.silhouettes  # deterministic


def test_distance_is_to_the_assigned_centroid() -> None:
    frame = _customers(3)
    choice = segments.choose_k(frame, (3, 3))
    labels, distances = segments.assign(choice.pipeline, frame)
    assert (labels == choice.pipeline.predict(frame)).all()
    points = choice.pipeline[:-1].transform(frame)
    centres = choice.pipeline.named_steps["kmeans"].cluster_centers_
    assert np.allclose(distances, np.linalg.norm(points - centres[labels], axis=1))


def test_too_few_distinct_customers_is_an_mlerror() -> None:
    frame = pd.concat([_customers(1, per_group=1)] * 5, ignore_index=True)
    frame["recency_days"] = 3.0
    with pytest.raises(MLError, match="distinct") as caught:
        segments.choose_k(frame, (3, 8))
    assert caught.value.hint


def test_no_counted_order_is_an_mlerror() -> None:
    frame = _customers(1)  # the first group never ordered
    with pytest.raises(MLError, match="No customer has a counted order"):
        segments.choose_k(frame, (3, 8))
