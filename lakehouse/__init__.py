"""lakehouse: an open-source lake house on your laptop or in CI.

The entry point is :func:`connect`. Everything here loads on first use
(pydantic for the settings, pyiceberg and DuckDB for the client), so
``lakehouse --help`` and the CLI's quick commands stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse, connect
    from lakehouse.config import Settings, load_settings

__all__ = ["Lakehouse", "LakehouseError", "Settings", "connect", "load_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("Lakehouse", "connect"):
        from lakehouse import client

        return getattr(client, name)
    if name in ("Settings", "load_settings"):
        from lakehouse import config

        return getattr(config, name)
    raise AttributeError(f"module 'lakehouse' has no attribute {name!r}")
