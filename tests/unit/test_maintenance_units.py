"""Pure logic of table maintenance: durations, sizes, the retention rule, refusals."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from lakehouse.errors import ConfigError, LakehouseError, QueryError
from lakehouse.lake import maintenance
from lakehouse.lake.maintenance_units import (
    human_bytes,
    human_duration,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 7 * 86400), ("36h", 36 * 3600), ("90m", 5400), ("30s", 30), ("2w", 14 * 86400),
     ("1.5h", 5400), (" 3D ", 3 * 86400), (12, 12), (timedelta(minutes=2), 120)],
)  # fmt: skip
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize(
    "text", ["7", "seven days", "7y", "-3d", "", "d7", "9999999999d", "9" * 400 + "w",
             float("inf"), float("nan")],
)  # fmt: skip
def test_bad_durations_name_the_value_and_hint(text: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(text, "--older-than")
    assert "--older-than" in str(caught.value) and caught.value.hint


@pytest.mark.parametrize(
    ("text", "size"),
    [("128MB", 128 * 2**20), ("1GB", 2**30), ("512kb", 512 * 1024), ("64MiB", 64 * 2**20),
     ("2048", 2048), (4096, 4096), ("1.5MB", int(1.5 * 2**20))],
)  # fmt: skip
def test_sizes(text: Any, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["12", "big", "128 XB", "0MB", "-1MB", "99999999999TB", "9" * 400 + "MB", 2**41]
)
def test_bad_sizes(text: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_size(text, "--target-file-size")
    assert caught.value.hint


def test_human_figures() -> None:
    assert human_bytes(1536) == "1.5 KB" and human_bytes(12) == "12 B"
    assert human_duration(93600) == "1d 2h" and human_duration(90) == "1m 30s"
    assert human_duration(0) == "0s"


def _table(ages_s: list[float], refs: tuple[int, ...] = ()) -> Any:
    now_ms = time.time() * 1000
    snapshots = [SimpleNamespace(snapshot_id=i, timestamp_ms=now_ms - age * 1000)
                 for i, age in enumerate(ages_s)]  # fmt: skip
    metadata = SimpleNamespace(
        snapshots=snapshots, refs={f"r{i}": SimpleNamespace(snapshot_id=i) for i in refs}
    )
    return SimpleNamespace(metadata=metadata)


def test_expiry_needs_both_old_age_and_beyond_the_newest() -> None:
    """Spark's older_than + retain_last: the sync's Retention would expire on either."""
    table = _table([10, 20, 3600, 7200, 9000], refs=(0,))
    keep_two = maintenance.KeepAtLeast(snapshots=2, max_age_s=1800)
    assert [s.snapshot_id for s in keep_two.expired(table)] == [2, 3, 4]
    keep_four = maintenance.KeepAtLeast(snapshots=4, max_age_s=1800)
    assert [s.snapshot_id for s in keep_four.expired(table)] == [4]
    young = maintenance.KeepAtLeast(snapshots=1, max_age_s=86400)
    assert young.expired(table) == []


def test_a_branch_head_is_never_expired() -> None:
    table = _table([1, 5000, 6000], refs=(0, 2))
    assert [s.snapshot_id for s in maintenance.KeepAtLeast(1, 60).expired(table)] == [1]


def test_where_must_be_one_predicate() -> None:
    assert maintenance._predicate("region = 'eu'") == "region = 'eu'"
    assert maintenance._predicate("  ") is None
    for bad in ("region = 'eu'; DROP TABLE x", "SELECT 1", "region = "):
        with pytest.raises(LakehouseError) as caught:
            maintenance._predicate(bad)
        assert caught.value.hint


def test_conflicts_are_told_apart() -> None:
    from pyiceberg.exceptions import CommitFailedException

    assert maintenance.is_conflict(CommitFailedException("branch main has changed"))
    refused = QueryError("trino", "ALTER ...", "ICEBERG_COMMIT_ERROR: Failed to commit")
    assert maintenance.is_conflict(refused)
    assert not maintenance.is_conflict(QueryError("trino", "ALTER ...", "SYNTAX_ERROR: x"))
    assert not maintenance.is_conflict(ValueError("Cannot commit"))


def test_conflicts_are_retried_then_skipped_and_reported() -> None:
    from pyiceberg.exceptions import CommitFailedException

    calls: list[int] = []

    def always_refused() -> None:
        calls.append(1)
        raise CommitFailedException("Requirement failed: branch main has changed")

    report = maintenance.MaintenanceReport(table="t.t", action="optimize")
    pause, maintenance.RETRY_PAUSE_S = maintenance.RETRY_PAUSE_S, 0.0
    try:
        maintenance._attempts(report, always_refused)
        assert len(calls) == maintenance.ATTEMPTS
        assert report.conflicts_retried == maintenance.ATTEMPTS - 1 and report.skipped

        def other_error() -> None:
            raise QueryError("trino", "x", "SYNTAX_ERROR: bad")

        with pytest.raises(QueryError):
            maintenance._attempts(maintenance.MaintenanceReport("t.t", "optimize"), other_error)
    finally:
        maintenance.RETRY_PAUSE_S = pause


def test_orphan_threshold_under_the_floor_is_refused_before_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No catalog runs here: the refusal must come before the table is even loaded."""
    settings = SimpleNamespace(maintenance_orphan_floor_seconds=3600.0)
    lake: Any = SimpleNamespace(settings=settings)
    with pytest.raises(LakehouseError) as caught:
        maintenance.remove_orphan_files(lake, "ns.t", "30m")
    assert "floor" in str(caught.value) and "--older-than 1h" in (caught.value.hint or "")


def test_retain_last_under_one_is_refused() -> None:
    lake: Any = SimpleNamespace(settings=SimpleNamespace())
    with pytest.raises(LakehouseError) as caught:
        maintenance.expire_snapshots(lake, "ns.t", "1d", retain_last=0)
    assert caught.value.hint


def test_where_may_only_test_partition_columns() -> None:
    assert maintenance._predicate("region = 'eu'", ["region"]) == "region = 'eu'"
    with pytest.raises(LakehouseError) as caught:
        maintenance._predicate("region = 'eu' AND amount > 3", ["region"])
    assert "amount is not one" in str(caught.value) and "partitioned by region" in str(
        caught.value.hint
    )
    with pytest.raises(LakehouseError) as caught:
        maintenance._predicate("amount > 3", [])
    assert "not partitioned" in str(caught.value.hint)
