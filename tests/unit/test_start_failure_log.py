"""A failed start shows the log of that start only, not an earlier run's (a real child process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lakehouse.config import Settings
from lakehouse.errors import ServiceStartError
from lakehouse.runtimes.local import LocalRuntime, free_port_block
from lakehouse.services.base import Port, Service, ServiceSpec


class FailingService(Service):
    name = "failing"

    def spec(self) -> ServiceSpec:
        port = free_port_block(1)
        script = "import sys; print('this start: bad flag --frobnicate'); sys.exit(3)"
        return ServiceSpec(
            name=self.name, description="exits at once", command=(sys.executable, "-c", script),
            env={}, ports=(Port("http", port),), health_url=f"http://127.0.0.1:{port}/",
            url=f"http://127.0.0.1:{port}",
        )  # fmt: skip


def test_the_error_shows_only_this_starts_output(tmp_path: Path) -> None:
    runtime = LocalRuntime(Settings(home=tmp_path, startup_timeout=60))
    log = runtime.log_path("failing")
    log.parent.mkdir(parents=True)
    log.write_text("=== 2026-01-01 00:00:00 starting failing\nOLD CRASH: out of memory\n")
    with pytest.raises(ServiceStartError) as raised:
        runtime.start_service(FailingService(runtime.settings))
    shown = str(raised.value)
    assert "this start: bad flag --frobnicate" in shown
    assert "OLD CRASH" not in shown
    # Each start rotates the start-up log: the earlier run is kept beside it.
    assert "OLD CRASH" in log.with_name("failing.log.1").read_text()
