"""Access decisions: what one principal may do with one table, from the policy.

Every enforcer asks here, so the engines cannot disagree:

- :func:`table_access` gives the columns a principal may SELECT from a table, each
  as a SQL expression (the column, a mask of it, or ``CASE WHEN … THEN col END``
  when only some granted rows show it), and the row filter (SQL, or ``None`` for every
  row). Expressions are DuckDB's dialect; enforcers translate them with sqlglot.
- :func:`check` answers a non-SELECT permission on a table or namespace.

Lake Formation's semantics: grants of a principal and of its roles add up. A data
cells filter gives the cells of its rows in its columns, so a column one filter shows
and another does not is NULL on the rows only the other filter admits (cell-level
security). LF-tag grants cover every table and column whose effective tags match,
now and later. Masks are lakehouse's own: per principal (or role) and column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.policy import Permission, Policy, Resource

TRUE = "TRUE"
STRING_TYPES = ("VARCHAR", "STRING", "TEXT", "CHAR", "BPCHAR")


@dataclass(frozen=True)
class ColumnAccess:
    """One visible column: its name, the SQL that yields what the principal sees, and
    the mask applied (``None`` when the value is shown as stored)."""

    name: str
    expression: str
    mask: str | None = None


@dataclass(frozen=True)
class TableAccess:
    """What ``principal`` may read of ``table``: ``columns`` in table order, and the
    ``row_filter`` (``None``: every row). ``applied`` names the grants, filters and
    masks used, for the audit log."""

    table: str
    principal: str
    columns: tuple[ColumnAccess, ...]
    row_filter: str | None
    applied: tuple[str, ...] = field(default=())

    @property
    def unrestricted(self) -> bool:
        """Every column as stored and every row: the query needs no rewrite."""
        return self.row_filter is None and all(
            c.expression == quote(c.name) and c.mask is None for c in self.columns
        )


def quote(name: str) -> str:
    """``name`` as a quoted identifier in DuckDB's dialect."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def effective_tags(policy: Policy, table: str, column: str | None = None) -> dict[str, str]:
    """Tags of ``table`` (or of its ``column``): the namespace's, overridden by the
    table's, overridden by the column's."""
    namespace = table.rsplit(".", 1)[0]
    levels = [namespace, table] + ([f"{table}.{column}"] if column else [])
    tags: dict[str, str] = {}
    for level in levels:
        for assignment in policy.tags:
            if assignment.resource == level:
                tags.update(assignment.tags)
    return tags


def _tags_match(expression: Mapping[str, Sequence[str]], tags: Mapping[str, str]) -> bool:
    return all(tags.get(key) in values for key, values in expression.items())


def _grants(policy: Policy, principal: str, permission: Permission) -> list[Resource]:
    who = set(policy.identities(principal))
    return [
        g.resource
        for g in policy.grants
        if g.principal in who and (permission in g.permissions or Permission.ALL in g.permissions)
    ]


def _picked(columns: Sequence[str], include: Sequence[str] | None,
            exclude: Sequence[str] | None) -> list[str]:  # fmt: skip
    if include is not None:
        return [c for c in columns if c in include]
    if exclude is not None:
        return [c for c in columns if c not in exclude]
    return list(columns)


def _select_sources(policy: Policy, principal: str, table: str,
                    columns: Sequence[str]) -> list[tuple[str, list[str], str]]:  # fmt: skip
    """(row condition, columns, description) of every SELECT grant reaching ``table``."""
    namespace = table.rsplit(".", 1)[0]
    found = []
    for resource in _grants(policy, principal, Permission.SELECT):
        if resource.table == table:
            picked = _picked(columns, resource.columns, resource.excluded_columns)
            found.append((TRUE, picked, f"grant on {resource.describe()}"))
        elif resource.namespace == namespace and resource.all_tables:
            found.append((TRUE, list(columns), f"grant on {resource.describe()}"))
        elif resource.data_cells_filter is not None:
            cells = policy.filter_named(resource.data_cells_filter)
            if cells is not None and cells.table == table:
                picked = _picked(columns, cells.columns, cells.excluded_columns)
                condition = validated(cells.row_filter, columns, cells.name) or TRUE
                found.append((condition, picked, f"data cells filter {cells.name}"))
        elif resource.tags is not None:
            picked = [c for c in columns
                      if _tags_match(resource.tags, effective_tags(policy, table, c))]  # fmt: skip
            if picked:
                found.append((TRUE, picked, f"grant on {resource.describe()}"))
    return [source for source in found if source[1]]


def table_access(policy: Policy, principal: str, table: str, columns: Sequence[str],
                 types: Mapping[str, str] | None = None, *, admin: str) -> TableAccess:  # fmt: skip
    """What ``principal`` may SELECT from ``table``, whose columns are ``columns`` (in
    order; ``types`` maps them to DuckDB type names, needed for typed NULL masks).

    Raises AccessDeniedError when no column is granted, PolicyError for a filter or
    mask that does not fit the table (an unknown column, a subquery, hash of a number).
    """
    if policy.is_admin(principal, admin):
        return TableAccess(table, principal, tuple(ColumnAccess(c, quote(c)) for c in columns),
                           None, ("admin",))  # fmt: skip
    sources = _select_sources(policy, principal, table, columns)
    if not sources:
        raise AccessDeniedError(principal, "SELECT", table)
    conditions = list(dict.fromkeys(condition for condition, _, _ in sources))
    row_filter = None if TRUE in conditions else " OR ".join(f"({c})" for c in conditions)
    visible = []
    for column in columns:
        shown_when = list(dict.fromkeys(c for c, picked, _ in sources if column in picked))
        if not shown_when:
            continue
        mask = _mask_for(policy, principal, table, column)
        value = _masked(mask, column, columns, (types or {}).get(column))
        if TRUE not in shown_when and set(shown_when) != set(conditions):
            value = f"CASE WHEN {' OR '.join(f'({c})' for c in shown_when)} THEN {value} END"
        visible.append(ColumnAccess(column, value, mask[0] if mask else None))
    applied = [description for _, _, description in sources]
    applied += [f"mask {c.mask} on {c.name}" for c in visible if c.mask]
    return TableAccess(table, principal, tuple(visible), row_filter, tuple(applied))


def _mask_for(policy: Policy, principal: str, table: str,
              column: str) -> tuple[str, str | None] | None:  # fmt: skip
    """(kind, expression) of the mask for this principal (its own before its roles')."""
    for who in policy.identities(principal):
        for mask in policy.masks:
            if (mask.table, mask.column, mask.principal) == (table, column, who):
                return mask.kind, mask.expression
    return None


def _masked(mask: tuple[str, str | None] | None, column: str, columns: Sequence[str],
            column_type: str | None) -> str:  # fmt: skip
    name = quote(column)
    if mask is None:
        return name
    kind, expression = mask
    if (
        kind in ("hash", "partial")
        and column_type
        and not column_type.upper().startswith(STRING_TYPES)
    ):
        raise PolicyError(
            f"A {kind} mask needs a text column; {column} is {column_type}.",
            hint="Use a null mask or an expression mask that keeps the column's type.",
        )
    if kind == "hash":
        return f"sha256({name})"
    if kind == "partial":
        return (f"CASE WHEN {name} IS NULL THEN NULL ELSE "
                f"repeat('*', greatest(length({name}) - 4, 0)) || right({name}, 4) END")  # fmt: skip
    if kind == "null":
        return f"CAST(NULL AS {column_type})" if column_type else "NULL"
    return validated(expression, columns, f"the mask of {column}") or name


def validated(expression: str | None, columns: Sequence[str], what: str) -> str | None:
    """``expression`` (DuckDB SQL) checked to be one scalar expression over ``columns``
    only, without subqueries; returned in DuckDB's canonical form. PolicyError if not."""
    if expression is None:
        return None
    try:
        parsed = sqlglot.parse_one(expression, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise PolicyError(f"The expression of {what} is not valid SQL: {exc}",
                          hint="Write it in DuckDB's SQL, e.g. region = 'EU'.") from None  # fmt: skip
    if isinstance(parsed, exp.Query) or parsed.find(exp.Subquery, exp.Select):
        raise PolicyError(f"The expression of {what} may not hold a query: {expression}",
                          hint="Filters and masks are expressions over the table's own columns.")  # fmt: skip
    unknown = sorted({c.name for c in parsed.find_all(exp.Column)} - set(columns))
    if unknown:
        raise PolicyError(f"The expression of {what} names unknown column(s): {', '.join(unknown)}.",
                          hint=f"The table's columns are: {', '.join(columns)}.")  # fmt: skip
    return parsed.sql("duckdb")


def check(policy: Policy, principal: str, permission: Permission, *, admin: str,
          table: str | None = None, namespace: str | None = None) -> None:  # fmt: skip
    """Raise AccessDeniedError unless ``principal`` holds ``permission`` on ``table``
    (then also through its namespace's all-tables grants and tag grants) or on
    ``namespace``."""
    if policy.is_admin(principal, admin):
        return
    if table is not None:
        namespace = table.rsplit(".", 1)[0]
        tags = effective_tags(policy, table)
        for resource in _grants(policy, principal, permission):
            whole_table = resource.columns is None and resource.excluded_columns is None
            if (
                (resource.table == table and whole_table)
                or (resource.namespace == namespace and resource.all_tables)
                or (resource.tags is not None and _tags_match(resource.tags, tags))
            ):
                return
        raise AccessDeniedError(principal, permission.value, table)
    if namespace is None:
        raise ValueError("check() needs a table or a namespace")
    for resource in _grants(policy, principal, permission):
        if resource.namespace == namespace and not resource.all_tables:
            return
        if resource.tags is not None and _tags_match(
            resource.tags, effective_tags(policy, namespace + ".")
        ):
            return
    raise AccessDeniedError(principal, permission.value, namespace)
