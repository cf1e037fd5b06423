"""lakehouse: an open-source lake house on your laptop or in CI.

The entry point is :func:`connect`. Heavy modules (pyiceberg, DuckDB) load on
first use, so the CLI's quick commands stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse, connect

__all__ = ["Lakehouse", "LakehouseError", "Settings", "connect", "load_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("Lakehouse", "connect"):
        from lakehouse import client

        return getattr(client, name)
    raise AttributeError(f"module 'lakehouse' has no attribute {name!r}")
