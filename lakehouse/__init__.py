"""lakehouse: an open-source lake house on your laptop or in CI."""

from lakehouse.client import Lakehouse, connect
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

__all__ = ["Lakehouse", "LakehouseError", "Settings", "connect", "load_settings"]
__version__ = "0.1.0"
