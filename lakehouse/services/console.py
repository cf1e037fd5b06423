"""The web console (``python -m lakehouse.console``): uvicorn on ``bind_host:console_port``.

It needs no other service to start: the Overview renders while everything
else is down, and a page whose service is down shows that service's error.
"""

from __future__ import annotations

import sys

from lakehouse.services.base import Port, Service, ServiceSpec


class ConsoleService(Service):
    name = "console"

    def spec(self) -> ServiceSpec:
        s = self.settings
        url = f"http://{s.client_host}:{s.console_port}"
        return ServiceSpec(
            name=self.name,
            description="Web console: overview, catalog, query, Zero-ETL and models",
            command=(sys.executable, "-m", "lakehouse.console"),
            env={"LAKEHOUSE_HOME": str(s.home_dir), "PYTHONUNBUFFERED": "1"},
            ports=(Port("console", s.console_port),),
            health_url=f"{url}/healthz",
            url=url,
        )

    def start_hint(self) -> str:
        return (
            "Read the full log with `lakehouse logs console`; if the port is taken, set "
            "LAKEHOUSE_CONSOLE_PORT (console_port in lakehouse.toml)."
        )
