"""What a failing sync reports (state, lag, last error, log lines): pure runner logic.

The pipeline is a stand-in (the runner's bookkeeping is under test, not a server);
the services' ports are real sockets: two that listen, S3's closed.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakehouse.cli.sync import _status_cells
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.sync.integrations import Integration
from lakehouse.sync.postgres_pipeline import PassResult
from lakehouse.sync.runner import IntegrationRunner, TracebacksOnlyForErrors, error_line
from lakehouse.sync.status import StatusStore
from lakehouse.sync.writers import Writer

S3_DOWN = OSError("When reading information for key 'shop/orders/metadata/snap-1.avro': "
                  "AWS Error NETWORK_CONNECTION ... curlCode: 7")  # fmt: skip


class StandInPipeline:
    """Runs ``step`` as its pass; records the state the status file held during it."""

    def __init__(self, step: Callable[[StandInPipeline], PassResult]) -> None:
        self.step = step
        self.on_state: Callable[[str], None] | None = None
        self.pending_since: float | None = None
        self.states_seen: list[str] = []
        self.store: StatusStore | None = None

    @property
    def writer(self) -> Writer:
        raise NotImplementedError

    def run_once(self) -> PassResult:
        return self.step(self)

    def close(self) -> None:
        pass

    def look_at_source(self) -> None:
        pass


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """PostgreSQL and the catalog answer; S3 refuses connections."""
    postgres, catalog = _listening(), _listening()
    try:
        yield load_settings(home=tmp_path, postgres_port=postgres.getsockname()[1],
                            catalog_port=catalog.getsockname()[1], s3_port=_closed_port())  # fmt: skip
    finally:
        postgres.close()
        catalog.close()


class NoDeadLetters:
    """The runner's dead-letter counter reads the lake's table; these passes record
    none. (Its recount after taking the lock once waited 120 s on the listening but
    silent catalog socket, per test.)"""

    due = False

    def added(self, status: object, recorded: int) -> int:
        assert recorded == 0
        return 0


def _runner(settings: Settings, pipeline: StandInPipeline) -> IntegrationRunner:
    integration = Integration(name="shop-to-lake", source="postgres", target="iceberg",
                              tables=("orders",))  # fmt: skip
    runner = IntegrationRunner(settings, integration)
    runner._pipeline = pipeline
    runner._letters = NoDeadLetters()  # type: ignore[assignment]
    pipeline.on_state = runner._set_state
    pipeline.store = runner.store
    return runner


def _waiting_then_s3_fails(waited: float) -> Callable[[StandInPipeline], PassResult]:
    def step(pipeline: StandInPipeline) -> PassResult:
        pipeline.pending_since = time.time() - waited
        assert pipeline.on_state is not None and pipeline.store is not None
        pipeline.on_state("streaming")
        pipeline.states_seen.append(pipeline.store.read("shop-to-lake").state)
        raise S3_DOWN

    return step


def _fail_pass(runner: IntegrationRunner) -> BaseException:
    with pytest.raises(LakehouseError) as caught:
        runner.catch_up()
    return caught.value


def test_a_pass_failing_on_a_down_s3_names_it_with_a_hint_and_the_waiting_lag(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The up-front check is skipped: S3 goes down in the middle of the pass.
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    runner = _runner(settings, StandInPipeline(_waiting_then_s3_fails(30.0)))
    _fail_pass(runner)
    status = runner.store.read("shop-to-lake")
    assert status.state == "retrying"
    assert status.lag_seconds is not None and status.lag_seconds >= 30.0
    assert "The s3 service at http://127.0.0.1:" in status.last_error
    assert " Hint: " in status.last_error and "\n" not in status.last_error


def test_passes_that_keep_failing_never_report_streaming_and_the_lag_grows(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    pipeline = StandInPipeline(_waiting_then_s3_fails(10.0))
    runner = _runner(settings, pipeline)
    lags = []
    for _ in range(3):
        _fail_pass(runner)
        lags.append(runner.store.read("shop-to-lake").lag_seconds)
        pipeline.step = _waiting_then_s3_fails(0.0)  # later passes see the same change later
    assert pipeline.states_seen[1:] == ["retrying", "retrying"]
    assert lags[0] is not None and all(lag is not None and lag >= lags[0] for lag in lags)


def test_a_pass_refused_before_it_could_look_reports_an_unknown_lag_not_zero(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def caught_up(pipeline: StandInPipeline) -> PassResult:
        return PassResult(caught_up=True)

    runner = _runner(settings, StandInPipeline(caught_up))
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    runner.catch_up()  # while S3 was up
    monkeypatch.undo()
    assert runner.store.read("shop-to-lake").lag_seconds == 0.0
    error = _fail_pass(runner)  # S3 refuses connections: the pass does not start
    status = runner.store.read("shop-to-lake")
    assert "s3" in str(error) and status.state == "retrying"
    assert status.lag_seconds is None


def test_a_clean_pass_after_an_outage_reports_no_error_and_no_lag(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lakehouse.sync.runner.check_answering", lambda *args: None)
    pipeline = StandInPipeline(_waiting_then_s3_fails(5.0))
    runner = _runner(settings, pipeline)
    _fail_pass(runner)
    pipeline.step = lambda _: PassResult(caught_up=True, changes=400)
    runner.catch_up()
    status = runner.store.read("shop-to-lake")
    assert (status.state, status.lag_seconds, status.last_error) == ("idle", 0.0, "")


def test_error_line_is_one_line_with_the_hint() -> None:
    error = LakehouseError("OpenSearch did not answer:\n  read timed out", hint="Is it up?")
    assert error_line(error) == "OpenSearch did not answer: read timed out Hint: Is it up?"
    assert error_line(ValueError("x\ny")) == "ValueError: x y"


def _log_text(level: int) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(TracebacksOnlyForErrors())
    logger = logging.getLogger("test_sync_status")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError:
            logger.log(level, "opensearch: attempt 2 failed", exc_info=True)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_a_transient_retry_is_one_log_line_and_a_stop_keeps_its_traceback() -> None:
    assert _log_text(logging.WARNING) == "opensearch: attempt 2 failed\n"
    assert "Traceback" in _log_text(logging.ERROR)


def test_sync_status_shows_an_unknown_lag_of_a_retrying_integration_as_unknown() -> None:
    row = {"name": "shop-to-lake", "route": "postgres -> iceberg", "shown_state": "retrying",
           "position": "0/26A1730", "lag_seconds": None, "rows_per_second": 0.0,
           "changes_applied": 1234, "dead_letters": 0, "last_error": "s3 down"}  # fmt: skip
    assert _status_cells(row)[4] == "unknown"
