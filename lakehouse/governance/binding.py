"""What the policy says about columns, bound to Iceberg field ids.

The policy names columns (it stays readable and reviewable by name), but a name is
not a column: ``ALTER TABLE ... RENAME COLUMN`` moves a name to another field, and
a column dropped and added again under its old name is a new field with new data.
So the stored policy also records, in :attr:`Policy.column_ids`, the field id each
named column had when the entry naming it was made (resolved from the catalog), and
every enforcer compares it with the table's field ids at decision time
(:func:`lakehouse.governance.access.stale_entries`): where they disagree the
principal's access to that table is refused, never silently widened.

A binding, once made, is never moved silently: it is dropped when no entry names
the column any more (revoke, unset, untag, filter drop), and a new entry naming a
column with no binding binds it to the column's current field. :func:`rebound` is
the admin's explicit "this name means the column it names now".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

import sqlglot
from sqlglot import exp

from lakehouse.governance.policy import Policy

if TYPE_CHECKING:
    from lakehouse.config import Settings

#: ``table -> {column: field id}`` of the catalog, or None when the table is unknown.
IdsOf = Callable[[str], Mapping[str, int] | None]


class Named(NamedTuple):
    """One column a policy entry names, and the entry in words."""

    table: str
    column: str
    entry: str


def row_filter_columns(expression: str | None) -> list[str]:
    """The columns a stored row filter (DuckDB SQL) names; [] for none or bad SQL
    (bad SQL is refused when the filter is used)."""
    if expression is None:
        return []
    try:
        tree = sqlglot.parse_one(expression, read="duckdb")
    except sqlglot.errors.ParseError:
        return []
    return list(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


def named_columns(policy: Policy) -> Iterator[Named]:
    """Every (table, column) an entry of ``policy`` names, with the entry: column
    tags, masks, column-list grants and exclusions, data cells filters' columns and
    row filters."""
    for assignment in policy.tags:
        owner, _, column = assignment.resource.rpartition(".")
        if owner.count(".") >= 1:  # ns.table.column (a table is ns.table)
            yield Named(owner, column, f"tags {assignment.tags} on {assignment.resource}")
    for mask in policy.masks:
        yield Named(mask.table, mask.column, f"the {mask.kind} mask of {mask.principal}")
    for grant in policy.grants:
        resource = grant.resource
        if resource.table is not None:
            for column in (resource.columns or ()) + (resource.excluded_columns or ()):
                yield Named(resource.table, column,
                            f"the grant to {grant.principal} on {resource.describe()}")  # fmt: skip
    for cells in policy.data_cells_filters:
        for column in (cells.columns or ()) + (cells.excluded_columns or ()):
            yield Named(cells.table, column, f"data cells filter {cells.name}")
        for column in row_filter_columns(cells.row_filter):
            yield Named(cells.table, column, f"the row filter of {cells.name}")


def bound(policy: Policy, ids_of: IdsOf | None) -> Policy:
    """``policy`` with a binding for every column its entries name (existing bindings
    kept; a new one is the column's current field id from ``ids_of``) and none for a
    column no entry names. Without ``ids_of`` (or when it cannot tell) a column stays
    unbound: it is checked by name until the next change that can bind it."""
    wanted: dict[str, set[str]] = {}
    for named in named_columns(policy):
        wanted.setdefault(named.table, set()).add(named.column)
    result: dict[str, dict[str, int]] = {}
    for table, columns in sorted(wanted.items()):
        old = policy.column_ids.get(table, {})
        current = _ids(ids_of, table) if any(c not in old for c in columns) else {}
        kept = {c: old[c] if c in old else current.get(c) for c in sorted(columns)}
        if any(v is not None for v in kept.values()):
            result[table] = {c: v for c, v in kept.items() if v is not None}
    if result == policy.column_ids:
        return policy
    return policy.model_copy(update={"column_ids": result})


def renamed_to(policy: Policy, table: str, ids: Mapping[str, int]) -> dict[str, str]:
    """``{column the policy names: the name its field has now}`` for each bound field
    of ``table`` still in it under another name (a rename, not a drop)."""
    names = {field_id: name for name, field_id in ids.items()}
    return {c: names[i] for c, i in policy.column_ids.get(table, {}).items()
            if i in names and names[i] != c}  # fmt: skip


def rebound(policy: Policy, table: str, ids: Mapping[str, int]) -> tuple[Policy, list[str]]:
    """``policy`` with every binding of ``table`` moved to the column that now has its
    name (``ids``: the table's ``{column: field id}``), and the columns moved. An entry
    whose column is gone stays as it is (refused until it is fixed); so does one whose
    field was renamed (:func:`renamed_to`): moving it would unprotect that field."""
    old = policy.column_ids.get(table, {})
    renamed = renamed_to(policy, table, ids)
    moved = sorted(c for c, i in old.items() if c in ids and ids[c] != i and c not in renamed)
    if not moved:
        return policy, []
    new = {c: ids[c] if c in moved else i for c, i in old.items()}
    return policy.model_copy(update={"column_ids": {**policy.column_ids, table: new}}), moved


def _ids(ids_of: IdsOf | None, table: str) -> Mapping[str, int]:
    if ids_of is None:
        return {}
    try:
        return ids_of(table) or {}
    except Exception:  # the catalog cannot tell now: bound at a later change
        return {}


def drift(policy: Policy, table: str, ids: Mapping[str, int] | None) -> dict[str, str]:
    """``{column: what changed}`` for each bound column of ``table`` whose field id
    is not the one bound (``ids``: the table's ``{column: field id}`` now; None: not
    known, nothing to compare). A column gone altogether is the name check's."""
    if ids is None:
        return {}
    found = {}
    for column, field_id in policy.column_ids.get(table, {}).items():
        now = ids.get(column)
        if now is not None and now != field_id:
            found[column] = (
                f"was field {field_id} when the policy named it and is field {now} now "
                f"(dropped and added again, or another column renamed to {column})"
            )
    return found


def stale_report(settings: Settings, policy: Policy) -> list[str]:
    """One line per policy entry whose column is not the one it was made for (gone,
    renamed, or another field now), over the tables the entries name (one catalog
    request each); a table the catalog cannot load is reported as such."""
    from lakehouse.governance.access import stale_entries
    from lakehouse.lake import catalog as cat

    tables = sorted({named.table for named in named_columns(policy)})
    if not tables:
        return []
    lines = []
    catalog = cat.open_catalog(settings)
    for table in tables:
        try:
            fields = cat.load_table(catalog, table).schema().fields
        except Exception as exc:  # dropped since, or unreadable: say so, go on
            lines.append(f"{table}: cannot be checked ({type(exc).__name__})")
            continue
        ids = {f.name: f.field_id for f in fields}
        lines += [f"{table}: {e.entry} names column {e.column}, which {e.change}"
                  for e in stale_entries(policy, table, list(ids), ids)]  # fmt: skip
    return lines
