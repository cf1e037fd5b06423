"""The web console: server-rendered pages over the library (the AWS console's role).

``create_app(settings)`` builds the FastAPI app; ``python -m lakehouse.console``
serves it (the ``console`` service). Every page calls the same library function
the CLI calls; templates and static files live inside this package, and charts
use plotly.js from the plotly wheel, so nothing needs the network or a Node build.
"""

from __future__ import annotations

from lakehouse.console.app import PAGES, create_app

__all__ = ["PAGES", "create_app"]
