"""Customer segmentation: k-means over per-customer features, with readable segment names.

``train_segments(lake)`` pins the inputs' snapshots in an MLflow run, computes
``ml.customer_features`` from them (:mod:`lakehouse.ml.features`), picks k by
silhouette, registers the fitted Pipeline with the segments' names as a pyfunc
(``customer-segments``, :class:`lakehouse.ml.segmenter.CustomerSegmenter`: its
predict takes feature rows and returns segment id, name and distance) and writes
``ml.customer_segments`` with that same predict. Every check runs before the first write; if the
segments write fails, the features table is put back as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lakehouse.errors import MLError
from lakehouse.ml import features as feat
from lakehouse.ml.profiles import SegmentProfile, name_segments

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from lakehouse.client import Lakehouse
    from lakehouse.ml.tracking import RegisteredVersion

MODEL_NAME = "customer-segments"
EXPERIMENT = "customer-segments"
SEGMENTS_TABLE = "ml.customer_segments"
# recency is imputed (never ordered = as long ago as the longest); the other
# skewed counts and money get arcsinh (log-like, defined for 0 and negatives).
RECENCY = "recency_days"
SKEWED = ("orders", "monetary", "avg_order_value", "tenure_days", "sessions")
RATES = ("conversion_rate",)
MODEL_FEATURES = (RECENCY, *SKEWED, *RATES)
K_RANGE = (3, 8)
# Silhouette is quadratic in rows: it is scored on a fixed random sample of this size.
SILHOUETTE_SAMPLE = 4000
RANDOM_STATE = 42


@dataclass(frozen=True)
class KChoice:
    """The fitted pipeline for the chosen k, and silhouette per k tried."""

    k: int
    silhouettes: dict[int, float]
    pipeline: Pipeline


@dataclass(frozen=True)
class SegmentsResult:
    """What ``train_segments`` did: the model version, k, segments and output snapshots."""

    model: RegisteredVersion
    k: int
    silhouette: float
    silhouettes: dict[int, float]
    profiles: list[SegmentProfile]
    stats: feat.FeatureStats
    inputs: dict[str, int]
    outputs: dict[str, int]  # output table -> its new snapshot id

    def __str__(self) -> str:
        """The summary `lakehouse ml train segments` prints."""
        st = self.stats
        scores = ", ".join(f"k={k}: {v:.3f}" for k, v in self.silhouettes.items())
        lines = [
            f"model: {self.model.name} version {self.model.version} ({self.model.uri}, "
            f"run {self.model.run_id})",
            f"k: {self.k} (best silhouette {self.silhouette:.3f}; {scores})",
            f"customers: {st.customers} ({st.customers_without_orders} without orders, "
            f"{st.customers_without_sessions} without sessions; reference time {st.reference_ts})",
            f"not attributable to a customer: {st.unattributed_orders} orders, "
            f"{st.unattributed_sessions} sessions",
            "segments:",
            *(
                f"  {p.segment_id}  {p.name}: {p.size} customers"
                + (f", mostly {p.top_category}" if p.top_category else "")
                for p in sorted(self.profiles, key=lambda p: -p.size)
            ),
            "inputs: " + ", ".join(f"{t}@{sid}" for t, sid in self.inputs.items()),
            "outputs: " + ", ".join(f"{t}@{sid}" for t, sid in self.outputs.items()),
        ]
        return "\n".join(lines)


def build_pipeline(recency_fill: float) -> Pipeline:
    """Impute, arcsinh, standardise (KMeans is appended by :func:`choose_k`).

    NULL recency (no order) becomes ``recency_fill`` days; other NULLs (no order,
    no session) become 0. Built only from scikit-learn and numpy parts, so the
    registered model loads wherever scikit-learn does.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def curved(fill: float) -> Pipeline:
        return make_pipeline(
            SimpleImputer(strategy="constant", fill_value=fill, keep_empty_features=True),
            FunctionTransformer(np.arcsinh, feature_names_out="one-to-one"),
        )

    prepare = ColumnTransformer(
        [
            ("recency", curved(recency_fill), [RECENCY]),
            ("skewed", curved(0.0), list(SKEWED)),
            (
                "rates",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
                list(RATES),
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("prepare", prepare), ("scale", StandardScaler())])


def model_frame(features: pa.Table) -> pd.DataFrame:
    """The model's input columns as float64 (NULL -> NaN), in :data:`MODEL_FEATURES` order."""
    import pandas as pd

    return pd.DataFrame(
        {
            name: features[name].to_numpy(zero_copy_only=False).astype(np.float64)
            for name in MODEL_FEATURES
        }
    )


def choose_k(
    frame: pd.DataFrame, k_range: tuple[int, int] = K_RANGE, random_state: int = RANDOM_STATE
) -> KChoice:
    """Fit KMeans for each k in ``k_range`` (inclusive); keep the best silhouette (ties: smaller k).

    Raises MLError when no customer has an order or there are too few distinct customers.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    recency = frame[RECENCY].dropna()
    if recency.empty:
        raise MLError(
            "No customer has a counted order (every order is cancelled or returned, or none "
            "belongs to a known customer): there is nothing to segment on.",
            hint="Check retail.orders' status and customer_id values, then train again.",
        )
    prepared = build_pipeline(float(recency.max()))
    points = prepared.fit_transform(frame)
    distinct = len(np.unique(np.round(points, 12), axis=0))
    ks = [k for k in range(k_range[0], k_range[1] + 1) if 2 <= k < distinct]
    if not ks:
        raise MLError(
            f"Only {distinct} distinct customers' features: k-means needs more than "
            f"{k_range[0]} to compare k in {k_range[0]}..{k_range[1]}.",
            hint="Train on more data (a larger --scale sample), or lower --k-min.",
        )
    fitted: dict[int, Any] = {}
    silhouettes: dict[int, float] = {}
    # The same sample scores every k, so its distances are computed once (they were
    # recomputed for each k: 6 of 7 passes wasted). Same rows as silhouette_score's
    # own sample_size=/random_state= draw.
    sample = np.random.RandomState(random_state).permutation(len(points))[:SILHOUETTE_SAMPLE]
    # One thread: measured on 2 busy cores, KMeans on 2,000 rows took 6 s with
    # OpenMP's threads and 0.09 s without (20,000 rows: 1.2 s).
    with threadpool_limits(1):
        distances = euclidean_distances(points[sample])
        np.fill_diagonal(distances, 0.0)
        for k in ks:
            model = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit(points)
            fitted[k] = model
            labels = model.labels_[sample]
            silhouettes[k] = float(silhouette_score(distances, labels, metric="precomputed"))
    best = max(ks, key=lambda k: (silhouettes[k], -k))
    pipeline = Pipeline([*prepared.steps, ("kmeans", fitted[best])])
    return KChoice(best, silhouettes, pipeline)


def segment_names(pipeline: Pipeline) -> tuple[dict[int, dict[str, float]], dict[int, str]]:
    """Each segment's standing (centroid z-score per feature) and readable name."""
    centroids = pipeline.named_steps["kmeans"].cluster_centers_
    standings = {
        sid: {name: round(float(z), 3) for name, z in zip(MODEL_FEATURES, row, strict=True)}
        for sid, row in enumerate(centroids)
    }
    return standings, name_segments(standings)


def profile_segments(
    pipeline: Pipeline, features: pa.Table, labels: np.ndarray[Any, Any]
) -> list[SegmentProfile]:
    """A named profile per segment, from its centroid's z-scores (the scaled space)."""
    standings, names = segment_names(pipeline)
    tops = features["top_category"].to_pylist()
    profiles = []
    for sid in range(len(standings)):
        members = [t for t, label in zip(tops, labels, strict=True) if label == sid and t]
        top = max(set(members), key=lambda t: (members.count(t), t)) if members else None
        size = int((labels == sid).sum())
        profiles.append(SegmentProfile(sid, names[sid], size, standings[sid], top))
    return profiles


def assign(
    pipeline: Pipeline, frame: pd.DataFrame
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(segment id, distance to its centroid in the scaled space) per row."""
    points = pipeline[:-1].transform(frame)
    distances = pipeline.named_steps["kmeans"].transform(points)
    labels = distances.argmin(axis=1)
    return labels, distances[np.arange(len(labels)), labels]


def segments_table(
    features: pa.Table, assigned: pd.DataFrame, model: RegisteredVersion, scored_at: datetime
) -> pa.Table:
    """The batch-transform output: one row per feature row, in the same order;
    ``assigned`` is the model's predict for those rows."""
    rows = features.num_rows
    return pa.table(
        {
            "customer_id": features["customer_id"],
            "segment_id": pa.array(assigned["segment_id"].to_numpy(np.int32)),
            "segment_name": pa.array(assigned["segment_name"].tolist(), pa.string()),
            "distance": pa.array(assigned["distance"].to_numpy(np.float64)),
            "model_name": pa.array([model.name] * rows, pa.string()),
            "model_version": pa.array([model.version] * rows, pa.int32()),
            "scored_at": pa.array([scored_at] * rows, pa.timestamp("us", tz="UTC")),
        }
    )


def train_segments(
    lake: Lakehouse, k_min: int = K_RANGE[0], k_max: int = K_RANGE[1],
    random_state: int = RANDOM_STATE, model_name: str = MODEL_NAME,
    sources: Mapping[str, str] | None = None,
) -> SegmentsResult:  # fmt: skip
    """Features, k-means with k by silhouette in ``k_min..k_max``, registry, batch transform.

    Writes ``ml.customer_features`` and ``ml.customer_segments`` (one snapshot
    each) and registers a new version of ``model_name``. ``sources`` reads an input
    from another table (``{"web.clickstream": "staging.clicks"}``). Raises TableNotFoundError
    or MLError (missing, empty or unusable input; bad k range) before anything is
    written, ServiceNotRunningError when MLflow is down.
    """
    from lakehouse.ml.segmenter import CustomerSegmenter
    from lakehouse.ml.tracking import training_run

    if not 2 <= k_min <= k_max:
        raise MLError(
            f"k range {k_min}..{k_max} is not valid.", hint="Use 2 <= k_min <= k_max, e.g. 3..8."
        )
    chosen = feat.resolve_sources(sources)
    with training_run(lake, EXPERIMENT, list(chosen.values())) as run:
        feat.check_inputs({name: lake.table(name) for name in run.inputs}, run.inputs, chosen)
        pinned = feat.lake_relations(lake.settings.catalog_name, run.inputs)
        relations = {role: pinned[name] for role, name in chosen.items()}
        built = feat.customer_features(lambda q: lake.engine("duckdb").sql(q), relations)
        frame = model_frame(built.table)
        choice = choose_k(frame, (k_min, k_max), random_state)
        segmenter = CustomerSegmenter(choice.pipeline, segment_names(choice.pipeline)[1])
        assigned = segmenter.predict(None, frame)
        labels = assigned["segment_id"].to_numpy()
        profiles = profile_segments(choice.pipeline, built.table, labels)
        _log_training(run, choice, profiles, built.stats, (k_min, k_max), random_state)
        model = run.register_model(
            segmenter, model_name, "pyfunc", frame.head(3), requires=("scikit-learn",)
        )
        scored = segments_table(built.table, assigned, model, datetime.now(UTC))
        outputs = write_outputs(lake, built.table, scored, model)
        run.log_params(
            {f"lakehouse.output.{name}.snapshot_id": sid for name, sid in outputs.items()}
        )
    silhouette = choice.silhouettes[choice.k]
    return SegmentsResult(model, choice.k, silhouette, choice.silhouettes, profiles,
                          built.stats, dict(run.inputs), outputs)  # fmt: skip


def _log_training(
    run: Any, choice: KChoice, profiles: Sequence[SegmentProfile], stats: feat.FeatureStats,
    k_range: tuple[int, int], random_state: int,
) -> None:  # fmt: skip
    run.log_params(
        {
            "features": ",".join(MODEL_FEATURES),
            "k_range": f"{k_range[0]}..{k_range[1]}",
            "k": choice.k,
            "random_state": random_state,
            "silhouette_sample": SILHOUETTE_SAMPLE,
            "reference_ts": stats.reference_ts.isoformat() if stats.reference_ts else "",
            **{f"segment.{p.segment_id}.name": p.name for p in profiles},
        }
    )
    run.log_metrics(
        {
            "silhouette": choice.silhouettes[choice.k],
            **{f"silhouette_k{k}": value for k, value in choice.silhouettes.items()},
            **{f"segment.{p.segment_id}.size": p.size for p in profiles},
            "customers": stats.customers,
            "customers_without_orders": stats.customers_without_orders,
            "unattributed_orders": stats.unattributed_orders,
            "unattributed_sessions": stats.unattributed_sessions,
        }
    )


def write_outputs(
    lake: Lakehouse, features: pa.Table, scored: pa.Table, model: RegisteredVersion
) -> dict[str, int]:
    """Overwrite the features then the segments table (one snapshot each).

    If the segments write fails, the features table is put back to its previous
    snapshot (dropped if it is new) and the model version is deleted, so a failed
    run leaves neither a half-updated pair of tables nor a version without output.
    """
    from lakehouse.ml import output_types

    previous = _current_snapshot(lake, feat.FEATURES_TABLE)
    written = lake.ingest(
        features, feat.FEATURES_TABLE, mode="overwrite", types=output_types(features)
    )
    try:
        segments = lake.ingest(scored, SEGMENTS_TABLE, mode="overwrite", types=output_types(scored))
    except BaseException:
        _restore(lake, feat.FEATURES_TABLE, previous)
        _delete_version(model)
        raise
    return {feat.FEATURES_TABLE: _snapshot_of(written), SEGMENTS_TABLE: _snapshot_of(segments)}


def _snapshot_of(result: Any) -> int:
    if result.snapshot_id is None:
        raise MLError(f"Writing {result.table} made no snapshot.")
    return int(result.snapshot_id)


_ABSENT = -1  # the table did not exist


def _current_snapshot(lake: Lakehouse, name: str) -> int | None:
    """The table's current snapshot id (None: it has none; ``_ABSENT``: no such table)."""
    if not lake.catalog.table_exists(name):
        return _ABSENT
    snapshot = lake.table(name).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _restore(lake: Lakehouse, name: str, snapshot_id: int | None) -> None:
    """Put ``name`` back as :func:`_current_snapshot` found it."""
    if snapshot_id == _ABSENT:
        lake.catalog.purge_table(name)
    elif snapshot_id is not None:
        lake.table(name).manage_snapshots().set_current_snapshot(snapshot_id).commit()


def _delete_version(model: RegisteredVersion) -> None:
    import mlflow

    mlflow.MlflowClient().delete_model_version(model.name, str(model.version))
