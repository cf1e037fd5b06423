"""Live endpoints (the SageMaker endpoint role): MLflow's model server, supervised.

``serve`` starts ``mlflow models serve`` for one registered version as a
service of the local runtime named ``ml-<model>``: its PID and state in
``<home>/run``, its log in ``<home>/logs``, shown by ``lakehouse status`` and
stopped by ``lakehouse down``. Which model, version and port each endpoint
serves is recorded in ``<home>/ml/endpoints/<service>.json``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.errors import MLError, ModelNotFoundError, PortInUseError
from lakehouse.ml.tracking import mlflow_errors, use_tracking_server
from lakehouse.services.base import Port, Service, ServiceSpec

if TYPE_CHECKING:
    from lakehouse.config import Settings

SERVICE_PREFIX = "ml-"
SERVE_PORTS = 10  # endpoints take the first free port of ml_serve_port .. + 9
# Loading a model (download from the registry, unpickling) takes seconds.
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class ModelSummary:
    """A registered model and its latest version."""

    name: str
    latest_version: int
    run_id: str


@dataclass(frozen=True)
class Endpoint:
    """A running (or starting) endpoint of ``name`` version ``version``."""

    name: str
    version: int
    port: int
    host: str

    @property
    def service(self) -> str:
        return endpoint_service_name(self.name)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def invocations_url(self) -> str:
        return f"{self.url}/invocations"


def endpoint_service_name(model: str) -> str:
    """``ml-<model>`` with anything but letters, digits, ``.``, ``_`` and ``-`` as ``_``."""
    return SERVICE_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", model)


class ModelEndpoint(Service):
    """``mlflow models serve`` for one registered model version."""

    def __init__(self, settings: Settings, endpoint: Endpoint) -> None:
        super().__init__(settings)
        self.endpoint = endpoint
        self.name = endpoint.service

    def spec(self) -> ServiceSpec:
        s, e = self.settings, self.endpoint
        return ServiceSpec(
            name=self.name,
            description=f"MLflow model endpoint: {e.name} version {e.version}",
            command=(
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/{e.name}/{e.version}",
                "--env-manager",
                "local",
                "--host",
                s.bind_host,
                "--port",
                str(e.port),
                "--workers",
                "1",
            ),
            env={
                "MLFLOW_TRACKING_URI": s.mlflow_uri,
                "PYTHONUNBUFFERED": "1",
                # MLflow execs `uvicorn` by name: this install's scripts come first.
                "PATH": os.pathsep.join(
                    [sysconfig.get_path("scripts"), os.environ.get("PATH", "")]
                ),
            },
            ports=(Port("endpoint", e.port),),
            health_url=f"{e.url}/ping",
            url=e.invocations_url,
            depends_on=("mlflow",),
        )

    def start_hint(self) -> str:
        return f"Read the full log with `lakehouse logs {self.name}`."


def _records_dir(settings: Settings) -> Path:
    return settings.home_dir / "ml" / "endpoints"


def recorded_endpoints(settings: Settings) -> list[Endpoint]:
    """Endpoints ``serve`` started and ``stop`` has not removed (running or not)."""
    found = []
    for path in sorted(_records_dir(settings).glob("*.json")):
        try:
            found.append(Endpoint(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return found


def endpoint_services(settings: Settings) -> list[Service]:
    """A service per recorded endpoint (for status, logs and down)."""
    return [ModelEndpoint(settings, endpoint) for endpoint in recorded_endpoints(settings)]


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def registered_models(settings: Settings) -> list[ModelSummary]:
    """Every registered model with its latest version, by name."""
    use_tracking_server(settings)
    summaries = []
    with mlflow_errors("listing the registered models"):
        models = _client().search_registered_models()
    for model in models:
        versions = model.latest_versions or []
        latest = max(versions, key=lambda v: int(v.version), default=None)
        if latest is not None:
            summaries.append(ModelSummary(model.name, int(latest.version), latest.run_id or ""))
    return sorted(summaries, key=lambda m: m.name)


def resolve_version(settings: Settings, name: str, version: int | None) -> int:
    """``version`` of model ``name`` (its latest when None), checked against the registry.

    Raises ModelNotFoundError naming the models or versions that do exist.
    """
    known = {m.name: m for m in registered_models(settings)}
    if name not in known:
        names = ", ".join(known) or "none yet"
        raise ModelNotFoundError(
            f"No registered model is named {name!r} (registered: {names}).",
            hint="Train one first (`lakehouse ml train segments`), or see `lakehouse ml models`.",
        )
    if version is None:
        return known[name].latest_version
    from mlflow.exceptions import MlflowException

    try:
        _client().get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise MLError(f"MLflow refused looking up {name} version {version}: {exc.message}",
                          hint="See `lakehouse logs mlflow` for the server's side.") from exc  # fmt: skip
        raise ModelNotFoundError(
            f"Model {name!r} has no version {version} (its latest is {known[name].latest_version}).",
            hint=f"Leave out --version to serve the latest ({known[name].latest_version}).",
        ) from None
    return version


def _free_port(settings: Settings) -> int:
    from lakehouse.runtimes.local import port_is_free

    taken = {e.port for e in recorded_endpoints(settings)}
    first = settings.ml_serve_port
    for port in range(first, first + SERVE_PORTS):
        if port not in taken and port_is_free(settings.bind_host, port):
            return port
    raise PortInUseError(
        f"Every endpoint port from {first} to {first + SERVE_PORTS - 1} is in use.",
        hint="Stop an endpoint (`lakehouse ml stop NAME`), pass --port, or set "
        "LAKEHOUSE_ML_SERVE_PORT (ml_serve_port in lakehouse.toml).",
    )


def serve(settings: Settings, name: str, version: int | None, port: int | None) -> Endpoint:
    """Start the endpoint of ``name`` at ``version`` (latest when None) and wait until it
    answers; an endpoint already serving that version is returned as it is.

    Raises ModelNotFoundError, PortInUseError, ServiceStartError.
    """
    from lakehouse.runtimes.local import LocalRuntime

    version = resolve_version(settings, name, version)
    runtime = LocalRuntime(settings)
    service = endpoint_service_name(name)
    current = next((e for e in recorded_endpoints(settings) if e.service == service), None)
    running = current is not None and runtime.pid(service) is not None
    if current and running and current.version == version and port in (None, current.port):
        return current
    if current:
        stop_endpoints(settings, name)
    endpoint = Endpoint(name, version, port or _free_port(settings), settings.client_host)
    record = _records_dir(settings) / f"{service}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(asdict(endpoint)))
    try:
        runtime.start_service(ModelEndpoint(settings, endpoint), START_TIMEOUT_SECONDS)
    except BaseException:
        record.unlink(missing_ok=True)
        raise
    return endpoint


def stop_endpoints(settings: Settings, name: str | None = None) -> list[str]:
    """Stop the endpoint of ``name`` (all when None) and forget it; returns the
    services that were running."""
    from lakehouse.runtimes.local import LocalRuntime

    runtime = LocalRuntime(settings)
    stopped = []
    for endpoint in recorded_endpoints(settings):
        if name is not None and endpoint.service != endpoint_service_name(name):
            continue
        if runtime.stop(endpoint.service):
            stopped.append(endpoint.service)
        (_records_dir(settings) / f"{endpoint.service}.json").unlink(missing_ok=True)
    return stopped


def running_endpoints(settings: Settings) -> list[Endpoint]:
    """Recorded endpoints whose process is alive."""
    from lakehouse.runtimes.local import LocalRuntime

    runtime = LocalRuntime(settings)
    return [e for e in recorded_endpoints(settings) if runtime.pid(e.service) is not None]
