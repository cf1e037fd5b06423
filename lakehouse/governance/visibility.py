"""What of the catalog a governed principal may see: which tables ``lake.tables()``
lists, whose ``history`` it may read, and which columns ``describe`` shows.

Lake Formation's rule, in lakehouse's words: a table is visible to a principal that
holds DESCRIBE on it or may SELECT at least one of its columns (through any grant:
the table, its namespace's all-tables grant, a data cells filter, an LF-tag). Its
columns are visible only as far as SELECT reaches them (Glue's GetTable returns a
principal only the columns of its column permissions): with DESCRIBE alone a
principal sees the table, its properties and snapshots, and no column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.access import check, table_access
from lakehouse.governance.policy import Permission, Policy

if TYPE_CHECKING:
    from lakehouse.config import Settings


def may_describe(policy: Policy, principal: str, table: str, *, admin: str) -> bool:
    """Whether ``principal`` holds DESCRIBE on ``table`` (directly, through its
    namespace's all-tables grant or an LF-tag)."""
    try:
        check(policy, principal, Permission.DESCRIBE, admin=admin, table=table)
    except AccessDeniedError:
        return False
    return True


#: A table's column names in order; a ``{name: Iceberg field id}`` mapping also gives
#: their ids (then a policy entry whose column is another field now is caught).
Columns = Sequence[str] | Mapping[str, int]


def selectable_columns(policy: Policy, principal: str, table: str, columns: Columns,
                       *, admin: str) -> list[str]:  # fmt: skip
    """The columns of ``table`` (in order) ``principal`` may SELECT, masked ones
    included; empty when it may SELECT none (or the policy cannot be applied)."""
    ids = columns if isinstance(columns, Mapping) else None
    try:
        access = table_access(policy, principal, table, list(columns), admin=admin, ids=ids)
    except (AccessDeniedError, PolicyError):
        return []
    return [c.name for c in access.columns]


def _might_select(policy: Policy, principal: str, table: str) -> bool:
    """A cheap first test: whether any SELECT grant of ``principal`` could reach
    ``table`` (then its columns are needed to tell)."""
    who = set(policy.identities(principal))
    namespace = table.rsplit(".", 1)[0]
    for grant in policy.grants:
        if grant.principal not in who:
            continue
        if Permission.SELECT not in grant.permissions and Permission.ALL not in grant.permissions:
            continue
        resource = grant.resource
        if resource.tags is not None or resource.table == table:
            return True
        if resource.all_tables and resource.namespace == namespace:
            return True
        if resource.data_cells_filter is not None:
            cells = policy.filter_named(resource.data_cells_filter)
            if cells is not None and cells.table == table:
                return True
    return False


def visible_tables(policy: Policy, principal: str, names: Sequence[str],
                   columns_of: Callable[[str], Columns], *, admin: str) -> list[str]:  # fmt: skip
    """``names`` (``ns.table``) the principal may see, in order: every one for an
    admin. ``columns_of(name)`` gives a table's columns; it is called only for tables
    a SELECT grant might reach and DESCRIBE does not already show."""
    if policy.is_admin(principal, admin):
        return list(names)
    shown = []
    for name in names:
        if may_describe(policy, principal, name, admin=admin) or (
            _might_select(policy, principal, name)
            and selectable_columns(policy, principal, name, columns_of(name), admin=admin)
        ):
            shown.append(name)
    return shown


def require_visible(policy: Policy, principal: str, table: str, columns: Columns,
                    *, admin: str) -> list[str]:  # fmt: skip
    """The columns ``describe`` shows ``principal`` of ``table`` (see the module);
    AccessDeniedError when the table is not visible to it at all."""
    if policy.is_admin(principal, admin):
        return list(columns)
    selectable = selectable_columns(policy, principal, table, columns, admin=admin)
    if selectable or may_describe(policy, principal, table, admin=admin):
        return selectable
    raise AccessDeniedError(
        principal, "DESCRIBE", table,
        message=f"{principal} may neither DESCRIBE nor SELECT {table}.",
        hint=f"An admin can grant it: `lakehouse grant DESCRIBE ON TABLE {table} TO {principal}` "
        f"(`lakehouse grants --principal {principal}` lists what it holds).",
    )  # fmt: skip


def listed_tables(settings: Settings, principal: str, names: Sequence[str],
                  columns_of: Callable[[str], Columns]) -> list[str]:  # fmt: skip
    """:func:`visible_tables` under the stored policy and the settings' admin."""
    from lakehouse.governance.store import load_policy

    return visible_tables(load_policy(settings), principal, names, columns_of,
                          admin=settings.governance_admin)  # fmt: skip


def described_columns(settings: Settings, principal: str, table: str,
                      columns: Columns, action: str = "DESCRIBE") -> list[str]:  # fmt: skip
    """:func:`require_visible` under the stored policy; a refusal is audited (engine
    ``library``, ``action`` e.g. DESCRIBE or HISTORY) before it is raised."""
    from lakehouse.governance.audit import record
    from lakehouse.governance.store import load_policy

    try:
        return require_visible(load_policy(settings), principal, table, columns,
                               admin=settings.governance_admin)  # fmt: skip
    except AccessDeniedError as denied:
        record(settings, principal, "library", table, (), (), False, None, action=action,
               reason=denied.message)  # fmt: skip
        raise
