"""Product recommendations on the session stack's sample: hold-out metrics, registry,
batch output, the live endpoint, re-training, and bad input that changes nothing."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import LakehouseError, MLError, TableNotFoundError
from lakehouse.ml import recommend
from lakehouse.ml.recommender import SOURCE_MODEL, SOURCE_POPULAR
from lakehouse.ml.tracking import use_tracking_server
from tests.integration.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_mlflow]

TOP_N = 10
OUTPUT = recommend.OUTPUT_TABLE


@pytest.fixture(scope="module")
def trained(stack: Settings, sample: dict[str, int]) -> Iterator[recommend.RecommendationsResult]:
    with Lakehouse(stack) as lake:
        yield lake.ml.train_recommendations(top_n=TOP_N)


@pytest.fixture(autouse=True)
def _tracking(stack: Settings) -> None:
    """Every test talks to the session stack's MLflow, even one run on its own."""
    use_tracking_server(stack)


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def _versions() -> int:
    return len(_client().search_model_versions(f"name='{recommend.MODEL_NAME}'"))


def _output_snapshot(lake: Lakehouse) -> int | None:
    if not lake.catalog.table_exists(OUTPUT):
        return None
    current = lake.table(OUTPUT).current_snapshot()
    return current.snapshot_id if current else None


def _pairs(lake: Lakehouse, query: str) -> set[tuple[int, int]]:
    rows = lake.sql(query).to_pydict()
    return set(zip(rows["customer_id"], rows["product_id"], strict=True))


def test_every_customer_gets_top_n_unbought_products(
    lake: Lakehouse, trained: recommend.RecommendationsResult
) -> None:
    customers = lake.sql("SELECT count(*) AS n FROM retail.customers")["n"][0].as_py()
    table = lake.sql(f"SELECT * FROM {OUTPUT} ORDER BY customer_id, rank")
    # Every sample customer has bought far fewer than (products - 10) products.
    assert table.num_rows == trained.rows == customers * TOP_N
    per_customer = lake.sql(
        f"SELECT customer_id, min(rank) AS lo, max(rank) AS hi, count(DISTINCT product_id) AS n "
        f"FROM {OUTPUT} GROUP BY 1"
    )
    assert per_customer.num_rows == customers
    assert set(per_customer["lo"].to_pylist()) == {1}
    assert set(per_customer["hi"].to_pylist()) == set(per_customer["n"].to_pylist()) == {TOP_N}
    bought = _pairs(
        lake,
        "SELECT DISTINCT o.customer_id, i.product_id FROM retail.order_items i "
        "JOIN retail.orders o ON o.order_id = i.order_id WHERE o.status <> 'cancelled'",
    )
    assert not _pairs(lake, f"SELECT customer_id, product_id FROM {OUTPUT}") & bought
    assert set(table["model_version"].to_pylist()) == {trained.model.version}
    assert set(table["model_name"].to_pylist()) == {recommend.MODEL_NAME}
    assert set(table["source"].to_pylist()) == {SOURCE_MODEL, SOURCE_POPULAR}
    assert lake.history(OUTPUT)[-1].snapshot_id == trained.outputs[OUTPUT]


def test_holdout_metrics_of_model_and_baseline_are_logged(
    trained: recommend.RecommendationsResult,
) -> None:
    run = _client().get_run(trained.model.run_id)
    assert run.info.status == "FINISHED"
    ev = trained.evaluation
    assert ev.customers > 0
    for name in (f"precision_at_{TOP_N}", f"recall_at_{TOP_N}", f"map_at_{TOP_N}"):
        assert 0.0 <= ev.model[name] <= 1.0 and 0.0 < ev.baseline[name] <= 1.0
        assert run.data.metrics[name] == pytest.approx(ev.model[name])
        assert run.data.metrics[f"baseline_{name}"] == pytest.approx(ev.baseline[name])
    assert run.data.params["algorithm"] == "item_knn"
    assert run.data.params["holdout_cutoff"] == ev.cutoff.isoformat()
    # Whether the model beats the baseline clearly is measured at scale 1 by `make bench`.


def test_lineage_and_the_registered_pyfunc(
    lake: Lakehouse, trained: recommend.RecommendationsResult
) -> None:
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.artifacts import download_artifacts

    run = _client().get_run(trained.model.run_id)
    for table in recommend.INPUTS:
        current = lake.table(table).current_snapshot()
        assert current is not None and trained.inputs[table] == current.snapshot_id
        assert run.data.tags[f"lakehouse.input.{table}.snapshot_id"] == str(current.snapshot_id)
    assert run.data.params[f"lakehouse.output.{OUTPUT}.snapshot_id"] == str(trained.outputs[OUTPUT])
    model = mlflow.pyfunc.load_model(trained.model.uri)
    signature = model.metadata.signature  # kept even where warnings are errors
    assert signature is not None and signature.params is not None
    assert [p.name for p in signature.params.params] == ["n"]
    assert signature.inputs.input_names() == ["customer_id"]
    requirements = download_artifacts(f"{trained.model.uri}/requirements.txt")
    pins = Path(requirements).read_text().split()  # pinned here, nothing inferred
    assert {pin.split("==")[0] for pin in pins} == {
        "mlflow", "cloudpickle", "numpy", "pandas", "pyarrow", "scipy"
    }  # fmt: skip
    answer = model.predict(pd.DataFrame({"customer_id": [1, 2]}))
    expected = lake.sql(
        f"SELECT customer_id, product_id FROM {OUTPUT} WHERE customer_id IN (1, 2) "
        "ORDER BY customer_id, rank"
    ).to_pydict()
    assert answer["customer_id"].tolist() == expected["customer_id"]
    assert answer["product_id"].tolist() == expected["product_id"]


def _invoke(url: str, customers: list[int], **params: Any) -> list[dict[str, Any]]:
    records = [{"customer_id": c} for c in customers]
    body = json.dumps({"dataframe_records": records, **({"params": params} if params else {})})
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        predictions: list[dict[str, Any]] = json.loads(answer.read())["predictions"]
    return predictions


def test_the_endpoint_answers_top_n_and_labels_the_fallback(
    lake: Lakehouse, trained: recommend.RecommendationsResult
) -> None:
    endpoint = lake.ml.serve(recommend.MODEL_NAME, trained.model.version)
    try:
        answer = _invoke(endpoint.invocations_url, [3, 10**9])
        shorter = _invoke(endpoint.invocations_url, [3], n=3)
    finally:
        lake.ml.stop(recommend.MODEL_NAME)
    known = [row for row in answer if row["customer_id"] == 3]
    stored = lake.sql(f"SELECT product_id FROM {OUTPUT} WHERE customer_id = 3 ORDER BY rank")
    assert [row["product_id"] for row in known] == stored["product_id"].to_pylist()
    unknown = [row for row in answer if row["customer_id"] == 10**9]
    assert [row["rank"] for row in unknown] == list(range(1, TOP_N + 1))
    assert {row["source"] for row in unknown} == {SOURCE_POPULAR}
    assert [row["product_id"] for row in shorter] == stored["product_id"].to_pylist()[:3]


def test_retraining_from_the_cli_makes_a_new_version(
    lake: Lakehouse, trained: recommend.RecommendationsResult
) -> None:
    before = _output_snapshot(lake)
    shown = run_cli("ml", "train", "recommendations").stdout
    version = _versions()
    assert version > trained.model.version
    assert f"{recommend.MODEL_NAME} version {version}" in shown
    assert "precision_at_10" in shown and "most-popular" in shown and OUTPUT in shown
    assert _output_snapshot(lake) != before
    assert lake.sql(f"SELECT DISTINCT model_version FROM {OUTPUT}")[0].to_pylist() == [version]


def _copy_inputs(lake: Lakehouse, namespace: str) -> dict[str, str]:
    sources = {}
    for table in recommend.INPUTS:
        copy = f"{namespace}.{table.split('.')[1]}"
        lake.ingest(lake.sql(f"SELECT * FROM {table}"), copy, mode="overwrite")
        sources[table] = copy
    return sources


def _all_rows_deleted(lake: Lakehouse, name: str) -> None:
    from pyiceberg.expressions import AlwaysTrue

    lake.table(name).delete(AlwaysTrue())


def _never_written(lake: Lakehouse, name: str) -> None:
    schema = lake.table(name).schema()
    lake.catalog.purge_table(name)
    lake.catalog.create_table(name, schema=schema)


def _without_product(lake: Lakehouse, name: str) -> None:
    with lake.table(name).update_schema() as update:
        update.delete_column("product_id")


@pytest.mark.parametrize(
    ("spoiled", "spoil", "error", "says"),
    [
        ("retail.orders", lambda lake, name: lake.catalog.purge_table(name),
         TableNotFoundError, "orders"),
        ("retail.order_items", _all_rows_deleted, MLError, "no purchases to learn from"),
        ("retail.customers", _all_rows_deleted, MLError, "nobody to recommend to"),
        ("web.clickstream", _never_written, MLError, "is empty"),
        ("retail.order_items", _without_product, MLError, "lacks the column(s) product_id"),
    ],
    ids=["missing", "no-purchases", "no-customers", "never-written", "missing-column"],
)  # fmt: skip
def test_bad_input_changes_nothing(
    lake: Lakehouse, trained: recommend.RecommendationsResult, namespace: str,
    spoiled: str, spoil: Any, error: type[LakehouseError], says: str,
) -> None:  # fmt: skip
    sources = _copy_inputs(lake, namespace)
    spoil(lake, sources[spoiled])
    before, versions = _output_snapshot(lake), _versions()
    with pytest.raises(error) as caught:
        lake.ml.train_recommendations(sources=sources)
    assert says in str(caught.value) and caught.value.hint
    assert _output_snapshot(lake) == before
    assert _versions() == versions


def test_bad_options_are_one_clear_error(stack: Settings, sample: dict[str, int]) -> None:
    done = run_cli("ml", "train", "recommendations", "--algorithm", "svd", check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    with Lakehouse(stack) as lake:
        before, versions = _output_snapshot(lake), _versions()
        for options in (
            {"top_n": 0}, {"sources": {"retail.order": "x.y"}}, {"factor": 3},
            {"sources": {"retail.orders": "retail.orders; DROP TABLE retail.orders"}},
            {"holdout_days": 100_000},  # longer than the order history: nothing to train on
        ):  # fmt: skip
            with pytest.raises(MLError) as caught:
                lake.ml.train_recommendations(**options)
            assert caught.value.hint
        assert _output_snapshot(lake) == before and _versions() == versions
