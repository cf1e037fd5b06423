"""The services of the lake house, in dependency order."""

from __future__ import annotations

from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.services.base import Health, Port, Service, ServiceSpec


def service_files_dir() -> Path:
    """``services/`` of the checkout, else the copy bundled into the wheel."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "services", package / "_services"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        "The services/ configuration directory is missing.", hint="Reinstall lakehouse."
    )


def service_names() -> tuple[str, ...]:
    """Names of the kinds of service, in start order (workers are extra ``trino-worker-N``)."""
    return ("s3", "catalog", "postgres", "opensearch", "trino", "spark", "mlflow", "sync",
            "scheduler", "aws", "dashboards", "console", "jupyter")  # fmt: skip


def all_services(settings: Settings) -> list[Service]:
    """Every service of this lake house, in start order."""
    from lakehouse.services.aws import AwsService
    from lakehouse.services.catalog import CatalogService
    from lakehouse.services.console import ConsoleService
    from lakehouse.services.dashboards import DashboardsService
    from lakehouse.services.jupyter import JupyterService
    from lakehouse.services.mlflow import MlflowService
    from lakehouse.services.opensearch import OpenSearchService
    from lakehouse.services.postgres import PostgresService
    from lakehouse.services.s3 import S3Service
    from lakehouse.services.scheduler import SchedulerService
    from lakehouse.services.spark import SparkService
    from lakehouse.services.sync import SyncService
    from lakehouse.services.trino import trino_services

    return [
        S3Service(settings),
        CatalogService(settings),
        PostgresService(settings),
        OpenSearchService(settings),
        *trino_services(settings),
        SparkService(settings),
        MlflowService(settings),
        SyncService(settings),
        SchedulerService(settings),
        AwsService(settings),
        DashboardsService(settings),
        ConsoleService(settings),
        JupyterService(settings),
    ]


def build_services(
    settings: Settings, names: list[str] | None = None, *, every: bool = False
) -> list[Service]:
    """Services to run: the named ones plus their dependencies, in start order.

    Without names: every default service plus the optional ones the
    ``optional_services`` setting enables (``every=True``: all of them, as `down`
    needs). Naming ``trino`` brings its workers (``trino_workers``) along. Raises
    ConfigError for an unknown name.
    """
    services = all_services(settings)
    instances = {svc.name: svc for svc in services}
    _check_known(instances, [*(names or []), *settings.optional_services])
    if names:
        wanted = list(names)
    elif every:
        wanted = list(instances)
    else:
        enabled = set(settings.optional_services)
        wanted = [svc.name for svc in services if not svc.optional or svc.name in enabled]
    if "trino" in wanted:
        wanted += [name for name in instances if name.startswith("trino-worker-")]
    needed: set[str] = set()

    def add(name: str) -> None:
        if name not in needed:
            needed.add(name)
            for dep in instances[name].spec().depends_on:
                add(dep)

    for name in wanted:
        add(name)
    return [svc for svc in services if svc.name in needed]


def default_service_names(settings: Settings) -> list[str]:
    """What a plain `up` starts: the default services and the enabled optional ones."""
    return [svc.name for svc in build_services(settings)]


def _check_known(instances: dict[str, Service], names: list[str]) -> None:
    unknown = [name for name in names if name not in instances]
    if unknown:
        optional = [name for name, svc in instances.items() if svc.optional]
        raise ConfigError(
            f"Unknown service(s): {', '.join(unknown)}.",
            hint=f"Choose from: {', '.join(instances)}"
            + (f" (optional: {', '.join(optional)})." if optional else "."),
        )


__all__ = [
    "Health", "Port", "Service", "ServiceSpec", "build_services", "default_service_names",
    "service_files_dir",
]  # fmt: skip
