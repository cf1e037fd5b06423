"""The recommender's ranking rule on hand-made matrices (no services)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lakehouse.ml.recommender import (
    SOURCE_MODEL,
    SOURCE_POPULAR,
    Interactions,
    ItemSimilarity,
    LatentFactors,
    NoModel,
    ProductRecommender,
    rank,
    recommendations_table,
)


def _data() -> Interactions:
    """Customers 10 and 20; products 100..104; 10 bought 100, 20 bought 103 and viewed 101."""
    customer_ids = np.array([10, 20], np.int64)
    product_ids = np.array([100, 101, 102, 103, 104], np.int64)
    purchased = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 1, 0]], float))
    history = sp.csr_matrix(np.array([[4, 0, 0, 0, 0], [0, 1, 0, 4, 0]], float))
    popularity = np.array([0.4, 0.1, 0.3, 0.15, 0.05])
    return Interactions(customer_ids, product_ids, history, purchased, popularity)


def _similarity() -> ItemSimilarity:
    sim = np.zeros((5, 5))
    sim[0, 4] = 0.9  # bought 100 -> 104
    sim[0, 1] = 0.5  # bought 100 -> 101
    sim[0, 0] = 1.0  # an item is most similar to itself: must still be excluded
    return ItemSimilarity(sp.csr_matrix(sim))


def test_model_scores_first_then_popularity_and_never_a_bought_product() -> None:
    data = _data()
    ranked = rank(data, _similarity(), np.array([10]), 4)
    products = data.product_ids[ranked.product[0]].tolist()
    assert products == [104, 101, 102, 103]  # 100 was bought; 102, 103 by popularity
    assert ranked.from_model[0].tolist() == [True, True, False, False]
    np.testing.assert_allclose(ranked.score[0], [3.6, 2.0, 0.3, 0.15])


def test_baseline_is_popularity_minus_purchases() -> None:
    data = _data()
    ranked = rank(data, NoModel(), np.array([20, 10]), 3)
    assert data.product_ids[ranked.product].tolist() == [[100, 102, 101], [102, 103, 101]]
    assert not ranked.from_model.any()


def test_unknown_customers_get_the_labelled_most_popular_list() -> None:
    table = recommendations_table(_data(), _similarity(), np.array([999]), 3)
    assert table.column("product_id").to_pylist() == [100, 102, 103]
    assert set(table.column("source").to_pylist()) == {SOURCE_POPULAR}
    assert table.column("rank").to_pylist() == [1, 2, 3]


def test_a_list_is_never_padded_with_bought_products() -> None:
    data = _data()
    table = recommendations_table(data, NoModel(), np.array([10, 20]), 10)
    counts = table.group_by("customer_id").aggregate([("rank", "count")]).to_pydict()
    assert dict(zip(counts["customer_id"], counts["rank_count"], strict=True)) == {10: 4, 20: 4}
    pairs = set(zip(table["customer_id"].to_pylist(), table["product_id"].to_pylist(), strict=True))
    assert not pairs & {(10, 100), (20, 103)}


def test_latent_factors_rank_by_dot_product() -> None:
    data = _data()
    factors = LatentFactors(np.array([[1.0, 0.0], [0.0, 1.0]]), np.eye(5, 2) * [2.0, 3.0])
    ranked = rank(data, factors, np.array([20]), 2)
    # 20's factor picks product 101 (score 3); the rest is popularity.
    assert data.product_ids[ranked.product[0]].tolist() == [101, 100]
    assert ranked.from_model[0].tolist() == [True, False]


def test_pyfunc_predict_answers_top_n_per_customer() -> None:
    model = ProductRecommender(_data(), _similarity(), top_n=2)
    out = model.predict(None, pd.DataFrame({"customer_id": [10, 999]}))
    assert list(out.columns) == ["customer_id", "rank", "product_id", "score", "source"]
    assert out["product_id"].tolist() == [104, 101, 100, 102]
    assert out["source"].tolist() == [SOURCE_MODEL, SOURCE_MODEL, SOURCE_POPULAR, SOURCE_POPULAR]
    longer = model.predict(None, pd.DataFrame({"customer_id": [10]}), params={"n": 3})
    assert longer["rank"].tolist() == [1, 2, 3]


def test_both_algorithms_fit_without_warnings() -> None:
    """pytest turns warnings into errors: implicit's BLAS and CSR warnings must not surface."""
    from lakehouse.ml import recommend

    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.3) * 4.0
    data = Interactions(
        np.arange(1, 31, dtype=np.int64), np.arange(100, 112, dtype=np.int64),
        sp.csr_matrix(dense), sp.csr_matrix(dense > 0, dtype=float), np.full(12, 1 / 12),
    )  # fmt: skip
    knn = recommend.fit(data, recommend.Options("item_knn", neighbours=5))
    assert isinstance(knn, ItemSimilarity) and knn.similarity.shape == (12, 12)
    als = recommend.fit(data, recommend.Options("als", factors=4, iterations=2))
    assert isinstance(als, LatentFactors)
    assert als.customer.shape == (30, 4) and als.product.shape == (12, 4)


def _events(tables: dict[str, Any]) -> Any:
    """recommend.Events straight from generated tables (what load_events reads from the lake)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakehouse.ml import recommend

    orders = tables["retail.orders"]
    orders = orders.filter(pc.not_equal(orders["status"], "cancelled"))
    lines = tables["retail.order_items"].join(
        orders.select(["order_id", "customer_id", "order_ts"]), "order_id", join_type="inner"
    )
    clicks = tables["web.clickstream"]
    kinds = pa.array(["add_to_cart", "product_view"])
    clicks = clicks.filter(
        pc.and_(pc.is_valid(clicks["customer_id"]), pc.is_in(clicks["event_type"], kinds))
    )
    weights = [recommend.EVENT_WEIGHTS[t] for t in clicks["event_type"].to_pylist()]

    def us(column: Any) -> Any:
        return column.cast(pa.int64()).to_numpy()

    return recommend.Events(
        np.sort(tables["retail.customers"]["customer_id"].to_numpy()),
        lines["customer_id"].to_numpy(), lines["product_id"].to_numpy(), us(lines["order_ts"]),
        clicks["customer_id"].to_numpy(), clicks["product_id"].to_numpy(),
        np.asarray(weights), us(clicks["event_ts"]),
    )  # fmt: skip


@pytest.mark.slow
def test_the_sample_has_structure_a_model_learns() -> None:
    """Item-kNN beats most-popular on the sample's time hold-out (ALS does too at scale 1:
    `python -m bench ml`). Before sample_data.affinity it lost: about 0.75x precision@10."""
    from lakehouse.ml import recommend
    from sample_data import generate

    events = _events(generate(scale=0.1))
    result = recommend.evaluate(events, 28, 10, recommend.Options("item_knn"))
    assert result.customers > 100
    for name in ("precision_at_10", "recall_at_10", "map_at_10"):
        assert result.model[name] > 1.15 * result.baseline[name], (name, result)
