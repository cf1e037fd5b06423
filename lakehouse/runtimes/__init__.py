"""Runtimes run the services: ``local`` (supervised processes) or ``docker`` (compose)."""

from __future__ import annotations

from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.runtimes.local import LocalRuntime, ServiceStatus


def get_runtime(settings: Settings) -> LocalRuntime:
    """The runtime named by the settings (``--runtime`` / ``LAKEHOUSE_RUNTIME``)."""
    if settings.runtime == "local":
        return LocalRuntime(settings)
    raise ConfigError(
        f"The '{settings.runtime}' runtime is not available in this version of lakehouse.",
        hint="Use the local runtime: unset LAKEHOUSE_RUNTIME or pass --runtime local.",
    )


__all__ = ["LocalRuntime", "ServiceStatus", "get_runtime"]
