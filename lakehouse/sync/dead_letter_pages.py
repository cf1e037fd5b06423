"""The dead letters of one integration, a page at a time (what the console lists).

The same rows ``sync status`` counts: this generation's (recorded at or after
``generation_started``), each id once, newest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.outages import reported_outages
from lakehouse.sync.deadletters import TABLE

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.client import Lakehouse

PAGE_SIZE = 50


@dataclass(frozen=True)
class DeadLetterRow:
    """One dead letter: ``row_key`` and ``payload`` are JSON text as recorded."""

    recorded_at: dt.datetime
    source_table: str
    row_key: str
    reason: str
    position: str
    payload: str


@dataclass(frozen=True)
class DeadLetterPage:
    """Rows ``offset`` .. ``offset + len(rows)`` of ``total``, newest first."""

    total: int
    offset: int
    rows: list[DeadLetterRow]


def dead_letter_page(lake: Lakehouse, integration: str, since: float | None,
                     offset: int = 0, limit: int = PAGE_SIZE,
                     decided: bool = False) -> DeadLetterPage:  # fmt: skip
    """The dead letters of ``integration`` recorded at or after ``since`` (epoch
    seconds; all when None), newest first, ``limit`` from ``offset``.

    Dead letters are source rows as they were (every column): a governed principal
    is refused (AccessDeniedError) unless ``decided`` says its caller has decided it
    may see them (``sync.status.sight_of``). Raises ServiceUnavailableError when the
    catalog or S3 is down.
    """
    with reported_outages(lake.settings, f"reading the dead letters of {integration}",
                          ("catalog", "s3")):  # fmt: skip
        letters = _letters(lake, integration, since, decided)
    total = letters.num_rows
    shown = letters.slice(max(offset, 0), max(limit, 0)).to_pylist()
    rows = [_row(r) for r in shown]
    return DeadLetterPage(total, max(offset, 0), rows)


def _row(r: dict[str, Any]) -> DeadLetterRow:
    return DeadLetterRow(r["recorded_at"], r["source_table"], r["row_key"] or "", r["reason"],
                         r["position"] or "", r["payload"] or "")  # fmt: skip


def _letters(lake: Lakehouse, integration: str, since: float | None, decided: bool) -> pa.Table:
    from lakehouse.sync.deadletters import SCHEMA

    catalog = lake._lake_catalog if decided else lake.catalog  # .catalog: the admin's only
    if not catalog.table_exists(TABLE):
        return SCHEMA.empty_table()
    # Names are [a-z][a-z0-9_-]* (integrations.NAME_PATTERN): nothing to quote.
    condition = f"integration = '{integration}'"
    if since is not None:
        start = dt.datetime.fromtimestamp(since, dt.UTC).isoformat()
        condition += f" AND recorded_at >= '{start}'"
    table = lake._table(TABLE) if decided else lake.table(TABLE)
    letters = table.scan(row_filter=condition).to_arrow()
    letters = letters.sort_by([("recorded_at", "descending"), ("id", "ascending")])
    # A race may leave an id twice; `sync status` counts each id once, so the list does too.
    seen: set[str] = set()
    first = []
    for index, ident in enumerate(letters.column("id").to_pylist()):
        if ident not in seen:
            seen.add(ident)
            first.append(index)
    return letters if len(first) == letters.num_rows else letters.take(first)
