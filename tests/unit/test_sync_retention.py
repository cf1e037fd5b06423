"""Which snapshots a Retention expires, and when expiry is due (pure logic)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from lakehouse.config import Settings
from lakehouse.sync.iceberg_expire import Retention


def history(ages_s: list[float], current: int = 0) -> Any:
    """A table whose snapshots are ``ages_s`` seconds old (ids 0..n-1), ``current`` on main."""
    now_ms = time.time() * 1000
    snapshots = [SimpleNamespace(snapshot_id=i, timestamp_ms=now_ms - age * 1000)
                 for i, age in enumerate(ages_s)]  # fmt: skip
    refs = {"main": SimpleNamespace(snapshot_id=current)}
    return SimpleNamespace(metadata=SimpleNamespace(snapshots=snapshots, refs=refs))


def test_expiry_is_due_only_beyond_the_count_plus_a_small_margin() -> None:
    retention = Retention(snapshots=100, max_age_s=0)
    assert retention.margin == 10
    assert not retention.due(history([float(i) for i in range(110)]))
    assert retention.due(history([float(i) for i in range(111)]))
    expired = retention.expired(history([float(i) for i in range(111)]))
    assert [s.snapshot_id for s in expired] == list(range(100, 111))  # the oldest eleven


def test_a_small_count_still_has_a_margin_and_keeps_the_current_snapshot() -> None:
    retention = Retention(snapshots=1, max_age_s=0)
    assert retention.margin == 2
    assert [s.snapshot_id for s in retention.expired(history([0.0, 1.0, 2.0]))] == [1, 2]


def test_age_expires_old_snapshots_within_the_count_but_never_the_current_one() -> None:
    retention = Retention(snapshots=100, max_age_s=60)
    assert not retention.due(history([0.0, 30.0, 65.0]))  # 10% slack before it runs
    assert retention.due(history([0.0, 30.0, 70.0]))
    assert [s.snapshot_id for s in retention.expired(history([0.0, 30.0, 70.0]))] == [2]
    # The current snapshot stays, however old; so does a snapshot a ref holds.
    assert retention.expired(history([500.0], current=0)) == []
    assert [s.snapshot_id for s in retention.expired(history([90.0, 100.0, 120.0], current=2))] == [
        1
    ]


def test_the_settings_give_the_retention() -> None:
    settings = Settings(sync_snapshots_kept=7, sync_snapshot_max_age_minutes=0)
    assert Retention.of(settings) == Retention(snapshots=7, max_age_s=0)
    assert Retention.of(Settings()) == Retention(snapshots=100, max_age_s=24 * 3600)
