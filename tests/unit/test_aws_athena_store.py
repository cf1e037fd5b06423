"""The Athena store (lakehouse.aws.athena_store): a restart does not lie."""

from __future__ import annotations

import time
from pathlib import Path

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
