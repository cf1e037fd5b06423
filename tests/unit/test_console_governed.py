"""What a governed principal sees of the console's Zero-ETL and Models pages: the
decisions over a policy, no server (governance.derived.sight_of)."""

from __future__ import annotations

import pytest

from lakehouse.governance.derived import FULL_SIGHT, Sight, sight_of
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
)

ORDERS, ITEMS = "shop.orders", "shop.items"
HOLDS = "dead letters hold source rows"
TABLES: dict[str, list[str] | None] = {ORDERS: ["id", "email", "region"], ITEMS: ["id", "sku"]}


def _select(who: str, table: str, **resource: object) -> Grant:
    return Grant(principal=who, permissions=(Permission.SELECT,),
                 resource=Resource(table=table, **resource))  # type: ignore[arg-type]  # fmt: skip


POLICY = Policy(
    principals=tuple(Principal(name=n) for n in ("whole", "eu", "masked", "cols", "items", "desc")),
    data_cells_filters=(
        DataCellsFilter(name="eu_orders", table=ORDERS, row_filter="region = 'EU'"),
    ),
    masks=(ColumnMask(table=ORDERS, column="email", principal="masked", kind="hash"),),
    grants=(
        _select("whole", ORDERS),
        _select("whole", ITEMS),
        Grant(
            principal="eu",
            permissions=(Permission.SELECT,),
            resource=Resource(data_cells_filter="eu_orders"),
        ),
        _select("eu", ITEMS),
        _select("masked", ORDERS),
        _select("masked", ITEMS),
        _select("cols", ORDERS, excluded_columns=("email",)),
        _select("cols", ITEMS),
        _select("items", ITEMS),
        Grant(
            principal="desc",
            permissions=(Permission.DESCRIBE,),
            resource=Resource(namespace="shop", all_tables=True),
        ),
    ),
)


def test_the_admin_and_a_principal_that_reads_every_table_whole_see_everything() -> None:
    assert sight_of(POLICY, "admin", "admin", TABLES, HOLDS) == FULL_SIGHT
    assert sight_of(POLICY, "whole", "admin", TABLES, HOLDS) == FULL_SIGHT


@pytest.mark.parametrize("who", ["eu", "masked", "cols", "desc"])
def test_a_filter_mask_hidden_column_or_describe_alone_shows_status_not_values(who: str) -> None:
    sight = sight_of(POLICY, who, "admin", TABLES, HOLDS)
    assert (sight.status, sight.values) == (True, False)
    partial = [ORDERS, ITEMS] if who == "desc" else [ORDERS]  # the tables it may not read whole
    assert f"may not SELECT the whole of {', '.join(partial)} as stored" in sight.why


def test_a_table_it_may_not_see_hides_the_integration_without_naming_the_table() -> None:
    sight = sight_of(POLICY, "items", "admin", TABLES, HOLDS)
    assert (sight.status, sight.values) == (False, False)
    assert ORDERS not in sight.why and "1 lake table(s)" in sight.why
    assert not sight_of(POLICY, "nobody", "admin", TABLES, HOLDS).status


def test_no_recorded_table_or_a_missing_one_is_the_admins_only() -> None:
    assert sight_of(POLICY, "whole", "admin", {}, HOLDS) == Sight(False, False)
    assert sight_of(POLICY, "admin", "admin", {}, HOLDS) == FULL_SIGHT
    missing = sight_of(POLICY, "whole", "admin", {ORDERS: None}, HOLDS)
    assert (missing.status, missing.values) == (False, False)


def test_a_runs_outputs_are_read_from_its_params() -> None:
    from lakehouse.ml.registry_view import outputs_of

    params = {"lakehouse.output.ml.segments.snapshot_id": "42", "alpha": "1",
              "lakehouse.output.ml.bad.snapshot_id": "x"}  # fmt: skip
    assert outputs_of(params) == {"ml.segments": 42}
