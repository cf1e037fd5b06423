"""Who the console acts as, and the Catalog as a governed principal sees it.

The console runs every library call as its ``principal`` setting
(``LAKEHOUSE_PRINCIPAL``; unset, the governance admin), and says so on every page.
With governance on and a principal other than the admin, the Query page runs as
that principal (the rewrite and Trino's rules apply), and the Catalog shows only
what ``lakehouse tables`` and ``describe`` show it: the tables it may DESCRIBE or
SELECT, their visible columns and partition fields, its own rows as the sample
(``lake.sql``, filtered and masked), and no data files (their paths and partition
values hold every row and column). The Overview lists the maintenance runs of
the tables it sees only; the Query page's history, Zero-ETL and Models pages
follow their own library calls (``engines.history.viewer_filter``,
``sync.status.integration_sights``, ``ml.registry_view.governed_model_views``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.governance.table_view import HIDDEN

if TYPE_CHECKING:
    from fastapi import Request

    from lakehouse.client import Lakehouse


@dataclass(frozen=True)
class Acting:
    """The principal the console acts as; ``governed``: held to the policy."""

    principal: str
    governed: bool
    enabled: bool

    @property
    def label(self) -> str:
        if not self.enabled:
            return "governance off"
        return "governed by the policy" if self.governed else "governance admin"


def acting(lake: Lakehouse) -> Acting:
    """Who ``lake``'s calls run as (the policy file is read: a change shows at once)."""
    try:
        governed = lake.governed()
    except LakehouseError:  # an unreadable policy: the principal is treated as governed
        governed = lake.settings.governance_enabled
    return Acting(lake.principal, governed, lake.settings.governance_enabled)


def acting_of(request: Request) -> Acting:
    """:func:`acting` of the console's connection (for the header of every page)."""
    from lakehouse.console.web import lake_of

    return acting(lake_of(request))


def visible_namespaces(lake: Lakehouse) -> dict[str, int]:
    """Namespace -> number of tables the governed principal sees in it (namespaces
    where it sees none are left out), from ``lake.tables()``."""
    counts: dict[str, int] = {}
    for name in lake.tables():
        namespace = name.rsplit(".", 1)[0]
        counts[namespace] = counts.get(namespace, 0) + 1
    return dict(sorted(counts.items()))


def visible_table_names(lake: Lakehouse, namespace: str, contains: str = "") -> list[str]:
    """Names (without the namespace) of the tables of ``namespace`` it sees."""
    needle = contains.strip().lower()
    names = [n.rsplit(".", 1)[1] for n in lake.tables(namespace)]
    return sorted(n for n in names if needle in n.lower())


def restrict_table_context(lake: Lakehouse, name: str, context: dict[str, Any],
                           snapshot_id: int | None, sample_limit: int) -> dict[str, Any]:  # fmt: skip
    """The table page's ``context`` cut to what the principal may see: the columns
    ``describe`` shows it, partition fields of those columns, its own rows as the
    sample, no data files. AccessDeniedError when it may see nothing of the table."""
    from lakehouse.console.cells import grid

    described = lake.describe(name)
    shown = {c["name"] for c in described["schema"]}
    context["fields"] = [f for f in context["fields"] if f.path.split(".", 1)[0] in shown]
    context["partitions"] = [p for p in context["partitions"] if p.source in shown]
    context["sort_order"] = []  # names its source columns by id: not shown
    if described["row_count"] is None and described["row_count_method"] == HIDDEN:
        context |= _without_counts(context)
    context["files_hidden"] = True
    context["missing_file"] = None
    columns: list[str] = []
    rows: list[list[str]] = []
    error: LakehouseError | None = None
    try:
        ns, table = name.rsplit(".", 1)
        quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (ns, table))
        sample = lake.sql(f"SELECT * FROM {quoted} LIMIT {int(sample_limit)}", as_of=snapshot_id)
        columns, rows = grid(sample)
    except LakehouseError as exc:  # e.g. DESCRIBE without SELECT: the page says why
        error = exc
    context |= {"sample_columns": columns, "sample_rows": rows, "sample_error": error}
    return context


def _without_counts(context: dict[str, Any]) -> dict[str, Any]:
    """The snapshot timeline's parts with their row counts, file counts and sizes
    None, and no chart (behind a row filter they count hidden rows too)."""
    import dataclasses

    from lakehouse.governance.table_view import without_counts

    history = context["history"]
    chosen = context["chosen_change"]
    return {
        "history": dataclasses.replace(history, items=without_counts(history.items)),
        "chosen_change": without_counts([chosen])[0] if chosen is not None else None,
        "chart": None, "counts_hidden": True,
    }  # fmt: skip


def visible_runs(lake: Lakehouse, runs: list[Any]) -> tuple[list[Any], int]:
    """The maintenance ``runs`` (each with a ``.table``) of the tables the principal
    sees, and how many were left out (all of them when the catalog cannot be read:
    which tables it sees cannot be told then). Every run when it is not governed."""
    if not runs or not acting(lake).governed:
        return runs, 0
    from lakehouse.governance.derived import table_columns
    from lakehouse.governance.visibility import listed_tables

    names = sorted({run.table for run in runs})
    try:
        seen = set(listed_tables(lake.settings, lake.principal, names,
                                 lambda t: table_columns(lake, t) or []))  # fmt: skip
    except LakehouseError:
        return [], len(runs)
    shown = [run for run in runs if run.table in seen]
    return shown, len(runs) - len(shown)


def described(lake: Lakehouse, name: str) -> None:
    """``lake.describe(name)``: AccessDeniedError (audited) when the principal may see
    nothing of it; TableNotFoundError whose hint lists only the tables it sees (the
    catalog's own hint lists every table of the namespace)."""
    try:
        lake.describe(name)
    except TableNotFoundError as exc:
        namespace = name.rsplit(".", 1)[0]
        try:
            seen = visible_table_names(lake, namespace)
        except LakehouseError:
            seen = []
        hint = (f"Tables you may see in {namespace}: {', '.join(seen)}." if seen
                else "Run `lakehouse tables` to see the tables you may see.")  # fmt: skip
        raise TableNotFoundError(exc.message, hint=hint) from None


def example_query(lake: Lakehouse, default: str) -> str:
    """The Query page's first text: ``default`` unless governed (system tables are
    refused to a governed principal), then a look at the first table it sees."""
    if not acting(lake).governed:
        return default
    try:
        names = lake.tables()
    except LakehouseError:
        names = []
    if not names:
        return "SELECT 42 AS answer"
    namespace, table = names[0].rsplit(".", 1)
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (namespace, table))
    return f"SELECT * FROM {quoted} LIMIT 10"
