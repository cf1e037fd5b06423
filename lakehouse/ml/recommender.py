"""The product recommender: a learned scorer, ranking rules, and its MLflow pyfunc form.

One ranking rule serves the evaluation, the batch transform and the live endpoint:
products the customer already bought are never recommended; products the model
scores above zero come first, by score (``source`` "model"); the remaining slots are
filled by purchase popularity (``source`` "most_popular"). A customer the model
never saw (unknown id, or no history) therefore gets the most-popular list,
labelled as such. The most-popular baseline is the same rule with no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from lakehouse.ml.tracking import logged_warnings

with logged_warnings("importing mlflow.pyfunc"):
    # MLflow's own agent schemas warn about Any type hints on import: nothing of ours.
    from mlflow.pyfunc import PythonModel

SOURCE_MODEL = "model"
SOURCE_POPULAR = "most_popular"
# Users scored per block: bounds the dense (users x products) score matrix.
BLOCK = 2048

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Scorer(Protocol):
    """Scores every product for some customers: ``(len(rows), products)`` floats."""

    def scores(self, rows: IntArray, history: sp.csr_matrix) -> FloatArray: ...


@dataclass(frozen=True)
class ItemSimilarity:
    """Item-to-item similarity (products x products): a customer's score is their
    weighted history times the similarity."""

    similarity: sp.csr_matrix

    def scores(self, rows: IntArray, history: sp.csr_matrix) -> FloatArray:
        product = history[rows] @ self.similarity
        return np.asarray(product.toarray(), np.float64)


@dataclass(frozen=True)
class LatentFactors:
    """Matrix factorisation: customer factors (customers x f), product factors (products x f)."""

    customer: FloatArray
    product: FloatArray

    def scores(self, rows: IntArray, history: sp.csr_matrix) -> FloatArray:
        return np.asarray(self.customer[rows] @ self.product.T, np.float64)


class NoModel:
    """Scores nothing: every slot falls back to popularity (the baseline)."""

    def scores(self, rows: IntArray, history: sp.csr_matrix) -> FloatArray:
        return np.zeros((len(rows), history.shape[1]))


@dataclass(frozen=True)
class Interactions:
    """What the recommender knows: row i is ``customer_ids[i]``, column j ``product_ids[j]``.

    ``history`` holds weighted implicit feedback, ``purchased`` is non-zero where the
    customer bought the product, ``popularity`` is each product's share of purchases.
    """

    customer_ids: IntArray  # sorted, unique
    product_ids: IntArray
    history: sp.csr_matrix
    purchased: sp.csr_matrix
    popularity: FloatArray

    def rows_of(self, customer_ids: IntArray) -> IntArray:
        """Row per customer id; -1 for a customer not in ``customer_ids``."""
        pos = np.searchsorted(self.customer_ids, customer_ids)
        pos = np.minimum(pos, max(len(self.customer_ids) - 1, 0))
        found = (len(self.customer_ids) > 0) & (self.customer_ids[pos] == customer_ids)
        return np.where(found, pos, -1).astype(np.int64)


@dataclass(frozen=True)
class Ranked:
    """Top-n per customer: ``(customers, n)`` product columns, scores and model flags;
    ``valid`` is False for slots left empty (the customer bought nearly everything)."""

    product: IntArray
    score: FloatArray
    from_model: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]


def rank(data: Interactions, scorer: Scorer, customer_ids: IntArray, n: int) -> Ranked:
    """Top-``n`` products per customer by the module's ranking rule."""
    rows = data.rows_of(np.asarray(customer_ids, np.int64))
    known = rows >= 0
    scores = np.zeros((len(rows), len(data.product_ids)))
    if known.any():
        scores[known] = scorer.scores(rows[known], data.history)
    model = scores > 0
    # Model-scored products outrank every fallback: popularity shares are <= 1.
    key = np.where(model, 1.0 + scores, data.popularity[None, :])
    bought = data.purchased[rows[known]].tocoo()
    key[np.flatnonzero(known)[bought.row], bought.col] = -np.inf
    n = min(n, key.shape[1])
    top = (
        np.argpartition(-key, n - 1, axis=1)[:, :n]
        if n < key.shape[1]
        else np.tile(np.arange(key.shape[1]), (len(rows), 1))
    )
    order = np.argsort(-np.take_along_axis(key, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    chosen_key = np.take_along_axis(key, top, axis=1)
    from_model = np.take_along_axis(model, top, axis=1)
    score = np.where(from_model, np.take_along_axis(scores, top, axis=1), data.popularity[top])
    return Ranked(top.astype(np.int64), score, from_model, np.isfinite(chosen_key))


def ranked_lists(
    data: Interactions, ranked: Ranked, customer_ids: IntArray
) -> dict[int, list[int]]:
    """``{customer_id: [product_id, ...]}`` in rank order (empty slots dropped)."""
    products = data.product_ids[ranked.product]
    return {int(c): products[i][ranked.valid[i]].tolist() for i, c in enumerate(customer_ids)}


def recommendations_table(
    data: Interactions, scorer: Scorer, customer_ids: IntArray, n: int
) -> pa.Table:
    """customer_id, rank (1..n), product_id, score, source: one row per filled slot."""
    parts = []
    for start in range(0, len(customer_ids), BLOCK):
        block = np.asarray(customer_ids[start : start + BLOCK], np.int64)
        ranked = rank(data, scorer, block, n)
        width = ranked.product.shape[1]
        valid = ranked.valid.ravel()
        source = np.where(ranked.from_model.ravel(), SOURCE_MODEL, SOURCE_POPULAR)
        parts.append(
            pa.table(
                {
                    "customer_id": pa.array(np.repeat(block, width)[valid], pa.int64()),
                    "rank": pa.array(
                        np.tile(np.arange(1, width + 1), len(block))[valid], pa.int32()
                    ),
                    "product_id": pa.array(
                        data.product_ids[ranked.product].ravel()[valid], pa.int64()
                    ),
                    "score": pa.array(ranked.score.ravel()[valid], pa.float64()),
                    "source": pa.array(source[valid], pa.string()),
                }
            )
        )
    return pa.concat_tables(parts) if parts else _empty_table()


def _empty_table() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([], pa.int64()),
            "rank": pa.array([], pa.int32()),
            "product_id": pa.array([], pa.int64()),
            "score": pa.array([], pa.float64()),
            "source": pa.array([], pa.string()),
        }
    )


class ProductRecommender(PythonModel):
    """The registered model. ``predict`` takes a frame with a ``customer_id`` column
    (and optionally the param ``n``, the list length; default ``top_n``) and returns one
    row per recommendation: customer_id, rank, product_id, score, source."""

    def __init__(self, data: Interactions, scorer: Scorer, top_n: int) -> None:
        self.data, self.scorer, self.top_n = data, scorer, top_n

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        # A DataFrame type hint: MLflow validates nothing itself, the checks are below.
        frame = pd.DataFrame(model_input)
        if "customer_id" not in frame.columns:
            raise ValueError("the input needs a customer_id column")
        n = int((params or {}).get("n") or self.top_n)
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        customers = frame["customer_id"].to_numpy(np.int64)
        return recommendations_table(self.data, self.scorer, customers, n).to_pandas()
