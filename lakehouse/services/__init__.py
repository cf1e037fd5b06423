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


def service_classes() -> dict[str, type[Service]]:
    """Every service, in the order they start."""
    from lakehouse.services.catalog import CatalogService
    from lakehouse.services.s3 import S3Service

    return {cls.name: cls for cls in (S3Service, CatalogService)}


def build_services(settings: Settings, names: list[str] | None = None) -> list[Service]:
    """Services to run: the named ones plus their dependencies, in start order."""
    classes = service_classes()
    wanted = names if names else list(classes)
    unknown = [name for name in wanted if name not in classes]
    if unknown:
        raise ConfigError(
            f"Unknown service(s): {', '.join(unknown)}.",
            hint=f"Choose from: {', '.join(classes)}.",
        )
    instances = {name: cls(settings) for name, cls in classes.items()}
    needed: set[str] = set()

    def add(name: str) -> None:
        if name not in needed:
            needed.add(name)
            for dep in instances[name].spec().depends_on:
                add(dep)

    for name in wanted:
        add(name)
    return [instances[name] for name in classes if name in needed]


__all__ = ["Health", "Port", "Service", "ServiceSpec", "build_services", "service_files_dir"]
