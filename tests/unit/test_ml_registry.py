"""Pure logic of the MLflow service, lineage records and endpoints (no servers)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.env import environment
from lakehouse.errors import ConfigError, MLError, ServiceNotRunningError
from lakehouse.ml.serving import Endpoint, ModelEndpoint, endpoint_service_name
from lakehouse.ml.tracking import (
    lineage_param,
    lineage_tags,
    logged_warnings,
    pinned_requirements,
)
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services import build_services, service_names
from lakehouse.services.mlflow import MlflowService


def test_lineage_names_every_input_with_its_snapshot() -> None:
    inputs = {"retail.orders": 11, "web.clickstream": 7}
    assert lineage_tags(inputs) == {
        "lakehouse.input.retail.orders.snapshot_id": "11",
        "lakehouse.input.web.clickstream.snapshot_id": "7",
    }
    assert lineage_param(inputs) == "retail.orders@11,web.clickstream@7"


def test_the_server_binds_the_configured_host_and_keeps_its_store_under_the_home(
    tmp_path: Path,
) -> None:
    settings = load_settings(home=tmp_path, mlflow_port=5123)
    spec = MlflowService(settings).spec()
    command = list(spec.command)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    store = command[command.index("--backend-store-uri") + 1]
    assert store == f"sqlite:///{tmp_path}/data/mlflow/mlflow.db"
    assert command[command.index("--artifacts-destination") + 1] == "s3://mlflow/"
    assert spec.env["MLFLOW_S3_ENDPOINT_URL"] == settings.s3_endpoint
    assert [port.number for port in spec.ports] == [5123]
    assert spec.health_url == "http://127.0.0.1:5123/health"


def test_mlflow_is_a_default_service_started_after_s3() -> None:
    assert "mlflow" in service_names()
    names = [svc.name for svc in build_services(load_settings(), ["mlflow"])]
    assert names == ["s3", "mlflow"]


def test_env_points_mlflow_clients_at_the_stack(tmp_path: Path) -> None:
    env = environment(load_settings(home=tmp_path, mlflow_port=5123))
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5123"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"]


@pytest.mark.parametrize("field", ["mlflow_port", "ml_serve_port"])
def test_ml_ports_are_checked(field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("_", "-") + " is 70000"):
        load_settings(**{field: 70000})


def test_an_endpoint_serves_one_registered_version_on_loopback(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    endpoint = Endpoint("customer segments/v2", 3, 5005, settings.client_host)
    spec = ModelEndpoint(settings, endpoint).spec()
    command = list(spec.command)
    assert command[command.index("-m", 3) + 1] == "models:/customer segments/v2/3"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert spec.env["MLFLOW_TRACKING_URI"] == settings.mlflow_uri
    assert spec.name == endpoint_service_name("customer segments/v2") == "ml-customer_segments_v2"
    assert endpoint.invocations_url == "http://127.0.0.1:5005/invocations"
    assert spec.health_url == "http://127.0.0.1:5005/ping"
    # A taken port's error names the setting that moves it.
    assert LocalRuntime._port_setting(spec.name, spec.ports[0].name) == "ml_serve_port"


def test_a_tracking_server_that_does_not_answer_is_one_error_with_a_hint(tmp_path: Path) -> None:
    from lakehouse.ml.tracking import use_tracking_server
    from lakehouse.runtimes.local import free_port_block

    settings = load_settings(home=tmp_path, mlflow_port=free_port_block(1))
    with pytest.raises(ServiceNotRunningError, match="not answering") as raised:
        use_tracking_server(settings)
    assert "lakehouse up" in str(raised.value.hint)


def test_the_server_environment_is_pinned_whole_and_matches_the_client() -> None:
    import tomllib
    from importlib.metadata import version

    from lakehouse.services import service_files_dir
    from lakehouse.services.mlflow import SERVER_ENV

    lines = [
        line
        for line in SERVER_ENV.requirements_lock().read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in line for line in lines), lines
    pins = dict(line.split("==", 1) for line in lines)
    assert pins["mlflow"] == SERVER_ENV.version == version("mlflow-skinny")
    assert "boto3" in pins  # the server writes the artifacts to S3
    dependencies = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())[
        "project"
    ]["dependencies"]
    assert f"mlflow-skinny=={SERVER_ENV.version}" in dependencies
    dockerfile = (service_files_dir() / "mlflow" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r /tmp/requirements.lock" in dockerfile


def test_model_requirements_are_pinned_at_the_installed_versions() -> None:
    from importlib.metadata import version

    pins = pinned_requirements(["pandas", "numpy", "pandas"])
    assert pins == [f"numpy=={version('numpy')}", f"pandas=={version('pandas')}"]
    with pytest.raises(MLError, match="not-a-distribution-here") as caught:
        pinned_requirements(["numpy", "not-a-distribution-here"])
    assert caught.value.hint


def test_warnings_while_registering_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # pytest turns warnings into errors here (pyproject's filterwarnings): MLflow saved
    # no signature when one of its warnings became an exception mid-inference.
    with caplog.at_level(logging.INFO, "lakehouse.ml.tracking"), logged_warnings("registering m"):
        warnings.warn("Hint: Inferred schema contains integer column(s)", UserWarning, 1)
        warnings.warn("Operation with range", DeprecationWarning, 1)
        done = True
    assert done
    logged = [r.getMessage() for r in caplog.records]
    assert logged == [
        "registering m: UserWarning: Hint: Inferred schema contains integer column(s)",
        "registering m: DeprecationWarning: Operation with range",
    ]
