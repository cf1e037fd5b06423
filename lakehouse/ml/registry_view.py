"""The model registry as people browse it: models, versions, metrics and lineage.

For each registered model (``registered_models``, what `lakehouse ml models`
lists), its newest versions with their run's metrics and the Iceberg snapshot
of each input the run read (the ``lakehouse.input.<table>.snapshot_id`` tags
of :mod:`lakehouse.ml.tracking`), the tables it wrote (its run's
``lakehouse.output.<table>.snapshot_id`` params), and links into the MLflow UI.

:func:`governed_model_views` is what a governed principal sees of it
(:mod:`lakehouse.governance.derived`): a version shows only when the principal
may see every table its run read and wrote, and its metrics (computed over
every row of them) only when it may SELECT each whole; a version whose run
recorded no table is the admin's only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lakehouse.ml.serving import registered_models
from lakehouse.ml.tracking import INPUT_TAG, mlflow_errors

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

VERSIONS_SHOWN = 10  # per model, newest first
_TAG_PREFIX, _TAG_SUFFIX = INPUT_TAG.split("{table}")
_OUTPUT_PREFIX, _OUTPUT_SUFFIX = "lakehouse.output.", ".snapshot_id"
METRICS_HELD = "metrics are computed over every row and column of them"


@dataclass(frozen=True)
class VersionView:
    """One model version: ``lineage`` maps each input table to the snapshot id read,
    ``outputs`` each table written to the snapshot it made; ``hidden`` says why
    its metrics (and MLflow links) are not shown to a governed principal ("")."""

    version: int
    run_id: str
    status: str
    created: dt.datetime | None
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, int] = field(default_factory=dict)
    url: str = ""
    run_url: str = ""
    outputs: dict[str, int] = field(default_factory=dict)
    hidden: str = ""


@dataclass(frozen=True)
class ModelView:
    """A registered model with its newest versions (``count`` of them in all;
    ``hidden_versions`` of the newest not shown to a governed principal)."""

    name: str
    url: str
    count: int
    versions: list[VersionView]
    hidden_versions: int = 0


def lineage_of(tags: dict[str, str]) -> dict[str, int]:
    """``{table: snapshot id}`` from a run's or version's tags (others ignored)."""
    found = {}
    for key, value in tags.items():
        if key.startswith(_TAG_PREFIX) and key.endswith(_TAG_SUFFIX) and value.isdigit():
            found[key[len(_TAG_PREFIX) : len(key) - len(_TAG_SUFFIX)]] = int(value)
    return dict(sorted(found.items()))


def outputs_of(params: dict[str, str]) -> dict[str, int]:
    """``{table: snapshot id}`` of the tables a run wrote, from its params."""
    found = {}
    for key, value in params.items():
        if key.startswith(_OUTPUT_PREFIX) and key.endswith(_OUTPUT_SUFFIX) and value.isdigit():
            found[key[len(_OUTPUT_PREFIX) : len(key) - len(_OUTPUT_SUFFIX)]] = int(value)
    return dict(sorted(found.items()))


def model_views(settings: Settings, versions_shown: int = VERSIONS_SHOWN) -> list[ModelView]:
    """Every registered model (by name) with its newest ``versions_shown`` versions.

    Raises ServiceNotRunningError (with the command that starts MLflow) when the
    tracking server does not answer, MLError when it refuses.
    """
    summaries = registered_models(settings)  # checks the server, points mlflow at it
    import mlflow  # after the check: its import takes seconds, a server down answers at once

    client = mlflow.MlflowClient()
    ui = settings.mlflow_uri
    views = []
    for summary in summaries:
        with mlflow_errors(f"listing the versions of {summary.name}"):
            found = client.search_model_versions(f"name = '{_quoted(summary.name)}'")
        newest = sorted(found, key=lambda v: int(v.version), reverse=True)
        shown = [_version(client, ui, summary.name, v) for v in newest[:versions_shown]]
        views.append(ModelView(summary.name, f"{ui}/#/models/{quote(summary.name)}",
                               len(found), shown))  # fmt: skip
    return views


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _version(client: Any, ui: str, name: str, version: Any) -> VersionView:
    metrics: dict[str, float] = {}
    outputs: dict[str, int] = {}
    run_url = ""
    lineage = lineage_of(dict(version.tags or {}))
    if version.run_id:
        with mlflow_errors(f"reading run {version.run_id}"):
            run = client.get_run(version.run_id)
        metrics = dict(sorted(run.data.metrics.items()))
        lineage = lineage or lineage_of(dict(run.data.tags))
        outputs = outputs_of(dict(run.data.params))
        run_url = f"{ui}/#/experiments/{run.info.experiment_id}/runs/{version.run_id}"
    created = (
        dt.datetime.fromtimestamp(version.creation_timestamp / 1000).astimezone()
        if version.creation_timestamp
        else None
    )
    return VersionView(int(version.version), version.run_id or "", str(version.status or ""),
                       created, metrics, lineage,
                       f"{ui}/#/models/{quote(name)}/versions/{version.version}", run_url,
                       outputs)  # fmt: skip


def governed_model_views(lake: Lakehouse, versions_shown: int = VERSIONS_SHOWN
                         ) -> tuple[list[ModelView], int]:  # fmt: skip
    """:func:`model_views` as ``lake``'s principal may see them (see the module),
    and how many models it sees none of (counted, not named). Everything for a
    principal that is not governed."""
    views = model_views(lake.settings, versions_shown)
    if not lake.governed():
        return views, 0
    from lakehouse.governance.derived import sight_of, table_columns
    from lakehouse.governance.store import load_policy

    policy, admin = load_policy(lake.settings), lake.settings.governance_admin
    names = {t for view in views for v in view.versions for t in (*v.lineage, *v.outputs)}
    columns = {t: table_columns(lake, t) for t in sorted(names)}
    shown, hidden = [], 0
    for view in views:
        versions = []
        for v in view.versions:
            tables = {t: columns[t] for t in (*v.lineage, *v.outputs)}
            sight = sight_of(policy, lake.principal, admin, tables, METRICS_HELD)
            if sight.status and not sight.values:
                v = replace(v, metrics={}, url="", run_url="", hidden=sight.why)
            if sight.status:
                versions.append(v)
        if versions:
            shown.append(replace(view, versions=versions,
                                 hidden_versions=len(view.versions) - len(versions)))  # fmt: skip
        else:
            hidden += 1
    return shown, hidden
