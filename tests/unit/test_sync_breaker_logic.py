"""Pure logic behind the Zero-ETL breaker's findings: document ids that never collide
and fit OpenSearch, and a status kept fresh while a long pass runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import MAX_DOCUMENT_ID_BYTES, document_id
from lakehouse.sync.runner import IntegrationRunner
from lakehouse.sync.status import STALE_SECONDS, StatusStore, StatusWriter, SyncStatus

# Keys of one table: each must get its own id (a shared id was one document for two rows).
DISTINCT_KEYS = [
    ("x|y", "z"), ("x", "y|z"), ("a\\", "|b"), ("a\\|", "b"), ("a", "b"), ("", ""), ("", "|"),
    ("|", ""), ("\\#", "b"), ("\\", "#b"),
]  # fmt: skip


def test_keys_of_several_columns_never_share_a_document_id() -> None:
    ids = [document_id(key) for key in DISTINCT_KEYS]
    assert len(set(ids)) == len(ids), dict(zip(ids, DISTINCT_KEYS, strict=True))


def test_plain_keys_keep_their_ids() -> None:
    """Ids of keys with no | or \\ are unchanged, so existing indices stay valid."""
    assert document_id((1, 2)) == "1|2"
    assert document_id({"id": 42}) == "42"
    assert document_id(("a b", "c/d")) == "a b|c/d"
    assert document_id(("a|b",)) == "a|b"  # one column: nothing to tell apart


@pytest.mark.parametrize(
    "key", [("",), ("x" * 600,), ("é" * 300,), ("a" * 300, "b" * 300), ("\\#abc",)]
)
def test_ids_opensearch_refuses_are_hashed(key: tuple[str, ...]) -> None:
    """OpenSearch refuses an empty _id, and one over 512 bytes fails the whole bulk
    request (the integration stopped); a one-column key starting with \\# could be
    taken for a hashed id."""
    ident = document_id(key)
    assert ident.startswith("\\#") and len(ident) == 66
    assert 0 < len(ident.encode()) <= MAX_DOCUMENT_ID_BYTES
    assert document_id(key) == ident  # the same key, the same id (replays)
    assert document_id((key[0] + "x", *key[1:])) != ident  # another key, another id


def test_a_long_pass_keeps_its_status_fresh(tmp_path: Path) -> None:
    """A status written once, then nothing for longer than STALE_SECONDS (a long
    snapshot chunk), read as 'not running'. Kept fresh, the last status written is
    rewritten as it was written (not as the runner has changed it since)."""
    store = StatusStore.__new__(StatusStore)
    store.root = tmp_path
    writer = StatusWriter(store)
    status = SyncStatus(name="n", state="snapshotting", snapshot_rows=7)
    with writer.kept_fresh(heartbeat=0.05):
        writer.write(status)
        written = store.read("n").updated_at
        status.state = "changed by the runner, not written yet"
        deadline = time.monotonic() + 5
        while store.read("n").updated_at == written and time.monotonic() < deadline:
            time.sleep(0.01)
    shown = store.read("n")
    assert shown.updated_at > written, "never rewritten"
    assert (shown.state, shown.snapshot_rows) == ("snapshotting", 7)
    time.sleep(0.2)
    assert store.read("n").updated_at == pytest.approx(shown.updated_at, abs=0.1), (
        "still rewritten after the pass ended"
    )


def test_an_old_status_reads_as_not_running() -> None:
    assert SyncStatus(name="n", updated_at=time.time() - STALE_SECONDS - 1).stale


def test_a_snapshot_killed_midway_is_not_counted(tmp_path: Path) -> None:
    """Seen: kill -9 during a 300k-row snapshot, then the next worker's status said
    549,980 snapshot rows (the killed one's 249,990 read so far, counted again)."""
    settings = load_settings(home=tmp_path)
    integration = Integration(name="n", source="postgres", target="iceberg", tables=("t",))
    integration = integration.model_copy(update={"generation": "g1"})
    StatusStore(settings).write(SyncStatus(
        name="n", generation="g1", state="snapshotting", changes_applied=1000,
        snapshot_rows=1000 + 250, snapshot_rows_read=250,
    ))  # fmt: skip
    runner = IntegrationRunner(settings, integration)
    assert (runner.status.snapshot_rows, runner.status.changes_applied) == (1000, 1000)
