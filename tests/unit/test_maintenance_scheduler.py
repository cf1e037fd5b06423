"""The scheduler's tick: a failing step is logged and the schedule goes on; health
follows the heartbeat."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from lakehouse import scheduler
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.services.scheduler import SchedulerService


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "lakehouse.toml"))
    return Settings(home=tmp_path / "home", maintenance_tick_seconds=5)


def test_a_failing_step_does_not_stop_the_tick(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken_maintenance(*_: object) -> int:
        ran.append("maintenance")
        raise LakehouseError("the catalog is down")

    def crawlers(_: object) -> list[str]:
        ran.append("crawlers")
        raise RuntimeError("a bug in a crawler")

    monkeypatch.setattr(scheduler, "run_maintenance", broken_maintenance)
    monkeypatch.setattr(scheduler, "run_crawlers", crawlers)
    scheduler.tick(settings, threading.Event())
    assert ran == ["maintenance", "crawlers"]
    assert "the catalog is down" in caplog.text and "a bug in a crawler" in caplog.text
    assert SchedulerService(settings).health().ok


def test_health_follows_the_heartbeat(settings: Settings) -> None:
    service = SchedulerService(settings)
    assert not service.health().ok  # never ticked
    scheduler.beat(settings)
    assert service.health().ok
    old = time.time() - scheduler.stale_after_s(settings) - 1
    scheduler.heartbeat_path(settings).write_text(f"{old}")
    assert "old" in service.health().detail
    service.prepare()  # a new start never trusts an old beat
    assert not scheduler.heartbeat_path(settings).exists()


def test_no_policy_means_nothing_to_run(settings: Settings) -> None:
    """No [maintenance] entries: no table is listed, the catalog is not even asked."""
    assert scheduler.run_maintenance(settings, time.time(), threading.Event()) == 0
