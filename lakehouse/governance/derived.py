"""What a governed principal may see of things derived from lake tables: a Zero-ETL
integration (the tables it reads or writes), a model version (the tables its run read
and wrote). Used by the console's Zero-ETL and Models pages.

Lake Formation's rule carried over: the thing itself (its name, state and counts)
shows to a principal that may see every one of its tables (DESCRIBE, or SELECT of a
column, as ``lake.tables()`` lists); what it holds of the tables' values (dead
letters, errors, metrics computed over every row) shows only to one that may SELECT
every one of them whole and as stored (no row filter, mask or hidden column).
Anything that cannot be decided (no table recorded, a table gone, the catalog down)
is the admin's only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakehouse.errors import AccessDeniedError, LakehouseError, PolicyError, TableNotFoundError
from lakehouse.governance.access import table_access
from lakehouse.governance.visibility import visible_tables

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.governance.policy import Policy


@dataclass(frozen=True)
class Sight:
    """``status``: the thing shows (name, state, counts); ``values``: what it holds of
    its tables' values shows too; ``why`` says what is hidden and why ("" if nothing)."""

    status: bool
    values: bool
    why: str = ""


FULL_SIGHT = Sight(True, True)


def sight_of(policy: Policy, principal: str, admin: str,
             tables: Mapping[str, Sequence[str] | None], holds: str) -> Sight:  # fmt: skip
    """What ``principal`` sees of a thing derived from ``tables`` (each ``ns.table`` ->
    its columns, None when it does not exist). ``holds`` says, for the sentence,
    what the values are (e.g. "dead letters hold source rows unfiltered"). Without
    tables nothing can be decided: Sight(False, False, "")."""
    if policy.is_admin(principal, admin):
        return FULL_SIGHT
    if not tables:
        return Sight(False, False, "")
    listed = visible_tables(policy, principal, list(tables), lambda t: tables[t] or [],
                            admin=admin)  # fmt: skip
    hidden = [t for t in tables if t not in listed]
    if hidden:  # not named: the names of tables it may not see are hidden too
        return Sight(False, False, f"it reads or writes {len(hidden)} lake table(s) "
                     f"{principal} may neither DESCRIBE nor SELECT")  # fmt: skip
    partial = [
        t for t, columns in tables.items() if not whole(policy, principal, t, columns, admin)
    ]
    if partial:
        return Sight(True, False, f"{principal} may not SELECT the whole of {', '.join(partial)} "
                     f"as stored (a row filter, a mask or hidden columns apply), and {holds}")  # fmt: skip
    return FULL_SIGHT


def whole(policy: Policy, principal: str, table: str, columns: Sequence[str] | None,
          admin: str) -> bool:  # fmt: skip
    """Whether ``principal`` may SELECT every column and row of ``table`` as stored."""
    if not columns:
        return False
    try:
        access = table_access(policy, principal, table, list(columns), admin=admin)
    except (AccessDeniedError, PolicyError):
        return False
    return access.unrestricted and len(access.columns) == len(columns)


def lake_sight(lake: Lakehouse, tables: Sequence[str], holds: str) -> Sight:
    """:func:`sight_of` for ``lake``'s principal under the stored policy, the tables'
    columns read from the catalog (everything when it is not governed). When the
    catalog cannot be read it sees nothing, and ``why`` says so."""
    if not lake.governed():
        return FULL_SIGHT
    from lakehouse.governance.store import load_policy

    try:
        columns = {t: table_columns(lake, t) for t in tables}
    except LakehouseError as exc:
        return Sight(False, False, f"the catalog could not be read ({exc.message})")
    settings = lake.settings
    return sight_of(load_policy(settings), lake.principal, settings.governance_admin, columns,
                    holds)  # fmt: skip


def table_columns(lake: Lakehouse, table: str) -> list[str] | None:
    """The columns of ``table`` (None when it does not exist), read as the stack.

    Raises ServiceUnavailableError when the catalog is down."""
    from lakehouse.outages import reported_outages

    with reported_outages(lake.settings, f"reading table {table}", ("catalog",)):
        try:
            return list(lake._table(table).schema().column_names)
        except TableNotFoundError:
            return None
