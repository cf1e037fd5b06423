"""Trino settings that decide how long things take: a dead node's timeout, the class archive."""

from __future__ import annotations

import pytest

from lakehouse.config import load_settings
from lakehouse.errors import LakehouseError
from lakehouse.services.trino import TrinoNode, TrinoWorker

TIMEOUT = "query.remote-task.max-error-duration"


def test_the_coordinator_fails_a_query_on_a_dead_node_after_the_node_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LAKEHOUSE_TRINO_NODE_TIMEOUT", raising=False)
    assert f"{TIMEOUT}=1m\n" in TrinoNode(load_settings()).config_properties()  # Trino's own
    shorter = load_settings(trino_node_timeout="20s", trino_workers=1)
    assert f"{TIMEOUT}=20s\n" in TrinoNode(shorter).config_properties()
    assert TIMEOUT not in TrinoWorker(shorter, 1).config_properties()  # a coordinator's setting
    with pytest.raises(LakehouseError, match="trino_node_timeout 'soon' is not a duration") as bad:
        TrinoNode(load_settings(trino_node_timeout="soon")).config_properties()
    assert bad.value.hint and "LAKEHOUSE_TRINO_NODE_TIMEOUT" in bad.value.hint


def test_every_node_reads_one_class_data_archive() -> None:
    """A worker that is only ever killed never writes an archive of its own."""
    settings = load_settings(trino_workers=2)
    archives = {
        next(flag for flag in node.spec().command if flag.startswith("-XX:SharedArchiveFile="))
        for node in (TrinoNode(settings), TrinoWorker(settings, 1), TrinoWorker(settings, 2))
    }
    assert len(archives) == 1 and archives.pop().endswith("/cds/trino.jsa")
