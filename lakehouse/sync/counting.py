"""Counting dead letters once, however often replays record them.

A pass may record a dead letter again: after a failure or a kill -9 the
changes are replayed, and a snapshot re-reads rows its slot's changes then
replay. The dead-letter table keeps one row per id (the copy of the newest
recording), so the count of a generation is the number of this integration's
ids recorded since the generation started, read from the table itself.
"""

from __future__ import annotations

import datetime as dt
import logging

from lakehouse.config import Settings
from lakehouse.sync.deadletters import DeadLetterTable
from lakehouse.sync.status import SyncStatus

log = logging.getLogger("lakehouse.sync")


class DeadLetterCounter:
    """Keeps ``status.dead_letters`` equal to the generation's rows in the table."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._table: DeadLetterTable | None = None
        # Set when a count failed or another process may have recorded uncounted
        # letters (a pass killed before it reported): the next pass recounts.
        self.due = False

    def added(self, status: SyncStatus, recorded: int) -> int:
        """Letters a pass that recorded ``recorded`` (with repeats) added to the
        generation's count; updates ``status.dead_letters``. Reads the table only
        when the pass recorded some or a recount is due; should it fail, counts
        ``recorded`` and recounts next time."""
        if not (recorded or self.due):
            return 0
        since = dt.datetime.fromtimestamp(status.generation_started or 0.0, dt.UTC)
        try:
            if self._table is None:
                from lakehouse.lake.catalog import open_catalog

                self._table = DeadLetterTable(open_catalog(self.settings))
            total = self._table.count(status.name, since)
        except Exception as exc:  # the pass is committed: it is counted next time
            log.warning("%s: counting dead letters failed: %s", status.name, exc)
            self._table, self.due = None, True
            status.dead_letters += recorded
            return recorded
        self.due = False
        added, status.dead_letters = max(total - status.dead_letters, 0), total
        return added
