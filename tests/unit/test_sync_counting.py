"""Dead letters counted from the table: replays never raise the count (pure logic)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lakehouse.config import Settings
from lakehouse.sync.counting import DeadLetterCounter
from lakehouse.sync.status import SyncStatus


class Letters:
    """Stands in for the dead-letter table: distinct ids, or a failing read."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.failing = False
        self.asked: list[dt.datetime] = []

    def count(self, integration: str, since: dt.datetime) -> int:
        self.asked.append(since)
        if self.failing:
            raise OSError("catalog down")
        return len(self.ids)


def counter(tmp_path: Any, letters: Letters) -> DeadLetterCounter:
    made = DeadLetterCounter(Settings(home=tmp_path))
    made._table = letters  # type: ignore[assignment]
    return made


def test_a_replayed_letter_adds_nothing(tmp_path: Any) -> None:
    letters = Letters()
    count = counter(tmp_path, letters)
    status = SyncStatus(name="shop", generation_started=1000.0)
    letters.ids |= {"a", "b"}
    assert count.added(status, recorded=2) == 2
    assert count.added(status, recorded=2) == 0  # the same two, recorded again
    letters.ids.add("c")
    assert count.added(status, recorded=3) == 1
    assert status.dead_letters == 3
    assert letters.asked[0] == dt.datetime.fromtimestamp(1000.0, dt.UTC)


def test_a_pass_that_recorded_nothing_reads_nothing_unless_due(tmp_path: Any) -> None:
    letters = Letters()
    count = counter(tmp_path, letters)
    status = SyncStatus(name="shop", generation_started=1000.0)
    assert count.added(status, recorded=0) == 0 and not letters.asked
    letters.ids.add("left-by-a-killed-pass")
    count.due = True
    assert count.added(status, recorded=0) == 1
    assert not count.due and status.dead_letters == 1


def test_a_failed_count_counts_the_pass_and_recounts_next_time(tmp_path: Any) -> None:
    letters = Letters()
    count = counter(tmp_path, letters)
    status = SyncStatus(name="shop", generation_started=1000.0)
    letters.ids |= {"a", "b"}
    letters.failing = True
    assert count.added(status, recorded=2) == 2 and count.due
    letters.failing = False
    count._table = letters  # type: ignore[assignment]
    assert count.added(status, recorded=0) == 0  # the recount finds the same two
    assert status.dead_letters == 2
