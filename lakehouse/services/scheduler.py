"""The scheduler: automatic table maintenance and scheduled crawlers, as a service.

``python -m lakehouse.scheduler`` (see that module). It has no port; it is
healthy while its heartbeat file is fresh. Light (one Python process that sleeps
between ticks), so it is a default service.
"""

from __future__ import annotations

import sys
import time

from lakehouse.services.base import Health, Service, ServiceSpec


class SchedulerService(Service):
    name = "scheduler"

    def spec(self) -> ServiceSpec:
        s = self.settings
        return ServiceSpec(
            name=self.name,
            description="Scheduler: table maintenance policies and crawler schedules",
            command=(sys.executable, "-m", "lakehouse.scheduler"),
            env={"LAKEHOUSE_HOME": str(s.home_dir), "PYTHONUNBUFFERED": "1"},
            ports=(),
            health_url="",
            url="lakehouse status",
            depends_on=("s3", "catalog"),
            data_dir=s.home_dir / "maintenance",
        )

    def prepare(self) -> None:
        from lakehouse.scheduler import heartbeat_path

        # A heartbeat left by an earlier process must not make this one look ready.
        heartbeat_path(self.settings).unlink(missing_ok=True)

    def health(self) -> Health:
        from lakehouse.scheduler import heartbeat_path, stale_after_s

        try:
            beat = float(heartbeat_path(self.settings).read_text())
        except (OSError, ValueError):
            return Health(False, "the scheduler has not ticked yet")
        age = time.time() - beat
        if age > stale_after_s(self.settings):
            return Health(False, f"the scheduler's last heartbeat is {age:.0f} s old")
        return Health(True, f"ticking every {self.settings.maintenance_tick_seconds:.0f} s")

    def start_hint(self) -> str:
        return (
            "Read `lakehouse logs scheduler`; a [maintenance] entry of lakehouse.toml that "
            "is not valid is named there."
        )
