"""The sync worker: `lakehouse sync run --follow` as a supervised service.

It follows every declared integration (and picks up ones created later). It
has no port; it is healthy while its heartbeat file is fresh.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lakehouse.services.base import Health, Service, ServiceSpec

# Where the worker writes its rotating log (lakehouse.sync.runner.configure_worker).
LOG_FILE_VARIABLE = "LAKEHOUSE_SYNC_LOG_FILE"
# What bounds the worker's memory; both are read when the process starts.
# Arrow's default pool here is mimalloc, which kept freed pages for reuse, so
# its batches go through the C allocator, which the runner trims after a pass
# (lakehouse.sync.runner.release_free_memory). glibc gives each thread an arena
# of its own (up to 8 per core), each holding freed memory; two are shared.
MEMORY_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}


class SyncService(Service):
    name = "sync"

    def spec(self) -> ServiceSpec:
        s = self.settings
        return ServiceSpec(
            name=self.name,
            description="Zero-ETL sync worker (lakehouse sync run --follow)",
            command=(sys.executable, "-m", "lakehouse", "sync", "run", "--follow"),
            env={
                "LAKEHOUSE_HOME": str(s.home_dir),
                "PYTHONUNBUFFERED": "1",
                LOG_FILE_VARIABLE: str(self.log_file),
                **MEMORY_ENV,
            },
            ports=(),
            health_url="",
            url="lakehouse sync status",
            depends_on=("catalog", "postgres", "opensearch"),
            data_dir=s.home_dir / "sync",
            extra_paths={"log": self.log_file},
        )

    @property
    def log_file(self) -> Path:
        """The worker's own rotating log (see lakehouse.sync.runner.configure_worker)."""
        return self.settings.home_dir / "logs" / "sync" / "sync.log"

    @property
    def heartbeat(self) -> Path:
        # Imported here: the sync's status module brings the governance parser
        # (sqlglot), which `lakehouse status` and every service list need not load.
        from lakehouse.sync.status import heartbeat_path

        return heartbeat_path(self.settings)

    def prepare(self) -> None:
        # A heartbeat left by an earlier worker must not make this one look ready.
        self.heartbeat.unlink(missing_ok=True)

    def health(self) -> Health:
        from lakehouse.sync.status import STALE_SECONDS

        try:
            beat = float(self.heartbeat.read_text())
        except (OSError, ValueError):
            return Health(False, "the sync worker has not reported yet")
        age = time.time() - beat
        if age > STALE_SECONDS:
            return Health(False, f"the sync worker's last heartbeat is {age:.0f} s old")
        return Health(True, "following; see `lakehouse sync status`")
