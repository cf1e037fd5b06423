"""The Athena store (lakehouse.aws.athena_store): a restart does not lie."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from lakehouse.aws.athena_store import RESTARTED, AthenaStore
from lakehouse.config import Settings


def _add(store: AthenaStore, execution_id: str, state: str) -> None:
    store.add_execution(id=execution_id, principal="admin", token=None, request="{}",
                        query="SELECT 1", workgroup="primary", state=state,
                        submitted=time.time())  # fmt: skip


def test_executions_running_at_a_restart_become_failed_and_say_why(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    store = AthenaStore.open(settings)
    _add(store, "queued", "QUEUED")
    _add(store, "running", "RUNNING")
    _add(store, "done", "SUCCEEDED")
    reopened = AthenaStore.open(settings)
    for execution_id in ("queued", "running"):
        found = reopened.execution(execution_id)
        assert found is not None
        assert (found.state, found.reason) == ("FAILED", RESTARTED)
        assert found.completed is not None
    done = reopened.execution("done")
    assert done is not None and (done.state, done.reason) == ("SUCCEEDED", None)


def test_a_state_change_happens_only_from_the_expected_states(tmp_path: Path) -> None:
    store = AthenaStore.open(Settings(home=tmp_path))
    _add(store, "q", "QUEUED")
    assert store.update("q", ("QUEUED", "RUNNING"), state="CANCELLED")
    assert not store.update("q", ("RUNNING",), state="SUCCEEDED")  # a late finish loses
    found = store.execution("q")
    assert found is not None and found.state == "CANCELLED"
    assert store.execution_ids("primary") == ["q"]


def test_a_query_while_trino_is_down_fails_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real connection to a port nothing listens on (Trino down): FAILED, retryable,
    a reason saying what to do rather than urllib3's traceback text."""
    from lakehouse.aws.athena_runner import Runner

    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = Settings(home=tmp_path, trino_port=closed_port)
    store = AthenaStore.open(settings)
    _add(store, "down", "QUEUED")
    Runner(settings, store)._run("down")
    found = store.execution("down")
    assert found is not None and found.state == "FAILED"
    assert found.reason is not None
    assert f"Trino at {settings.trino_uri} did not answer" in found.reason
    assert "Hint: start it with `lakehouse up --services trino`" in found.reason
    assert json.loads(found.error or "{}")["Retryable"] is True
