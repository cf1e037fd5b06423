"""Testing with lakehouse: the pytest plugin's building blocks.

The plugin (``lakehouse.testing.plugin``) is registered as a pytest11 entry
point, so installing lakehouse makes its fixtures available to every test suite.
"""

from lakehouse.testing.lake import IsolatedLake
from lakehouse.testing.stack import LakehouseStack

__all__ = ["IsolatedLake", "LakehouseStack"]
