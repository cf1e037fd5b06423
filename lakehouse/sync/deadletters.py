"""The dead-letter table: rows a target could not take, with the reason.

``lakehouse_sync.dead_letters`` is an ordinary Iceberg table, so any engine can
query it. Each dead letter has a stable id; recording it again after a replay
replaces the earlier copy instead of adding a second one.

Every integration records into this one table, so two may commit at the same
moment: the loser re-plans on the new table state (``attempt.retry_conflicts``)
and the files of its lost attempt are removed (``attempt.committing``). Its
history is expired like a synced table's (``iceberg_expire.Retention``), or a
snapshot per recording pass would pile up for ever.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.table.upsert_util import create_match_filter

from lakehouse.lake.attempt import committing, retry_conflicts
from lakehouse.sync.iceberg_expire import ReachableFiles, Retention, expire_when_due
from lakehouse.sync.iceberg_target import quiet_empty_deletes
from lakehouse.sync.model import DeadLetter, to_json

log = logging.getLogger("lakehouse.sync")
TABLE = "lakehouse_sync.dead_letters"
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("integration", pa.string(), nullable=False),
        pa.field("source_table", pa.string(), nullable=False),
        pa.field("row_key", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("position", pa.string()),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
# Only the newest metadata files are kept (every recording pass commits one).
PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
}


class DeadLetterTable:
    def __init__(self, catalog: Catalog, retention: Retention | None = None) -> None:
        self.catalog = catalog
        self.retention = retention or Retention()
        self._reachable = ReachableFiles()

    def record(self, letters: Sequence[DeadLetter]) -> None:
        """Write ``letters`` in one commit, each replacing any earlier copy of its id.

        Retried on a race with another writer of the table; raises the last
        conflict (pyiceberg's CommitFailedException or ValidationException) when
        every try lost."""
        if not letters:
            return
        unique = {letter.id: letter for letter in letters}
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "id": ident, "integration": d.integration, "source_table": d.table,
                "row_key": to_json(d.key), "payload": to_json(d.payload), "reason": d.reason,
                "position": d.position, "recorded_at": now,
            }
            for ident, d in unique.items()
        ]  # fmt: skip
        data = pa.Table.from_pylist(rows, schema=SCHEMA)
        replaced = create_match_filter(data.select(["id"]), ["id"])
        self._table()  # created once, outside the retries

        def write() -> Table:
            table = self.catalog.load_table(TABLE)  # each try plans on the newest state
            with quiet_empty_deletes(), committing(table) as tx:
                tx.overwrite(data, overwrite_filter=replaced)
            return table

        table = retry_conflicts(write)
        try:
            expire_when_due(table, self.retention, self._reachable)
        except Exception as exc:  # the letters are committed; expiry is retried next time
            log.warning("expiring snapshots of %s failed, will retry: %s", TABLE, exc)

    def count(self, integration: str, since: dt.datetime) -> int:
        """Distinct dead letters of ``integration`` recorded at or after ``since``
        (timezone-aware). A replay records a letter again under its id, so each is
        counted once, however often it was recorded."""
        if not self.catalog.table_exists(TABLE):
            return 0
        # Names are [a-z][a-z0-9_-]* (integrations.NAME_PATTERN): nothing to quote.
        recent = f"integration = '{integration}' AND recorded_at >= '{since.isoformat()}'"
        scan = self.catalog.load_table(TABLE).scan(row_filter=recent, selected_fields=("id",))
        return int(pc.count_distinct(scan.to_arrow().column("id")).as_py())

    def _table(self) -> Table:
        self.catalog.create_namespace_if_not_exists(TABLE.split(".")[0])
        table = self.catalog.create_table_if_not_exists(TABLE, schema=SCHEMA, properties=PROPERTIES)
        if any(table.properties.get(k) != v for k, v in PROPERTIES.items()):
            # Made before these properties: each commit's metadata file stayed for ever.
            retry_conflicts(self._set_properties)
        return table

    def _set_properties(self) -> None:
        with self.catalog.load_table(TABLE).transaction() as tx:
            tx.set_properties(PROPERTIES)
