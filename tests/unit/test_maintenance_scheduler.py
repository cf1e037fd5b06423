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


def test_a_failed_job_is_recorded_once_as_failed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused job shows as 'FAILED <the message>' (it read 'FAILED failed: ...')."""
    from lakehouse import client
    from lakehouse.cli.maintain import last_run_rows
    from lakehouse.lake import maintenance_policy as policies

    class NoCatalog:  # run_maintenance only enters and leaves it here
        def __init__(self, _: Settings) -> None: ...
        def __enter__(self) -> NoCatalog:
            return self

        def __exit__(self, *_: object) -> None: ...

    def refused(*_: object) -> None:
        raise LakehouseError("expire-snapshots refused: gc.enabled=false", hint="Set it.")

    policy = policies.parse_policy("web", {"max_snapshot_age": "1d"})
    monkeypatch.setattr(client, "Lakehouse", NoCatalog)
    monkeypatch.setattr(policies, "governed_tables", lambda _: ["web.clicks"])
    monkeypatch.setattr(
        policies, "due_jobs", lambda *_: [("web.clicks", "expire-snapshots", policy)]
    )
    monkeypatch.setattr(policies, "run_job", refused)
    assert scheduler.run_maintenance(settings, time.time(), threading.Event()) == 1
    [[table, job, _, result]] = last_run_rows(settings)
    assert (table, job) == ("web.clicks", "expire-snapshots")
    assert result.startswith("FAILED expire-snapshots refused: gc.enabled=false")


def test_a_step_failing_every_tick_shows_in_status(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad [maintenance] entry stopped every policy while status showed nothing."""
    from lakehouse.cli.maintain import print_last_runs

    def bad_policy(*_: object) -> int:
        raise LakehouseError("www3: max_snapshot_age '9999999999d' is over 100 years.")

    monkeypatch.setattr(scheduler, "run_maintenance", bad_policy)
    monkeypatch.setattr(scheduler, "run_crawlers", lambda _: [])
    scheduler.tick(settings, threading.Event())
    print_last_runs(settings)
    shown = capsys.readouterr().out
    assert "maintenance step failed" in shown and "over 100 years" in shown
    monkeypatch.setattr(scheduler, "run_maintenance", lambda *_: 0)
    scheduler.tick(settings, threading.Event())  # fixed: the next tick clears it
    print_last_runs(settings)
    assert "failed" not in capsys.readouterr().out
