"""What ``describe`` and ``history`` show a governed principal of a table's metadata.

Columns follow ``visibility`` (those it may SELECT); partition and sort fields only
of those columns (a partition field's name and transform name its source column,
``email_bucket``: bucket[16](3)); and row counts as below.

Lake Formation shows no row count of data a principal sees only in part: a table's
counts (its current rows, the rows each snapshot added, deleted and stored) are
computed over every row, so behind a row filter they tell how many rows are hidden
(3 rows stored, 2 shown: one hidden row, and each commit says how many it added).
So the counts show only to a principal that may SELECT every row of the table (a
mask or a hidden column leaves the number of rows alone); to one behind a row
filter, or one holding DESCRIBE only, every count is None and the method says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.access import table_access

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lakehouse.config import Settings
    from lakehouse.governance.policy import Policy

#: The ``count_method`` / ``row_count_method`` shown in place of a hidden count.
HIDDEN = "hidden: the policy shows you only some of its rows"

#: Fields of a snapshot record that count rows (``SnapshotInfo``, ``SnapshotChange``).
#: File counts and sizes go too: they grow with the hidden rows (a delete file's count
#: tells of deletes among them).
COUNT_FIELDS = (
    "added_records", "deleted_records", "total_records", "stored_records",
    "added_position_deletes", "added_equality_deletes", "added_data_files",
    "removed_data_files", "added_delete_files", "removed_delete_files", "added_bytes",
    "removed_bytes",
)  # fmt: skip

Snapshot = TypeVar("Snapshot")


def counts_visible(policy: Policy, principal: str, table: str, columns: Mapping[str, int],
                   *, admin: str) -> bool:  # fmt: skip
    """Whether ``principal`` may see the row counts of ``table`` (``columns``: its
    ``{name: field id}``): it may SELECT it and no row filter applies."""
    try:
        access = table_access(policy, principal, table, list(columns), admin=admin, ids=columns)
    except (AccessDeniedError, PolicyError):
        return False
    return access.row_filter is None


def stored_counts_visible(settings: Settings, principal: str, table: str,
                          columns: Mapping[str, int]) -> bool:  # fmt: skip
    """:func:`counts_visible` under the stored policy and the settings' admin."""
    from lakehouse.governance.store import load_policy

    return counts_visible(load_policy(settings), principal, table, columns,
                          admin=settings.governance_admin)  # fmt: skip


def without_counts(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """``snapshots`` (frozen dataclasses) with every row count None and, where they
    have one, ``count_method`` set to :data:`HIDDEN`."""
    hidden = []
    for snapshot in snapshots:
        fields = {f.name for f in dataclasses.fields(snapshot)}  # type: ignore[arg-type]
        changes: dict[str, Any] = {name: None for name in COUNT_FIELDS if name in fields}
        if "count_method" in fields:
            changes["count_method"] = HIDDEN
        hidden.append(dataclasses.replace(snapshot, **changes))  # type: ignore[type-var]
    return hidden


def governed_description(settings: Settings, principal: str, table: Table,
                          described: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """``described`` (``lakehouse.lake.catalog.describe`` of ``table``) cut to what
    ``principal`` may see: its columns, partition and sort fields of those columns,
    and no row count behind a row filter. AccessDeniedError (audited) when it may
    see nothing of the table."""
    from lakehouse.governance.visibility import described_columns

    name = ".".join(table.name())
    ids = {c["name"]: c["id"] for c in described["schema"]}
    shown = set(described_columns(settings, principal, name, ids))
    shown_ids = {ids[c] for c in shown}
    cut = described | {
        "schema": [c for c in described["schema"] if c["name"] in shown],
        "partitioning": [str(f) for f in table.spec().fields if f.source_id in shown_ids],
        "sort_order": [str(f) for f in table.sort_order().fields if f.source_id in shown_ids],
    }
    if not stored_counts_visible(settings, principal, name, ids):
        cut |= {"row_count": None, "row_count_method": HIDDEN, "stored_records": None}
    return cut
