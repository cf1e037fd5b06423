"""The scheduler service (``python -m lakehouse.scheduler``): automatic maintenance
and scheduled crawlers.

Every ``maintenance_tick_seconds`` it runs the table maintenance that is due by
the ``[maintenance]`` policies of ``lakehouse.toml`` (``lakehouse.lake.maintenance_policy``;
each run recorded in ``<home>/maintenance/runs.json``, shown by ``lakehouse status``)
and then the crawlers due by their schedules (``lakehouse.crawl.schedule.run_due``,
when that module is installed). A job that fails is recorded as failed and the
others go on; the process itself only stops on SIGTERM/SIGINT, between jobs.
It has no port: it is healthy while its heartbeat file is fresh.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse.scheduler")


def heartbeat_path(settings: Settings) -> Path:
    return settings.home_dir / "maintenance" / "scheduler.heartbeat"


def stale_after_s(settings: Settings) -> float:
    """A heartbeat older than this means the scheduler is stuck or gone (a long
    optimize holds a tick: the beat is written before and after each job too)."""
    return max(120.0, 3 * settings.maintenance_tick_seconds)


def beat(settings: Settings) -> None:
    path = heartbeat_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time():.3f}")


def run_maintenance(settings: Settings, now: float, stop: threading.Event) -> int:
    """Run the maintenance jobs due at ``now``; each is recorded. Returns how many ran."""
    from lakehouse.client import Lakehouse
    from lakehouse.lake import maintenance_policy as policies

    ran = 0
    with Lakehouse(settings) as lake:
        for table, job, policy in policies.due_jobs(settings, policies.governed_tables(lake), now):
            if stop.is_set():
                break
            beat(settings)
            try:
                report = policies.run_job(lake, table, job, policy)
            except LakehouseError as exc:
                log.warning("%s %s failed: %s", job, table, exc)
                # The record's ok=False is shown as FAILED; the message says the rest.
                policies.record_run(settings, table, job, False, str(exc))
            else:
                summary = summarize(report)
                log.info("%s %s: %s", job, table, summary)
                policies.record_run(settings, table, job, report.skipped is None, summary, report)
            ran += 1
    return ran


def summarize(report: object) -> str:
    """One line for a report (``lakehouse.cli.maintain`` prints the same words)."""
    from lakehouse.lake.maintenance import MaintenanceReport, one_line

    return one_line(report) if isinstance(report, MaintenanceReport) else str(report)


def run_crawlers(settings: Settings) -> list[str]:
    """The crawlers due now (helper module ``lakehouse.crawl.schedule``, if installed)."""
    if importlib.util.find_spec("lakehouse.crawl.schedule") is None:
        return []
    from lakehouse.crawl import schedule

    return list(schedule.run_due(settings, datetime.now(UTC)))


def tick(settings: Settings, stop: threading.Event) -> None:
    """One round: due maintenance, then due crawlers; nothing here ends the loop."""
    beat(settings)
    errors: dict[str, str] = {}
    for name, step in (("maintenance", lambda: run_maintenance(settings, time.time(), stop)),
                       ("crawlers", lambda: run_crawlers(settings))):  # fmt: skip
        try:
            step()
        except LakehouseError as exc:  # a bad declaration or a service down: next tick
            log.warning("%s: %s", name, exc)
            errors[name] = str(exc)
        except Exception as exc:  # a bug must not stop the schedule; its traceback is logged
            log.exception("%s failed", name)
            errors[name] = f"unexpected {type(exc).__name__}: {exc} (see the scheduler's log)"
    # A step that fails every tick (a bad [maintenance] entry) must show in `status`.
    path = step_errors_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(errors))
    beat(settings)


def step_errors_path(settings: Settings) -> Path:
    return settings.home_dir / "maintenance" / "scheduler.errors.json"


def step_errors(settings: Settings) -> dict[str, str]:
    """step ('maintenance', 'crawlers') -> why it failed in the scheduler's last tick."""
    try:
        errors = json.loads(step_errors_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}


def serve(settings: Settings) -> None:
    """Tick every ``maintenance_tick_seconds`` until SIGTERM or SIGINT."""
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    log.info("scheduler ticking every %.0f s", settings.maintenance_tick_seconds)
    while not stop.is_set():
        tick(settings, stop)
        stop.wait(settings.maintenance_tick_seconds)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        settings = load_settings()
    except LakehouseError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    serve(settings)


if __name__ == "__main__":
    main()
