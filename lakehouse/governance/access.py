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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlglot
from sqlglot import exp

from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.binding import drift, named_columns
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


def _select_sources(policy: Policy, principal: str, table: str, columns: Sequence[str],
                    types: Mapping[str, str]) -> list[tuple[str, list[str], str]]:  # fmt: skip
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
                condition = (
                    validated(
                        cells.row_filter,
                        columns,
                        f"filter {cells.name}",
                        predicate=True,
                        types=types,
                    )
                    or TRUE
                )
                found.append((condition, picked, f"data cells filter {cells.name}"))
        elif resource.tags is not None:
            picked = [c for c in columns
                      if _tags_match(resource.tags, effective_tags(policy, table, c))]  # fmt: skip
            if picked:
                found.append((TRUE, picked, f"grant on {resource.describe()}"))
    return [source for source in found if source[1]]


def table_access(policy: Policy, principal: str, table: str, columns: Sequence[str],
                 types: Mapping[str, str] | None = None, *, admin: str,
                 ids: Mapping[str, int] | None = None) -> TableAccess:  # fmt: skip
    """What ``principal`` may SELECT from ``table``, whose columns are ``columns`` (in
    order; ``types`` maps them to DuckDB type names, needed for typed NULL masks;
    ``ids`` to their Iceberg field ids, to tell a renamed or re-added column).

    Raises AccessDeniedError when no column is granted or an entry naming a column of
    the table no longer names the column it was made for, PolicyError for a filter or
    mask that does not fit the table (an unknown column, a subquery, hash of a number).
    """
    if policy.is_admin(principal, admin):
        return TableAccess(table, principal, tuple(ColumnAccess(c, quote(c)) for c in columns),
                           None, ("admin",))  # fmt: skip
    stale = stale_entries(policy, table, columns, ids)
    if stale:
        raise stale_denial(principal, table, stale)
    sources = _select_sources(policy, principal, table, columns, types or {})
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


def stale_entries(policy: Policy, table: str, columns: Sequence[str],
                  ids: Mapping[str, int] | None = None) -> list[StaleEntry]:  # fmt: skip
    """Every entry narrowing access to ``table`` that names a column the table no
    longer has (renamed or dropped) or, given the table's field ``ids`` (``{column:
    field id}``), a column whose field is not the one the entry was made for
    (:mod:`.binding`): column tags, masks, column-list grants and exclusions, data
    cells filters' columns and row filters. Such an entry no longer protects what it
    was made to protect."""
    have = set(columns)
    drifted = drift(policy, table, ids)
    found: list[StaleEntry] = []
    for named in named_columns(policy):
        if named.table != table:
            continue
        if named.column not in have:
            change = f"which {table} no longer has (renamed or dropped?)"
        elif named.column in drifted:
            change = drifted[named.column]
        else:
            continue
        found.append(StaleEntry(named.column, named.entry, change))
    return list(dict.fromkeys(found))


class StaleEntry(NamedTuple):
    """A policy entry naming a column that is not the one it was made for."""

    column: str
    entry: str
    change: str  # "which T no longer has ..." or "was field 3 ... and is field 9 now"


def stale_denial(principal: str, table: str, stale: list[StaleEntry]) -> AccessDeniedError:
    """The refusal of ``table`` to ``principal`` while ``stale`` entries name it."""
    first = stale[0]
    more = f" (and {len(stale) - 1} more stale entr{'y' if len(stale) == 2 else 'ies'})"
    return AccessDeniedError(
        principal, "SELECT", table,
        message=f"the policy names column {first.column} of {table} in {first.entry}, and "
        f"that column {first.change}{more if len(stale) > 1 else ''}; until the policy is "
        f"fixed nobody but the admin may read {table}, so the column's protection cannot "
        f"be lost.",
        hint="An admin moves the entry to the column's new name (e.g. `lakehouse tag` the new "
        "column, `lakehouse mask set`, re-grant) and removes the old one, or, when the name "
        f"now means the column it should, `lakehouse governance rebind {table}`; "
        "`lakehouse governance show` flags every stale entry.",
    )  # fmt: skip


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
    types = {column: column_type} if column_type else None
    return validated(expression, columns, f"the mask of {column}", types=types) or name


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Functions whose value changes from call to call or row to row on its own: a filter
#: or mask built on them would show different rows or values to the same question.
_VOLATILE = (exp.Rand, exp.Uuid, exp.CurrentDate, exp.CurrentTime, exp.CurrentTimestamp)
_VOLATILE_NAMES = frozenset({"random", "now", "setseed", "nextval", "currval", "uuid",
                             "gen_random_uuid", "get_current_time", "current_localtime",
                             "current_localtimestamp", "transaction_timestamp"})  # fmt: skip
#: Table functions (they produce rows, not one value per row).
_TABLE_FUNCTIONS = (exp.UDTF, exp.GenerateSeries, exp.Unnest, exp.Explode)
_BOOLEAN = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Xor)
_NOT_BOOLEAN = (exp.Literal, exp.Null, exp.Binary, exp.Concat, exp.DPipe)
_HINT = "Filters and masks are one expression over the row's own columns, e.g. region = 'EU'."


def _refuse(what: str, problem: str, hint: str = _HINT) -> PolicyError:
    return PolicyError(f"The expression of {what} {problem}", hint=hint)


def _parsed(expression: str, what: str) -> exp.Expr:
    """The one expression ``expression`` holds (PolicyError for none, several, or bad SQL)."""
    try:
        statements = [s for s in sqlglot.parse(expression, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        said = _ANSI.sub("", str(exc)).strip()
        raise _refuse(what, f"is not valid SQL: {said}",
                      "Write it in DuckDB's SQL, e.g. region = 'EU'.") from None  # fmt: skip
    if len(statements) != 1:
        raise _refuse(what, f"must be exactly one expression; {expression!r} holds "
                      f"{len(statements)}.")  # fmt: skip
    parsed = statements[0]
    if isinstance(parsed, exp.Alias) or not isinstance(parsed, (exp.Condition, exp.Query)):
        raise _refuse(what, f"must be one expression, not a statement or alias: {expression!r}.")
    return parsed


def _refused_kind(parsed: exp.Expr) -> str | None:
    """Why ``parsed`` cannot be a per-row filter or mask (None: it can)."""
    if isinstance(parsed, exp.Query) or parsed.find(exp.Subquery, exp.Select, exp.Exists):
        return "may not hold a query (a subquery reads other rows or tables)"
    if parsed.find(exp.AggFunc):
        return "may not aggregate (count, sum, …): it is evaluated for one row at a time"
    if parsed.find(exp.Window):
        return "may not use a window function (OVER …): it is evaluated for one row at a time"
    if parsed.find(*_TABLE_FUNCTIONS):
        return "may not call a table function: it is evaluated for one row at a time"
    anonymous = {f.name.lower() for f in parsed.find_all(exp.Anonymous)}
    if parsed.find(*_VOLATILE) or anonymous & _VOLATILE_NAMES:
        return ("may not use a function whose value changes between calls (random, uuid, "
                "now, current_timestamp …): the same query would show different data")  # fmt: skip
    if parsed.find(exp.Star, exp.Placeholder, exp.Parameter):
        return "may not hold *, ? or $ parameters"
    return None


def _not_boolean(node: exp.Expr, types: Mapping[str, str]) -> bool:
    """Whether ``node`` is, as far as can be told, not a true/false value."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, _BOOLEAN):
        return False
    if isinstance(node, exp.Column):
        known = types.get(node.name)
        return known is not None and not known.upper().startswith("BOOL")
    if isinstance(node, exp.Cast):
        return not node.to.is_type(exp.DataType.Type.BOOLEAN)
    # A function may well return a boolean (coalesce(active, false), starts_with …):
    # only what is plainly a value (literal, arithmetic, concatenation) is refused.
    return isinstance(node, _NOT_BOOLEAN)


def validated(expression: str | None, columns: Sequence[str], what: str, *,
              predicate: bool = False, types: Mapping[str, str] | None = None) -> str | None:  # fmt: skip
    """``expression`` (DuckDB SQL) checked to be exactly one scalar, deterministic
    expression over ``columns`` only, returned in DuckDB's canonical form (what is
    stored, never the raw text). ``predicate``: it must also be true/false (a filter);
    ``types`` maps columns to DuckDB type names, to tell a boolean column.

    Refused (PolicyError): bad SQL; several statements or trailing text; aggregates,
    window functions, subqueries and table functions (a filter or mask sees one row);
    random, uuid, now and the current_* functions (the same query would show different
    data); unknown columns; a filter that is a bare non-boolean column or literal."""
    if expression is None:
        return None
    parsed = _parsed(expression, what)
    problem = _refused_kind(parsed)
    if problem:
        raise _refuse(what, f"{problem}: {expression}")
    unknown = sorted({c.name for c in parsed.find_all(exp.Column)} - set(columns))
    if unknown:
        raise PolicyError(f"The expression of {what} names unknown column(s): {', '.join(unknown)}.",
                          hint=f"The table's columns are: {', '.join(columns)}.")  # fmt: skip
    if predicate and _not_boolean(parsed, types or {}):
        raise _refuse(what, f"must be true or false for a row (a comparison, AND/OR/NOT, IN, "
                      f"BETWEEN, IS NULL, LIKE or a boolean column): {expression}",
                      "E.g. country = 'DE' or active (a boolean column).")  # fmt: skip
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
