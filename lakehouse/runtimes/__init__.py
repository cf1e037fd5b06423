"""Runtimes run the services: ``local`` (supervised processes) or ``docker`` (compose)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime, ServiceStatus

if TYPE_CHECKING:
    from lakehouse.runtimes.docker import DockerRuntime


def get_runtime(settings: Settings) -> LocalRuntime | DockerRuntime:
    """The runtime named by the settings (``--runtime`` / ``LAKEHOUSE_RUNTIME``)."""
    if settings.runtime == "docker":
        from lakehouse.runtimes.docker import DockerRuntime

        return DockerRuntime(settings)
    return LocalRuntime(settings)


__all__ = ["LocalRuntime", "ServiceStatus", "get_runtime"]
