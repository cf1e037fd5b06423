"""Catalog (the Glue console): namespaces, then tables, then one table.

List pages read names only (one catalog request, no table loaded, no data
read) and show them a page at a time. The table page loads the table's
metadata once; its snapshot timeline comes from snapshot summaries, its data
files from the manifests of the page shown, and only its row sample reads data,
at the current snapshot or at any earlier one (``?snapshot=ID``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from lakehouse.console.cells import grid
from lakehouse.console.charts import chart_json
from lakehouse.console.governed import (
    acting,
    described,
    restrict_table_context,
    visible_namespaces,
    visible_table_names,
)
from lakehouse.console.web import lake_lock, lake_of, raw_path, render, settings_of
from lakehouse.errors import LakehouseError
from lakehouse.lake import browse
from lakehouse.outages import reported_outages

if TYPE_CHECKING:
    from pyiceberg.table import Table

router = APIRouter()

NAMES_PER_PAGE = 100
SNAPSHOTS_PER_PAGE = 50
FILES_PER_PAGE = 25
SAMPLE_ROWS = 20
LAKE = ("catalog", "s3")
PageNumber = Query(1, ge=1, le=1_000_000, description="1-based page number")


@router.get("/catalog", response_class=HTMLResponse)
def namespaces(request: Request, page: int = PageNumber) -> HTMLResponse:
    """Every namespace, with its number of tables (for the namespaces on the page)."""
    lake = lake_of(request)
    with reported_outages(settings_of(request), "listing namespaces", ("catalog",)):
        if acting(lake).governed:  # only where it sees a table, as `lakehouse tables` lists
            counts = visible_namespaces(lake)
            shown = browse.page_of(list(counts), _offset(page, NAMES_PER_PAGE), NAMES_PER_PAGE)
        else:
            shown = browse.page_of(browse.namespaces(lake.catalog), _offset(page, NAMES_PER_PAGE),
                                   NAMES_PER_PAGE)  # fmt: skip
            counts = {ns: len(browse.table_names(lake.catalog, ns)) for ns in shown.items}
    context = {"title": "Catalog", "page": shown, "counts": counts}
    return render(request, "catalog_namespaces.html", context)


@router.get("/catalog/{names:path}", response_class=HTMLResponse)
def namespace_or_table(
    request: Request, names: str, page: int = PageNumber,
    q: str = Query("", max_length=200, description="only names containing this"),
    snapshot: int | None = Query(None, description="snapshot id to show (default: current)"),
    history_page: int = PageNumber, files_page: int = PageNumber,
) -> HTMLResponse:  # fmt: skip
    """``/catalog/NAMESPACE`` (its tables) or ``/catalog/NAMESPACE/TABLE`` (one table).

    Each name is one percent-encoded path segment (a ``/`` in it is ``%2F``). The
    segments are split from the raw path: the server decodes ``%2F`` to ``/``
    before routing, so a decoded path could not tell ``a/b`` from two names.
    """
    segments = path_names(raw_path(request))
    if len(segments) == 1:
        return tables(request, segments[0], page, q)
    if len(segments) == 2:
        return table_page(request, segments[0], segments[1], snapshot, history_page, files_page)
    raise HTTPException(404, "A catalog address is /catalog/NAMESPACE or /catalog/NAMESPACE/TABLE.")


def path_names(path: str) -> list[str]:
    """The names after ``/catalog/`` in a raw (still percent-encoded) path."""
    rest = path.removeprefix("/catalog/").rstrip("/")
    return [unquote(segment) for segment in rest.split("/")] if rest else []


def tables(request: Request, namespace: str, page: int, q: str) -> HTMLResponse:
    """The namespace's tables, by name, a page at a time (``q`` filters by name)."""
    lake = lake_of(request)
    with reported_outages(settings_of(request), f"listing tables of {namespace}", ("catalog",)):
        if acting(lake).governed:
            names = visible_table_names(lake, namespace, q)
        else:
            names = browse.table_names(lake.catalog, namespace, q)
    shown = browse.page_of(names, _offset(page, NAMES_PER_PAGE), NAMES_PER_PAGE)
    context = {"title": f"{namespace} · Catalog", "namespace": namespace, "page": shown, "q": q}
    return render(request, "catalog_tables.html", context)


def table_page(request: Request, namespace: str, table: str, snapshot: int | None,
               history_page: int, files_page: int) -> HTMLResponse:  # fmt: skip
    """One table: schema, partitioning, properties, snapshots, files and a sample."""
    name = f"{namespace}.{table}"
    lake = lake_of(request)
    with reported_outages(settings_of(request), f"reading table {name}", LAKE):
        if acting(lake).governed:  # the page shows only what describe and lake.sql show it
            described(lake, name)  # AccessDeniedError (audited) when it may see nothing
            loaded = lake._table(name)  # metadata only: no raw row or file is shown
            chosen = browse.snapshot_of(loaded, snapshot)
            context = _table_context(loaded, chosen, history_page, files_page, raw=False)
            with lake_lock(request):
                context = restrict_table_context(lake, name, context, snapshot, SAMPLE_ROWS)
        else:
            loaded = lake.table(name)
            chosen = browse.snapshot_of(loaded, snapshot)
            context = _table_context(loaded, chosen, history_page, files_page)
    context |= {"snapshot_param": snapshot}
    return render(request, "catalog_table.html", context)


def _table_context(table: Table, chosen: Any, history_page: int, files_page: int,
                   raw: bool = True) -> dict[str, Any]:  # fmt: skip
    """The table page's context; ``raw=False`` reads no data file nor manifest (the
    governed view fills the sample itself and shows no files)."""
    changes = browse.snapshot_changes(table)
    newest_first = list(reversed(changes))
    files: browse.Page[browse.DataFileRow] = browse.page_of([], 0, FILES_PER_PAGE)
    sample_error: LakehouseError | None = None
    columns: list[str] = []
    rows: list[list[str]] = []
    if raw:
        offset = _offset(files_page, FILES_PER_PAGE)
        files = browse.data_files(table, chosen, offset, FILES_PER_PAGE)
        try:
            columns, rows = grid(browse.sample_rows(table, chosen, SAMPLE_ROWS))
        except LakehouseError as exc:  # the metadata still shows; the sample says why not
            sample_error = exc
    current = table.current_snapshot()
    name = ".".join(table.name())
    return {
        "title": f"{name} · Catalog", "name": name, "namespace": table.name()[0],
        "short_name": table.name()[-1], "location": table.location(),
        "format_version": table.format_version, "fields": browse.schema_rows(table.schema()),
        "partitions": browse.partition_rows(table),
        "sort_order": [str(f) for f in table.sort_order().fields],
        "properties": sorted(table.properties.items()),
        "current_id": current.snapshot_id if current else None,
        "chosen": chosen, "chosen_change": _find(changes, chosen),
        "history": browse.page_of(newest_first, _offset(history_page, SNAPSHOTS_PER_PAGE),
                                  SNAPSHOTS_PER_PAGE),
        "travel_points": [c for c in newest_first if c.was_current],
        "snapshot_count": len(changes), "files": files,
        "sample_columns": columns, "sample_rows": rows, "sample_limit": SAMPLE_ROWS,
        "sample_error": sample_error, "missing_file": getattr(sample_error, "address", None),
        "chart": timeline_chart(changes) if changes else None,
    }  # fmt: skip


def _find(changes: list[browse.SnapshotChange], chosen: Any) -> browse.SnapshotChange | None:
    wanted = chosen.snapshot_id if chosen is not None else None
    return next((c for c in changes if c.snapshot_id == wanted), None)


def timeline_chart(changes: list[browse.SnapshotChange]) -> str:
    """Rows added and deleted per snapshot (bars) and rows stored after it (line)."""
    times = [c.committed_at.isoformat() for c in changes]
    labels = [f"{c.operation} {c.snapshot_id}" for c in changes]
    bars = {"type": "bar", "x": times, "hovertext": labels}
    figure = {
        "data": [
            {**bars, "name": "rows added", "y": [c.added_records for c in changes],
             "marker": {"color": "#2da44e"}},
            {**bars, "name": "rows deleted", "y": [_rows_deleted(c) for c in changes],
             "marker": {"color": "#cf222e"}},
            {"type": "scatter", "mode": "lines+markers", "name": "rows stored", "x": times,
             "y": [c.total_records for c in changes], "yaxis": "y2",
             "line": {"color": "#1f6feb"}},
        ],
        "layout": {
            "barmode": "relative", "legend": {"orientation": "h", "y": 1.12},
            "xaxis": {"type": "date", "gridcolor": "#ebf0f8"},
            "yaxis": {"title": {"text": "rows added / deleted"}, "gridcolor": "#ebf0f8"},
            "yaxis2": {"title": {"text": "rows stored"}, "overlaying": "y", "side": "right",
                       "rangemode": "tozero"},
        },
    }  # fmt: skip
    return chart_json(figure)


def _rows_deleted(change: browse.SnapshotChange) -> int | None:
    """Rows deleted (negative, drawn below the axis); None (a gap) when not known."""
    if change.deleted_records is None or change.added_position_deletes is None:
        return None
    return -change.deleted_records - change.added_position_deletes


def _offset(page: int, per_page: int) -> int:
    return (page - 1) * per_page
