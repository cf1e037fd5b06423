"""A schema change made behind lakehouse's back cannot widen what a direct Trino
client sees.

Trino's rules name columns: a column they do not list is shown. A grant of some
columns (``COLUMNS a, b``, or a data cells filter with a column list) must hide a
column added later, but Trino cannot be told "every other column"; and a rename
made directly in Trino or Spark (``RENAME COLUMN email TO contact``) moves a column
the rules mask or hide to a name they do not know. So the rule of such a (user,
table), and of every (user, table) whose rule hides, masks or filters, carries a
guard in its row filter: the columns the querying
user sees of the table (Trino lists ``information_schema`` as that user, through
these same rules) must be exactly those the policy gives it, else the query fails
with a message that says how to bring the rules up to date::

    CASE WHEN (SELECT array_agg(lower(column_name) ORDER BY ordinal_position)
               FROM lake.information_schema.columns
               WHERE table_schema = 'ns' AND table_name = 't') = ARRAY['id', 'name']
         THEN <the principal's row filter, or TRUE>
         ELSE fail('...') END

A new column, which the rules do not list, shows up in that list and trips the
guard; once the rules are rewritten they list it as hidden and the list matches
again. (Cost: one metadata lookup per query of such a table. Iceberg's
``$metadata_log_entries`` would not do: its schema id is the latest snapshot's,
which a schema change alone does not move.) The library's Trino path and every
``lakehouse`` command compare the guarded tables' schema ids with the catalog
first and rewrite the rules, so only a direct client racing a schema change ever
meets the guard, and it reads nothing it should not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.access import table_access
from lakehouse.governance.policy import Policy

if TYPE_CHECKING:
    from lakehouse.config import Settings

# A column no table has: hidden from a principal exactly when a new column would be.
FUTURE_COLUMN = "__lakehouse_future_column__"


def new_columns_hidden(policy: Policy, user: str, table: str, columns: Sequence[str],
                       *, admin: str) -> bool:  # fmt: skip
    """Whether ``user`` may read some column of ``table`` but would not see a column
    added to it now (a column-list grant or filter): its rule needs the guard."""
    try:
        access = table_access(policy, user, table, [*columns, FUTURE_COLUMN], admin=admin)
    except (AccessDeniedError, PolicyError):
        return False
    return FUTURE_COLUMN not in {c.name for c in access.columns}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def guarded_filter(row_filter: str | None, table: str, visible: Sequence[str],
                   catalog: str) -> str:  # fmt: skip
    """Trino's row filter for a guarded rule: ``row_filter`` (Trino's SQL, None for
    every row) while the user sees exactly the ``visible`` columns of ``table`` (in
    order); a failing query otherwise."""
    namespace, name = table.rsplit(".", 1)
    expected = ", ".join(_literal(c.lower()) for c in visible)
    source = f"{_identifier(catalog)}.information_schema.columns"
    current = (f"(SELECT array_agg(lower(column_name) ORDER BY ordinal_position) FROM {source} "
               f"WHERE table_schema = {_literal(namespace.lower())} "
               f"AND table_name = {_literal(name.lower())})")  # fmt: skip
    message = (f"lakehouse: the columns of {table} changed since the governance rules were "
               f"written, so this query is refused; any lakehouse command (e.g. `lakehouse "
               f"tables`) brings the rules up to date.")  # fmt: skip
    return (f"CASE WHEN {current} = ARRAY[{expected}] THEN ({row_filter or 'true'}) "
            f"ELSE fail({_literal(message)}) END")  # fmt: skip


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def guarded_tables_changed(settings: Settings, guarded: Mapping[str, int],
                           reads: Sequence[str] | None = None) -> bool:  # fmt: skip
    """Whether a guarded table (of ``reads``, or any) has another current schema than
    the one the rules were written for (one catalog request per such table). False
    when the catalog cannot tell (down, the table dropped): the guard still holds."""
    from lakehouse.lake import catalog as cat

    wanted = [t for t in guarded if reads is None or t in reads]
    if not wanted:
        return False
    try:
        catalog = cat.open_catalog(settings)
        for name in wanted:
            if cat.load_table(catalog, name).schema().schema_id != guarded[name]:
                return True
    except Exception:  # the catalog cannot tell now; nothing is exposed meanwhile
        return False
    return False
