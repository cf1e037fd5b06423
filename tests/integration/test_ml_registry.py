"""The MLflow registry on the real stack: training runs with lineage, versions,
and a live endpoint supervised like a service."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import MLError, TableNotFoundError
from lakehouse.ml.tracking import INPUT_TAG, training_run
from tests.integration.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_mlflow]


def points(n: int, offset: float = 0.0) -> pa.Table:
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "x": pa.array([offset + i % 7 for i in range(n)], pa.float64()),
        "y": pa.array([float(i % 2) for i in range(n)], pa.float64()),
    })  # fmt: skip


def fit(data: pa.Table) -> Any:
    from sklearn.linear_model import LinearRegression

    frame = data.select(["x", "y"]).to_pandas()
    return LinearRegression().fit(frame[["x"]], frame["y"])


def mlflow_client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def train(lake: Lakehouse, table: str, model_name: str) -> tuple[Any, Any]:
    with training_run(lake, "tests-registry", [table]) as run:
        data = run.read(table)
        model = fit(data)
        run.log_params({"rows": data.num_rows})
        run.log_metrics({"coef": float(model.coef_[0])})
        example = data.select(["x"]).to_pandas().head(3)
        version = run.register_model(model, model_name, "sklearn", input_example=example)
    return run, version


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    return "test_" + request.node.name.lower()[:40]


def test_runs_record_lineage_and_each_training_is_a_new_version(
    lake: Lakehouse, namespace: str, model_name: str
) -> None:
    table = f"{namespace}.points"
    lake.ingest(points(40), table)
    first_run, first = train(lake, table, model_name)
    lake.ingest(points(10, offset=3.0), table)
    second_run, second = train(lake, table, model_name)

    assert (first.version, second.version) == (1, 2)
    snapshots = [info.snapshot_id for info in lake.history(table)]
    tag = INPUT_TAG.format(table=table)
    client = mlflow_client()
    for run, version, snapshot in ((first_run, first, snapshots[0]), (second_run, second, snapshots[1])):  # fmt: skip
        recorded = client.get_run(run.run_id)
        assert recorded.info.status == "FINISHED"
        assert recorded.data.tags[tag] == str(snapshot)
        assert recorded.data.params["lakehouse.inputs"] == f"{table}@{snapshot}"
        assert recorded.data.params["rows"] == str(40 if snapshot == snapshots[0] else 50)
        assert "coef" in recorded.data.metrics
        registered = client.get_model_version(model_name, str(version.version))
        assert registered.run_id == run.run_id == version.run_id
        assert registered.tags[tag] == str(snapshot)
        assert version.uri == f"models:/{model_name}/{version.version}"


def test_inputs_are_read_at_the_snapshot_pinned_when_the_run_started(
    lake: Lakehouse, namespace: str
) -> None:
    table = f"{namespace}.moving"
    lake.ingest(points(20), table)
    with training_run(lake, "tests-registry", [table]) as run:
        lake.ingest(points(5), table)  # another writer, mid-training
        assert run.read(table).num_rows == 20
        counted = run.sql(f"SELECT count(*) AS n FROM {table}")
        assert counted.column("n")[0].as_py() == 20
        with pytest.raises(MLError, match="not an input"):
            run.read("retail.orders")
    assert lake.table(table).scan().to_arrow().num_rows == 25


def test_a_failed_training_ends_its_run_failed(lake: Lakehouse, namespace: str) -> None:
    table = f"{namespace}.points"
    lake.ingest(points(10), table)
    with pytest.raises(ZeroDivisionError), training_run(lake, "tests-failing", [table]) as run:
        _ = 1 / 0
    assert mlflow_client().get_run(run.run_id).info.status == "FAILED"


def test_what_mlflow_refuses_is_one_mlerror(lake: Lakehouse, namespace: str) -> None:
    table = f"{namespace}.points"
    lake.ingest(points(10), table)
    with training_run(lake, "tests-refused-values", [table]) as run:
        run.log_params({"k": 3})
        with pytest.raises(MLError, match="MLflow refused logging params") as raised:
            run.log_params({"k": 4})  # a param's value cannot change within a run
        assert raised.value.hint
    assert mlflow_client().get_run(run.run_id).data.params["k"] == "3"


def test_missing_or_empty_inputs_are_refused_before_any_run(
    lake: Lakehouse, namespace: str
) -> None:
    empty = f"{namespace}.empty"
    lake.catalog.create_table(empty, points(1).schema)
    experiment = "tests-refused"
    for inputs, error in (([f"{namespace}.absent"], TableNotFoundError), ([empty], MLError)):
        with pytest.raises(error) as raised, training_run(lake, experiment, inputs):
            pytest.fail("the block must not run")
        assert raised.value.hint
    found = mlflow_client().get_experiment_by_name(experiment)
    assert found is None or not mlflow_client().search_runs([found.experiment_id])


@pytest.fixture
def served(lake: Lakehouse, model_name: str) -> Iterator[str]:
    yield model_name
    run_cli("ml", "stop", model_name, check=False)


def invoke(url: str, rows: list[float]) -> Any:
    body = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[x] for x in rows]}})
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_serve_answers_invocations_and_is_supervised(
    lake: Lakehouse, namespace: str, served: str
) -> None:
    table = f"{namespace}.points"
    lake.ingest(points(30), table)
    _run, version = train(lake, table, served)

    started = run_cli("ml", "serve", served)
    url = started.stdout.strip().split()[-1]
    assert url.endswith("/invocations") and "127.0.0.1" in url
    model = fit(points(30))
    expected = model.predict(pa.table({"x": [0.0, 6.0]}).to_pandas()).tolist()
    assert invoke(url, [0.0, 6.0])["predictions"] == pytest.approx(expected)

    service = f"ml-{served}"
    assert service in run_cli("status").stdout
    assert f"starting {service}" in run_cli("logs", service).stdout
    listed = run_cli("ml", "models").stdout
    assert served in listed and url in listed
    assert run_cli("ml", "serve", served).stdout.strip().split()[-1] == url  # already serving
    stopped = run_cli("ml", "stop", served)
    assert service in stopped.stdout
    assert service not in run_cli("status").stdout
    assert version.version == 1


def test_unknown_model_or_version_is_one_clear_error(
    lake: Lakehouse, namespace: str, model_name: str
) -> None:
    table = f"{namespace}.points"
    lake.ingest(points(10), table)
    train(lake, table, model_name)
    for args in (("no_such_model",), (model_name, "--version", "7")):
        result = run_cli("ml", "serve", *args, check=False)
        assert result.returncode == 1
        assert "Hint:" in result.stderr and "Traceback" not in result.stderr
    assert "has no version 7" in result.stderr
    assert not any(e.name == model_name for e in lake.ml.endpoints())


def test_lakehouse_env_points_the_mlflow_client_at_the_registry(
    lake: Lakehouse, namespace: str, model_name: str
) -> None:
    import os
    import subprocess
    import sys

    table = f"{namespace}.points"
    lake.ingest(points(10), table)
    train(lake, table, model_name)
    child = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    listed = subprocess.run(
        [sys.executable, "-c", "import mlflow; print([m.name for m in mlflow.search_registered_models()])"],
        env=child | lake.env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert model_name in listed.stdout
