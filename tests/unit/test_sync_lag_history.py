"""Lag over time per integration (lakehouse.sync.lag_history), and the runner writing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.sync import lag_history
from lakehouse.sync.integrations import Integration
from lakehouse.sync.lag_history import QUIET_SECONDS, LagSample, append, lag_path, samples
from lakehouse.sync.postgres_pipeline import PassResult
from lakehouse.sync.runner import IntegrationRunner


def _sample(at: float, lag: float | None = 0.0, rows: int = 0, position: str = "0/1") -> LagSample:
    return LagSample(at=at, lag_seconds=lag, rows=rows, position=position)


def test_samples_come_back_oldest_first_and_since(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    path = lag_path(settings, "a")
    for at in (1.0, 2.0, 3.0):
        append(path, _sample(at, lag=at, rows=5))
    assert [s.at for s in samples(settings, "a")] == [1.0, 2.0, 3.0]
    assert [s.lag_seconds for s in samples(settings, "a", since=2.0)] == [2.0, 3.0]
    assert samples(settings, "other") == []


def test_quiet_repeats_are_written_at_most_every_quiet_seconds(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    assert append(path, _sample(100.0))
    assert not append(path, _sample(100.5))  # idle, same lag and position
    assert append(path, _sample(101.0, rows=3))  # something applied
    assert append(path, _sample(101.5, lag=2.5))  # the lag moved
    assert not append(path, _sample(102.0, lag=2.5))
    assert append(path, _sample(101.5 + QUIET_SECONDS, lag=2.5))  # quiet, but time passed
    assert append(path, _sample(120.0, lag=2.5, position="0/2"))


def test_the_file_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "bounded.jsonl"
    limit = 10
    for number in range(100):
        append(path, _sample(float(number), rows=1, position="0/" + "F" * 200), limit=limit)
    lines = path.read_text().splitlines()
    assert len(lines) <= 2 * limit + 1
    assert json.loads(lines[-1])["at"] == 99.0


def test_a_line_cut_short_is_skipped(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    path = lag_path(settings, "cut")
    append(path, _sample(1.0, rows=1))
    with path.open("a") as f:
        f.write('{"at": 2.0, "lag_sec')
    assert [s.at for s in samples(settings, "cut")] == [1.0]


class OnePass:
    """A stand-in pipeline: every pass applies 7 changes and is caught up at 0/A."""

    on_state = None
    pending_since = None

    def look_at_source(self) -> None:
        pass

    def run_once(self) -> PassResult:
        return PassResult(changes=7, position="0/A", caught_up=True, seconds=0.01)

    def close(self) -> None:
        pass


def test_the_runner_records_each_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    settings = load_settings(home=tmp_path)
    integration = Integration(name="lagged", source="postgres", target="iceberg",
                              tables=("orders",))  # fmt: skip
    runner = IntegrationRunner(settings, integration)
    runner._pipeline = OnePass()  # type: ignore[assignment]
    runner.run_pass()
    (sample,) = lag_history.samples(settings, "lagged")
    assert (sample.rows, sample.position, sample.lag_seconds) == (7, "0/A", 0.0)


def test_a_failed_write_never_stops_the_sync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(home=tmp_path)
    (tmp_path / "sync").mkdir()
    (tmp_path / "sync" / "lag").write_text("a file where the directory should be")
    from lakehouse.sync.status import SyncStatus

    lag_history.record_pass(settings, PassResult(changes=1), SyncStatus(name="x"))
    assert "x: recording its lag failed" in caplog.text
