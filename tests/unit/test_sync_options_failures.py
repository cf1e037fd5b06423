"""When a follower stops retrying (lakehouse.sync.failures): the same unexpected error
three times in a row stops the integration, state ``failed``, with a message and a
Hint; an outage, a broken connection or lakehouse's own error is retried for ever.

The decision is pure logic, tested on real exceptions; the follower's loop is driven
by a stand-in pipeline (the real one is in tests/integration/test_sync_failures.py).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg
import pytest
from pyiceberg.exceptions import ServiceUnavailableError as ServiceUnavailable

from lakehouse.config import Settings, load_settings
from lakehouse.errors import ConfigError, ServiceUnavailableError, SyncError, SyncStoppedError
from lakehouse.services.sync import LOG_FILE_VARIABLE
from lakehouse.sync.failures import (
    MAX_IDENTICAL_FAILURES,
    RepeatedFailures,
    may_pass,
    stopped_error,
    unexpected_error,
)
from lakehouse.sync.generations import GenerationStore
from lakehouse.sync.integrations import Integration
from lakehouse.sync.postgres_pipeline import PassResult
from lakehouse.sync.runner import IntegrationRunner, follow
from lakehouse.sync.status import StatusStore, heartbeat_path


def _raised(make: Callable[[], BaseException]) -> BaseException:
    """``make()`` raised and caught, so it has a traceback (the line below)."""
    try:
        raise make()
    except BaseException as exc:
        return exc


def _raised_elsewhere(make: Callable[[], BaseException]) -> BaseException:
    try:
        raise make()
    except BaseException as exc:
        return exc


def _outage() -> ServiceUnavailableError:
    return ServiceUnavailableError("s3", "http://127.0.0.1:1", "the sync pass", "refused")


def test_the_same_unexpected_error_gives_up_at_the_third_in_a_row() -> None:
    repeats = RepeatedFailures()
    verdicts = [repeats.gives_up(_raised(partial(ValueError, f"row {i}"))) for i in range(3)]
    assert MAX_IDENTICAL_FAILURES == 3 and verdicts == [False, False, True]


def test_a_success_or_another_failure_between_starts_the_count_over() -> None:
    repeats = RepeatedFailures()
    bug = lambda: ValueError("x")  # noqa: E731
    for between in (repeats.clear, lambda: repeats.gives_up(_outage())):
        assert not repeats.gives_up(_raised(bug))
        assert not repeats.gives_up(_raised(bug))
        between()
        assert not repeats.gives_up(_raised(bug))
        assert not repeats.gives_up(_raised(bug))
        repeats.clear()
    # Raised from another line, or of another type: not the same failure.
    for other in (_raised_elsewhere(bug), _raised(lambda: KeyError("x"))):
        repeats.gives_up(_raised(bug))
        repeats.gives_up(_raised(bug))
        assert not repeats.gives_up(other)


@pytest.mark.parametrize(
    "make",
    [
        _outage,
        lambda: SyncError("OpenSearch is busy", hint="wait"),
        lambda: psycopg.OperationalError("the database system is starting up"),
        lambda: ConnectionResetError("reset by peer"),
        # A killed follower's backend may hold the slot until PostgreSQL notices.
        lambda: psycopg.errors.ObjectInUse('replication slot "x" is active for PID 7'),
        lambda: ServiceUnavailable("the catalog is starting"),
    ],
)
def test_outages_and_lakehouse_errors_are_retried_for_ever(
    make: Callable[[], BaseException],
) -> None:
    repeats = RepeatedFailures()
    assert may_pass(_raised(make))
    assert not any(repeats.gives_up(_raised(make)) for _ in range(20))


def test_the_stop_says_what_was_tried_the_error_where_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LOG_FILE_VARIABLE, "/home/x/logs/sync/sync.log")
    error = stopped_error("shop-to-lake", _raised(lambda: ValueError("bad\n value")), 3)
    assert isinstance(error, SyncStoppedError)
    assert error.message.startswith("The sync pass of shop-to-lake failed 3 times in a row")
    assert "ValueError: bad value (raised at tests/unit/test_sync_options_failures.py:" in (
        error.message
    )
    assert error.hint and "/home/x/logs/sync/sync.log" in error.hint
    assert "`lakehouse sync reset shop-to-lake`" in error.hint
    retrying = unexpected_error("shop-to-lake", _raised(lambda: ValueError("bad")), 2)
    assert "attempt 2 of 3 before it stops retrying" in retrying.message


class FailingPipeline:
    """A stand-in pipeline whose every pass raises what ``failure`` makes."""

    def __init__(self, failure: Callable[[], BaseException]) -> None:
        self.failure = failure
        self.passes = 0
        self.on_state: Callable[[str], None] | None = None
        self.pending_since: float | None = None

    def look_at_source(self) -> None:
        pass

    def run_once(self) -> PassResult:
        self.passes += 1
        raise self.failure()

    def close(self) -> None:
        pass


def _following(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               pipeline: FailingPipeline) -> tuple[IntegrationRunner, threading.Event,
                                                   threading.Thread]:  # fmt: skip
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    monkeypatch.setattr("lakehouse.sync.runner.outage_of", lambda *args: None)
    monkeypatch.setattr("lakehouse.sync.runner.BACKOFF_START", 0.01)
    monkeypatch.setattr("lakehouse.sync.runner.BACKOFF_MAX", 0.01)
    settings: Settings = load_settings(home=tmp_path)
    integration = Integration(name="lake-to-search", source="iceberg", target="opensearch",
                              tables=("shop.products",))  # fmt: skip
    generation = GenerationStore(settings).ensure([integration.name])[integration.name]
    runner = IntegrationRunner(settings, integration.model_copy(update={"generation": generation}))
    runner.pipeline = lambda: pipeline  # type: ignore[method-assign,assignment,return-value]
    runner._letters.due = False
    stop = threading.Event()
    thread = threading.Thread(target=runner.follow, args=(stop,), daemon=True)
    thread.start()
    return runner, stop, thread


def test_the_follower_stops_after_three_identical_unexpected_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = FailingPipeline(lambda: ValueError("invalid literal for int(): '128MB'"))
    runner, stop, thread = _following(tmp_path, monkeypatch, pipeline)
    thread.join(timeout=30)
    stopped_by_itself = not thread.is_alive()
    stop.set()
    assert stopped_by_itself and pipeline.passes == 3
    status = StatusStore(runner.settings).read("lake-to-search")
    assert status.state == "failed"
    assert "failed 3 times in a row" in status.last_error and "'128MB'" in status.last_error
    assert " Hint: " in status.last_error and "sync reset lake-to-search" in status.last_error


def test_the_follower_retries_a_broken_connection_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = FailingPipeline(lambda: ConnectionResetError("reset by peer"))
    runner, stop, thread = _following(tmp_path, monkeypatch, pipeline)
    try:
        for _ in range(500):
            if pipeline.passes > 3 * MAX_IDENTICAL_FAILURES:
                break
            thread.join(timeout=0.02)
        assert thread.is_alive() and pipeline.passes > 3 * MAX_IDENTICAL_FAILURES
        assert StatusStore(runner.settings).read("lake-to-search").state == "retrying"
    finally:
        stop.set()
        thread.join(timeout=10)


BROKEN = '[sync.it]\nsource = "postgres"\ntarget = "iceberg"\ntables = ["t"]\nindex_prefix = "x-"\n'


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Settings:
    config = tmp_path / "lakehouse.toml"
    config.write_text(text)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    return load_settings(home=tmp_path / "home", sync_poll_seconds=0.05,
                         postgres_port=_closed_port())  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_declarations_broken_at_start_stop_the_follower_with_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _config(tmp_path, monkeypatch, BROKEN)
    with pytest.raises(ConfigError, match="index_prefix does not apply"):
        follow(settings, None, threading.Event())


def test_declarations_broken_later_leave_the_follower_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An edit of lakehouse.toml into an invalid one ended the whole sync service."""
    settings = _config(tmp_path, monkeypatch, "")
    stop, failed = threading.Event(), []

    def run() -> None:
        try:
            follow(settings, None, stop)
        except Exception as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    beat = heartbeat_path(settings)
    try:
        _wait(lambda: beat.is_file(), "the first heartbeat")
        (tmp_path / "lakehouse.toml").write_text(BROKEN)
        broken_at = time.time()
        _wait(lambda: float(beat.read_text()) > broken_at + 0.2, "heartbeats after the edit")
        assert thread.is_alive() and not failed
        logged = [r for r in caplog.records if "cannot be read" in r.getMessage()]
        assert len(logged) == 1 and "index_prefix" in logged[0].getMessage()
    finally:
        stop.set()
        thread.join(timeout=10)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
