"""Customer segmentation on the session stack's sample: features, model, registry, batch output."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import LakehouseError, MLError, TableNotFoundError
from lakehouse.ml import features as feat
from lakehouse.ml import segments
from lakehouse.ml.profiles import DEFAULT_NAME, RULES
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.lakehouse_mlflow


@pytest.fixture(scope="module")
def trained(stack: Settings, sample: dict[str, int]) -> Iterator[segments.SegmentsResult]:
    with Lakehouse(stack) as lake:
        yield lake.ml.train_segments()


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def _versions(name: str) -> int:
    return len(_client().search_model_versions(f"name='{name}'"))


def _outputs(lake: Lakehouse) -> dict[str, int | None]:
    """Each output table's current snapshot id (None when the table does not exist)."""
    state: dict[str, int | None] = {}
    for name in (feat.FEATURES_TABLE, segments.SEGMENTS_TABLE):
        exists = lake.catalog.table_exists(name)
        snapshot = lake.table(name).current_snapshot() if exists else None
        state[name] = snapshot.snapshot_id if snapshot else None
    return state


def test_one_feature_row_and_one_segment_per_customer(
    lake: Lakehouse, trained: segments.SegmentsResult
) -> None:
    customers = lake.sql("SELECT count(*) AS n FROM retail.customers")["n"][0].as_py()
    features = lake.sql("SELECT * FROM ml.customer_features ORDER BY customer_id")
    scored = lake.sql("SELECT * FROM ml.customer_segments ORDER BY customer_id")
    assert features.num_rows == scored.num_rows == customers
    assert features["customer_id"].to_pylist() == scored["customer_id"].to_pylist()
    assert len(set(features["customer_id"].to_pylist())) == features.num_rows
    assert trained.stats.customers_without_orders > 0  # kept, not dropped
    assert set(scored["model_version"].to_pylist()) == {trained.model.version}
    assert set(scored["model_name"].to_pylist()) == {segments.MODEL_NAME}
    assert scored["scored_at"].null_count == 0 and min(scored["distance"].to_pylist()) >= 0
    sizes = {p.segment_id: p.size for p in trained.profiles}
    counted = lake.sql("SELECT segment_id, count(*) AS n FROM ml.customer_segments GROUP BY 1")
    assert dict(zip(*counted.to_pydict().values(), strict=True)) == sizes


def test_segments_get_distinct_meaningful_names(
    lake: Lakehouse, trained: segments.SegmentsResult
) -> None:
    assert segments.K_RANGE[0] <= trained.k <= segments.K_RANGE[1]
    assert trained.silhouette == max(trained.silhouettes.values())
    names = [p.name for p in trained.profiles]
    assert len(set(names)) == len(names) == trained.k
    vocabulary = [name for name, _ in RULES] + [DEFAULT_NAME]
    assert all(any(n.startswith(v) for v in vocabulary) for n in names), names
    assert len({n.split(" (")[0] for n in names}) >= 2, names  # not all one kind
    by_table = lake.sql("SELECT DISTINCT segment_id, segment_name FROM ml.customer_segments")
    assert dict(zip(*by_table.to_pydict().values(), strict=True)) == {
        p.segment_id: p.name for p in trained.profiles
    }


def test_lineage_and_registered_model(lake: Lakehouse, trained: segments.SegmentsResult) -> None:
    import mlflow

    run = _client().get_run(trained.model.run_id)
    assert run.info.status == "FINISHED"
    for table in feat.INPUT_TABLES:
        current = lake.table(table).current_snapshot()
        assert current is not None and trained.inputs[table] == current.snapshot_id
        assert run.data.tags[f"lakehouse.input.{table}.snapshot_id"] == str(current.snapshot_id)
    for table, snapshot in trained.outputs.items():
        assert run.data.params[f"lakehouse.output.{table}.snapshot_id"] == str(snapshot)
        assert lake.history(table)[-1].snapshot_id == snapshot
    assert run.data.metrics["silhouette"] == pytest.approx(trained.silhouette)
    assert run.data.params["k"] == str(trained.k)
    model = mlflow.pyfunc.load_model(trained.model.uri)
    features = lake.sql("SELECT * FROM ml.customer_features ORDER BY customer_id LIMIT 25")
    expected = lake.sql(
        "SELECT segment_id, segment_name, distance FROM ml.customer_segments "
        "ORDER BY customer_id LIMIT 25"
    ).to_pydict()
    predicted = model.predict(segments.model_frame(features))
    assert predicted["segment_id"].tolist() == expected["segment_id"]
    assert predicted["segment_name"].tolist() == expected["segment_name"]
    assert predicted["distance"].tolist() == pytest.approx(expected["distance"])


def test_the_registered_model_has_a_signature_and_pinned_requirements(
    trained: segments.SegmentsResult,
) -> None:
    import mlflow
    from mlflow.artifacts import download_artifacts

    signature = mlflow.models.get_model_info(trained.model.uri).signature
    assert signature is not None  # kept even where warnings are errors (pytest)
    assert signature.inputs.input_names() == list(segments.MODEL_FEATURES)
    assert signature.outputs.input_names() == ["segment_id", "segment_name", "distance"]
    # Pinned from this environment, nothing inferred (inference took seconds per model).
    requirements = Path(download_artifacts(f"{trained.model.uri}/requirements.txt"))
    pins = requirements.read_text().split()
    assert {pin.split("==")[0] for pin in pins} == {
        "mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn"
    }  # fmt: skip
    assert f"scikit-learn=={version('scikit-learn')}" in pins


def _invoke(url: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = json.dumps({"dataframe_records": rows}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        predictions: list[dict[str, Any]] = json.loads(answer.read())["predictions"]
    return predictions


def test_the_endpoint_names_the_segment_of_a_feature_row(
    lake: Lakehouse, trained: segments.SegmentsResult
) -> None:
    def first(where: str) -> dict[str, Any]:
        row: dict[str, Any] = lake.sql(
            "SELECT f.*, s.segment_id, s.segment_name, s.distance FROM ml.customer_features f "
            f"JOIN ml.customer_segments s USING (customer_id) WHERE {where} "
            "ORDER BY customer_id LIMIT 1"
        ).to_pylist()[0]
        return row

    # A customer who never ordered sends NULL recency, order value and conversion.
    stored, never_ordered = first("f.orders > 0"), first("f.orders = 0")
    rows = [
        {name: row[name] for name in segments.MODEL_FEATURES} for row in (stored, never_ordered)
    ]
    assert rows[1]["recency_days"] is None
    endpoint = lake.ml.serve(segments.MODEL_NAME, trained.model.version)
    try:
        answer = _invoke(endpoint.invocations_url, rows)
    finally:
        lake.ml.stop(segments.MODEL_NAME)
    assert [row["segment_name"] for row in answer] == [
        stored["segment_name"], never_ordered["segment_name"]
    ]  # fmt: skip
    assert [row["segment_id"] for row in answer] == [
        stored["segment_id"], never_ordered["segment_id"]
    ]  # fmt: skip
    assert answer[0]["distance"] == pytest.approx(stored["distance"])


@pytest.mark.lakehouse_trino
def test_revenue_by_segment_on_trino(lake: Lakehouse, trained: segments.SegmentsResult) -> None:
    query = (
        "SELECT s.segment_name, sum(o.total_amount) AS revenue FROM ml.customer_segments s "
        "JOIN retail.orders o ON o.customer_id = s.customer_id GROUP BY 1 ORDER BY 1"
    )
    on_trino = lake.sql(query, engine="trino")
    assert on_trino.num_rows >= 2
    assert on_trino.to_pylist() == lake.sql(query).to_pylist()


def test_retraining_from_the_cli_makes_a_new_version(
    lake: Lakehouse, trained: segments.SegmentsResult
) -> None:
    before = _outputs(lake)
    shown = run_cli("ml", "train", "segments").stdout
    version = trained.model.version + 1
    assert f"{segments.MODEL_NAME} version {version}" in shown
    assert "k: " in shown and "segments:" in shown and "ml.customer_segments@" in shown
    after = _outputs(lake)
    assert all(after[t] != before[t] for t in before)  # a new snapshot of each output
    assert set(
        lake.sql("SELECT DISTINCT model_version FROM ml.customer_segments")[0].to_pylist()
    ) == {version}


def _copy_inputs(lake: Lakehouse, namespace: str) -> dict[str, str]:
    """The sample's inputs copied into ``namespace``; input -> copy."""
    sources = {}
    for table in feat.INPUT_TABLES:
        copy = f"{namespace}.{table.split('.')[1]}"
        lake.ingest(lake.sql(f"SELECT * FROM {table}"), copy, mode="overwrite")
        sources[table] = copy
    return sources


def _empty(lake: Lakehouse, name: str) -> None:
    """Every row of ``name`` deleted: a snapshot with no rows."""
    from pyiceberg.expressions import AlwaysTrue

    lake.table(name).delete(AlwaysTrue())


def _without_column(lake: Lakehouse, name: str) -> None:
    """A new snapshot written after ``event_type`` was dropped (its schema lacks it)."""
    data = lake.sql(f"SELECT * EXCLUDE (event_type) FROM {name}")
    with lake.table(name).update_schema() as update:
        update.delete_column("event_type")
    lake.ingest(data, name, mode="overwrite")


def _no_snapshot(lake: Lakehouse, name: str) -> None:
    schema = lake.table(name).schema()
    lake.catalog.purge_table(name)
    lake.catalog.create_table(name, schema=schema)


@pytest.mark.parametrize(
    ("spoil", "error", "says"),
    [
        (lambda lake, name: lake.catalog.purge_table(name), TableNotFoundError, "clickstream"),
        (_empty, MLError, "is empty"),
        (_no_snapshot, MLError, "is empty"),
        (_without_column, MLError, "lacks the column(s) event_type"),
    ],
    ids=["missing", "all-rows-deleted", "never-written", "missing-column"],
)
def test_bad_input_changes_nothing(
    lake: Lakehouse, trained: segments.SegmentsResult, namespace: str,
    spoil: Any, error: type[LakehouseError], says: str,
) -> None:  # fmt: skip
    sources = _copy_inputs(lake, namespace)
    spoil(lake, sources[feat.CLICKSTREAM])
    before, versions = _outputs(lake), _versions(segments.MODEL_NAME)
    with pytest.raises(error) as caught:
        lake.ml.train_segments(sources=sources)
    assert says in str(caught.value) and caught.value.hint
    assert _outputs(lake) == before
    assert _versions(segments.MODEL_NAME) == versions


def test_sources_must_name_inputs(lake: Lakehouse) -> None:
    with pytest.raises(MLError, match="is not an input") as caught:
        lake.ml.train_segments(sources={"retail.customer": "x.y"})
    assert "retail.customers" in str(caught.value.hint)


def test_the_cli_reports_an_invalid_k_range_in_one_message(stack: Settings) -> None:
    done = run_cli("ml", "train", "segments", "--k-min", "9", "--k-max", "3", check=False)
    assert done.returncode == 1
    assert "k range 9..3" in done.stderr + done.stdout and "Hint:" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
