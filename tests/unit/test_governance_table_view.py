"""Row counts a governed principal sees (lakehouse.governance.table_view): pure logic."""

from __future__ import annotations

from datetime import UTC, datetime

from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
)
from lakehouse.governance.table_view import HIDDEN, counts_visible, without_counts
from lakehouse.lake.browse import SnapshotChange
from lakehouse.lake.catalog import SnapshotInfo

COLUMNS = {"id": 1, "email": 2, "region": 3}
T = "ns.customers"
POLICY = Policy(
    principals=(Principal(name="eu"), Principal(name="masked"), Principal(name="looker")),
    data_cells_filters=(DataCellsFilter(name="eu", table=T, row_filter="region = 'EU'"),),
    masks=(ColumnMask(table=T, column="email", principal="masked", kind="hash"),),
    grants=(
        Grant(principal="eu", permissions=(Permission.SELECT,), resource=Resource(data_cells_filter="eu")),
        Grant(principal="masked", permissions=(Permission.SELECT,), resource=Resource(table=T)),
        Grant(principal="looker", permissions=(Permission.DESCRIBE,), resource=Resource(table=T)),
    ),
)  # fmt: skip


def test_counts_show_only_to_a_principal_that_sees_every_row() -> None:
    def sees(who: str) -> bool:
        return counts_visible(POLICY, who, T, COLUMNS, admin="admin")

    assert sees("admin") and sees("masked")  # a mask leaves the number of rows alone
    assert not sees("eu")  # behind a row filter: 3 stored, 2 shown tells one is hidden
    assert not sees("looker")  # DESCRIBE alone reads no row
    assert not sees("nobody")


def test_without_counts_empties_every_count_and_says_why() -> None:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    info = SnapshotInfo(1, None, at, "append", 3, 3, 3, "snapshot summary")
    change = SnapshotChange(1, None, at, "append", True, 3, 0, 3, 1, 0, 0, 0, 0, 0, 900, 0)
    [hidden_info] = without_counts([info])
    assert (hidden_info.added_records, hidden_info.total_records, hidden_info.stored_records) == (
        None, None, None)  # fmt: skip
    assert hidden_info.count_method == HIDDEN and hidden_info.snapshot_id == 1
    [hidden_change] = without_counts([change])
    counts = [v for k, v in vars(hidden_change).items() if k not in
              ("snapshot_id", "parent_id", "committed_at", "operation", "was_current")]  # fmt: skip
    assert counts and all(v is None for v in counts)
    assert hidden_change.operation == "append" and hidden_change.was_current
