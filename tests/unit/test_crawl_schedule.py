"""Crawler declarations, their schedules, and the crawl record's batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.config import Settings
from lakehouse.crawl.record import CrawlRecord
from lakehouse.crawl.schedule import is_due, next_run, parse_schedule, run_due
from lakehouse.crawl.spec import declared_crawlers, default_name, make_spec
from lakehouse.errors import CrawlError

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_rate_and_cron_schedules() -> None:
    assert parse_schedule("rate(15 minutes)") == timedelta(minutes=15)
    assert parse_schedule("rate(1 hour)") == timedelta(hours=1)
    assert parse_schedule("*/15 * * * *") == "*/15 * * * *"
    assert parse_schedule("cron(0 12 * * ? *)") == "0 12 * * *"  # Glue's six fields
    assert next_run("rate(2 days)", NOON) == NOON + timedelta(days=2)
    assert next_run("*/15 * * * *", NOON) == NOON + timedelta(minutes=15)
    assert next_run("cron(0 6 * * ? *)", NOON) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    for bad in ("rate(0 minutes)", "rate(5 weeks)", "every day", "* * *", "cron(0 6 * * ? 2027)"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_due_after_the_interval_and_at_once_when_never_ran() -> None:
    assert is_due("rate(15 minutes)", None, NOON)
    assert not is_due("rate(15 minutes)", NOON - timedelta(minutes=14), NOON)
    assert is_due("rate(15 minutes)", NOON - timedelta(minutes=15), NOON)


def test_declared_crawlers_accept_glue_spelling_and_refuse_nonsense(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lakehouse.toml"
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    config.write_text(
        '[crawlers.raw]\npath = "s3://landing/raw"\nschema_change = "UPDATE_IN_DATABASE"\n'
        'deleted_files = "DELETE_FROM_DATABASE"\nschedule = "rate(1 hour)"\n'
    )
    spec = declared_crawlers()["raw"]
    assert (spec.schema_change, spec.deleted_files) == ("update", "delete")
    assert (spec.bucket, spec.prefix) == ("landing", "raw/")
    config.write_text('[crawlers.raw]\npath = "/tmp/x"\nschedule = "hourly"\nsurprise = 1\n')
    with pytest.raises(CrawlError) as refused:
        declared_crawlers()
    text = str(refused.value)
    assert "path" in text and "schedule" in text and "surprise" in text and "Hint:" in text


def test_ad_hoc_names_come_from_the_path() -> None:
    assert default_name("s3://landing/click-stream/") == "crawl_landing_click_stream"
    assert make_spec("x", name=default_name("s3://b"), path="s3://b").prefix == ""


def test_run_due_runs_nothing_without_declared_schedules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "absent.toml"))
    assert run_due(Settings(home=tmp_path / "home"), NOON) == []


def test_a_pending_batch_becomes_added_or_is_forgotten(tmp_path: Path) -> None:
    record = CrawlRecord(Settings(home=tmp_path))
    run = record.start_run("c", "s3://b/")
    landed = record.begin_batch("ns.t", run, [("s3://b/1", "e1", 5, "dt=1", 3)])
    lost = record.begin_batch("ns.t", run, [("s3://b/2", "e2", 5, "dt=2", 4)])
    assert record.known("ns.t") == {}  # pending is not added
    assert sorted(record.pending("ns.t")) == sorted([landed, lost])
    record.end_batch(landed, True)
    record.end_batch(lost, False)
    assert list(record.known("ns.t")) == ["s3://b/1"]
    assert record.pending("ns.t") == []
    record.finish_run(run, "SUCCEEDED", {"files_added": 1})
    (last,) = record.runs("c")
    assert last.state == "SUCCEEDED" and last.report == {"files_added": 1}


def test_a_run_left_running_by_a_kill_is_marked_interrupted(tmp_path: Path) -> None:
    record = CrawlRecord(Settings(home=tmp_path))
    record.start_run("c", "s3://b/")
    record.interrupt_stale("c")
    (run,) = record.runs("c")
    assert run.state == "INTERRUPTED" and "killed" in (run.error or "")


def test_expiry_never_deletes_files_outside_the_table_location() -> None:
    from lakehouse.sync.iceberg_expire import owned

    location = "s3://warehouse/ns/t"
    assert owned(location, "s3://warehouse/ns/t/data/a.parquet")
    assert not owned(location, "s3://warehouse/ns/t2/data/a.parquet")
    # A file registered in place by the crawler:
    assert not owned(location, "s3://landing/metrics/dt=2026-11-01/m.parquet")
