"""Training runs on the stack's MLflow server, with the lake's lineage recorded.

A run pins, when it starts, the current Iceberg snapshot of every input table:
each becomes a tag ``lakehouse.input.<table>.snapshot_id`` (and, all together,
the param ``lakehouse.inputs``), and :meth:`TrainingRun.read` /
:meth:`TrainingRun.sql` read the inputs AT those snapshots, so the recorded
lineage stays true when a table changes while the model trains.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakehouse.errors import MLError, ServiceNotRunningError
from lakehouse.services.base import http_health

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

INPUT_TAG = "lakehouse.input.{table}.snapshot_id"
INPUTS_PARAM = "lakehouse.inputs"
# The artifact path of the model inside its run.
MODEL_ARTIFACT = "model"
# Fail within seconds, not after MLflow's default seven exponential retries (minutes).
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}

Flavor = Literal["sklearn", "pyfunc"]
# What every model needs to load, whatever it is: MLflow pickles both flavors with
# cloudpickle, and its pyfunc wrapper hands predict pandas frames of numpy values.
BASE_REQUIREMENTS = ("cloudpickle", "numpy", "pandas")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model: ``uri`` is ``models:/<name>/<version>``."""

    name: str
    version: int
    run_id: str
    uri: str


def lineage_tags(inputs: Mapping[str, int]) -> dict[str, str]:
    """The run (and model version) tags that record which snapshot of each input was read."""
    return {INPUT_TAG.format(table=table): str(snapshot) for table, snapshot in inputs.items()}


def lineage_param(inputs: Mapping[str, int]) -> str:
    """All inputs in one param value: ``ns.table@snapshot_id`` joined by ``,`` (sorted)."""
    return ",".join(f"{table}@{snapshot}" for table, snapshot in sorted(inputs.items()))


def use_tracking_server(settings: Settings) -> None:
    """Point this process's MLflow client at the stack's server, or raise
    ServiceNotRunningError (with a Hint) when it does not answer."""
    import os

    health = http_health(f"{settings.mlflow_uri}/health")
    if not health.ok:
        raise ServiceNotRunningError(
            f"The MLflow tracking server is not answering ({health.detail}).",
            hint="Start it with `lakehouse up` (or `lakehouse up --services mlflow`).",
        )
    for name, value in HTTP_ENV.items():
        os.environ.setdefault(name, value)
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)


def input_snapshots(lake: Lakehouse, inputs: Sequence[str]) -> dict[str, int]:
    """The current snapshot id of each input table.

    Raises:
        TableNotFoundError: a table does not exist.
        MLError: a table has no snapshot (nothing was ever written to it).
    """
    if not inputs:
        raise MLError("A training run needs at least one input table.")
    pinned = {}
    for name in dict.fromkeys(inputs):
        snapshot = lake.table(name).current_snapshot()
        if snapshot is None:
            raise MLError(
                f"Input table {name} is empty: it has no snapshot to train on.",
                hint=f"Load data into {name} first (`lakehouse ingest ... --table {name}`, "
                "or `lakehouse load-sample`).",
            )
        pinned[name] = snapshot.snapshot_id
    return pinned


@dataclass
class TrainingRun:
    """An open MLflow run; ``inputs`` maps each input table to its pinned snapshot id."""

    lake: Lakehouse
    run_id: str
    experiment: str
    inputs: dict[str, int] = field(default_factory=dict)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters (values are stored as text)."""
        import mlflow

        with mlflow_errors("logging params"):
            mlflow.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record numeric metrics."""
        import mlflow

        with mlflow_errors("logging metrics"):
            mlflow.log_metrics({name: float(v) for name, v in metrics.items()}, step=step)

    def read(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """An input table as Arrow, as of its pinned snapshot (all columns by default).

        Raises MLError when ``table`` is not one of this run's inputs.
        """
        snapshot = self._pinned(table)
        scan = self.lake.table(table).scan(
            snapshot_id=snapshot, selected_fields=tuple(columns) if columns else ("*",)
        )
        return scan.to_arrow()

    def sql(self, query: str) -> pa.Table:
        """Run DuckDB-dialect SQL over the inputs, each read at its pinned snapshot.

        Raises MLError when the query reads a table that is not an input, and
        QueryError when DuckDB refuses the query.
        """
        from lakehouse.engines.translate import parse, referenced_tables, translate

        tables = referenced_tables(parse(query, "duckdb"))
        snapshots = {table: self._pinned(table) for table in tables}
        schema = self.lake._lake_schema(tables, snapshots)
        text = translate(query, "duckdb", snapshots, schema).sql
        return self.lake.engine("duckdb").sql(text, None)

    def register_model(
        self, model: Any, name: str, flavor: Flavor = "sklearn", input_example: Any = None,
        requires: Sequence[str] = (),
    ) -> RegisteredVersion:  # fmt: skip
        """Log ``model`` in this run and register it as a new version of ``name``.

        ``flavor`` "sklearn" takes a fitted scikit-learn estimator, "pyfunc" an
        ``mlflow.pyfunc.PythonModel``. ``requires`` names the distributions the
        model needs besides :data:`BASE_REQUIREMENTS` (and scikit-learn for
        "sklearn"); each is pinned at its installed version, so MLflow infers
        nothing. The signature comes from ``input_example``; MLflow's warnings
        while it is inferred are logged, never raised (where warnings are errors,
        MLflow would otherwise save the model without a signature). The version
        carries the lineage tags too. Raises MLError when MLflow refuses or a
        required distribution is not installed.
        """
        import mlflow

        loggers = {"sklearn": _log_sklearn, "pyfunc": _log_pyfunc}
        if flavor not in loggers:
            raise MLError(f"Unknown model flavor {flavor!r}.", hint="Use 'sklearn' or 'pyfunc'.")
        flavor_needs = ("scikit-learn",) if flavor == "sklearn" else ()
        pins = pinned_requirements([*BASE_REQUIREMENTS, *flavor_needs, *requires])
        with (
            mlflow_errors(f"registering model {name}"),
            logged_warnings(f"registering {name}"),
            pins_not_rechecked(),
        ):
            info = loggers[flavor](model, name, input_example, pins)
        version = int(info.registered_model_version)
        with mlflow_errors(f"tagging model {name} version {version}"):
            client = mlflow.MlflowClient()
            for key, value in lineage_tags(self.inputs).items():
                client.set_model_version_tag(name, str(version), key, value)
        return RegisteredVersion(name, version, self.run_id, f"models:/{name}/{version}")

    def _pinned(self, table: str) -> int:
        if table not in self.inputs:
            raise MLError(
                f"{table} is not an input of this training run ({', '.join(self.inputs)}).",
                hint="Name every table the model reads in training_run(..., inputs=[...]).",
            )
        return self.inputs[table]


def pinned_requirements(distributions: Sequence[str]) -> list[str]:
    """``name==version`` for each installed distribution (sorted, once each).

    Raises MLError naming a distribution that is not installed.
    """
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for dist in sorted(set(distributions)):
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            raise MLError(
                f"The model needs {dist}, which is not installed here.",
                hint=f"pip install {dist} (in the environment that trains the model).",
            ) from None
    return pins


def _pins_agree(model_requirements: list[str]) -> None:
    """Nothing to warn about: the pins were read from this environment."""


@contextlib.contextmanager
def pins_not_rechecked() -> Iterator[None]:
    """MLflow's check of a model's requirements against this environment, skipped.

    Before its first check in a process, MLflow maps every installed distribution to
    its modules (importlib_metadata.packages_distributions(): 2.6 s idle to 9.6 s on
    busy cores, measured); :func:`pinned_requirements` took the pins from this
    environment, so the check can only agree. Without the hook (another MLflow
    version) the check runs as before.
    """
    import mlflow.utils.environment as environment

    original = getattr(environment, "warn_dependency_requirement_mismatches", None)
    if original is None:
        yield
        return
    environment.warn_dependency_requirement_mismatches = _pins_agree
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = original


@contextlib.contextmanager
def logged_warnings(action: str) -> Iterator[None]:
    """Warnings raised inside the block are recorded, then logged (never raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                log.info("%s: %s: %s", action, warning.category.__name__, warning.message)


def _log_sklearn(model: Any, name: str, input_example: Any, requirements: list[str]) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        registered_model_name=name,
        input_example=input_example,
        serialization_format="cloudpickle",
        pip_requirements=requirements,
    )


def _log_pyfunc(model: Any, name: str, input_example: Any, requirements: list[str]) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        python_model=model,
        registered_model_name=name,
        input_example=input_example,
        pip_requirements=requirements,
    )


@contextlib.contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """MLflow's own exceptions become one MLError naming the action."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise MLError(
            f"MLflow refused {action}: {exc.message}",
            hint="See `lakehouse logs mlflow` for the server's side.",
        ) from exc


@contextlib.contextmanager
def training_run(lake: Lakehouse, experiment: str, inputs: Sequence[str]) -> Iterator[TrainingRun]:
    """An MLflow run in ``experiment`` with each input table's current snapshot pinned.

    The run ends FINISHED when the block completes and FAILED when it raises
    (the exception propagates). Raises TableNotFoundError / MLError (empty
    input) before any run is created, ServiceNotRunningError when the
    tracking server is down.
    """
    import mlflow

    pinned = input_snapshots(lake, inputs)
    use_tracking_server(lake.settings)
    with mlflow_errors(f"starting a run in experiment {experiment}"):
        mlflow.set_experiment(experiment)
        active = mlflow.start_run(tags=lineage_tags(pinned))
    run = TrainingRun(lake, active.info.run_id, experiment, pinned)
    try:
        with mlflow_errors("recording the run's inputs"):
            mlflow.log_param(INPUTS_PARAM, lineage_param(pinned))
        yield run
    except BaseException:
        with mlflow_errors("ending the failed run"):
            mlflow.end_run(status="FAILED")
        raise
    with mlflow_errors("ending the run"):
        mlflow.end_run(status="FINISHED")


__all__ = [
    "RegisteredVersion",
    "TrainingRun",
    "input_snapshots",
    "lineage_tags",
    "logged_warnings",
    "pinned_requirements",
    "training_run",
]
