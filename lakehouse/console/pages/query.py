"""Query (the Athena console): an editor, an engine, a results grid, a chart, CSV
download and the user's history.

A query runs through ``engines.history.run_recorded``, the call behind
`lakehouse query`, so the console and the CLI share one history and one result
contract. The history shows a governed principal only its own queries (the
admin sees everyone's, with who ran each). An error is shown with its hint on the page (status 400, or 503 when
a service is down), the text kept in the editor.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from lakehouse.config import Settings
from lakehouse.console import query_results, statements
from lakehouse.console.chart_choice import choose_chart
from lakehouse.console.charts import chart_json
from lakehouse.console.failures import status_for
from lakehouse.console.web import lake_lock, lake_of, render, settings_of, start_command
from lakehouse.engines.base import ENGINE_NAMES
from lakehouse.engines.history import QueryHistory, run_recorded, viewer_filter
from lakehouse.errors import ConfigError, LakehouseError

if TYPE_CHECKING:
    import pyarrow as pa

router = APIRouter()
log = logging.getLogger("lakehouse.console")
_LOCKS_GUARD = threading.Lock()
HISTORY_SHOWN = 25
EXAMPLE = "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
# The services each engine needs answering before a query can run.
ENGINE_SERVICES = {"duckdb": ("catalog", "s3"), "trino": ("trino",), "spark": ("spark",)}


@dataclass(frozen=True)
class EngineChoice:
    """An engine in the picker: ``down`` says why it cannot run now ("" when it can)."""

    name: str
    down: str


def engine_choices(settings: Settings) -> list[EngineChoice]:
    """Every engine the library offers, with why it is not answering (if so)."""
    from lakehouse.outages import not_answering

    choices = []
    for name in ENGINE_NAMES:
        reasons = [f"{svc}: {why}" for svc in ENGINE_SERVICES.get(name, ())
                   if (why := not_answering(settings, svc)) is not None]  # fmt: skip
        down = ""
        if reasons:
            down = f"{'; '.join(reasons)}. Start it with `{start_command(settings, name)}`."
            if name == "duckdb":
                down = f"{'; '.join(reasons)}. Start the lake with `{start_command(settings)}`."
        choices.append(EngineChoice(name, down))
    return choices


def _results(request: Request) -> query_results.ResultStore:
    state = request.app.state
    if not hasattr(state, "query_results"):
        state.query_results = query_results.ResultStore()
    store: query_results.ResultStore = state.query_results
    return store


@dataclass(frozen=True)
class Ask:
    """What the editor holds: the text, the engine and the options it runs with."""

    sql: str
    engine: str = "duckdb"
    as_of: str = ""
    native: bool = False


@router.get("/query", response_class=HTMLResponse)
def editor(request: Request, sql: str = "", engine: str = "duckdb", as_of: str = "",
           native: bool = False) -> HTMLResponse:  # fmt: skip
    """The editor, with the example or with ``sql`` in it; nothing runs on GET."""
    from lakehouse.console.governed import example_query

    return _page(request, Ask(sql or example_query(lake_of(request), EXAMPLE), engine, as_of,
                              native))  # fmt: skip


@router.post("/query", response_class=HTMLResponse)
def run(request: Request, sql: str = Form(""), engine: str = Form("duckdb"),
        as_of: str = Form(""), native: bool = Form(False),
        confirmed: bool = Form(False)) -> HTMLResponse:  # fmt: skip
    """Run ``sql`` on ``engine`` (as of a snapshot or time, or in the engine's own
    dialect); the page with its result, or its error and hint.

    A destructive statement (DROP, DELETE, TRUNCATE, ALTER, UPDATE ...) runs only
    with ``confirmed``, which only the page's confirmation form carries: the
    editor's Run (and a history entry put back into it) asks first.
    """
    ask = Ask(sql, engine, as_of.strip(), native)
    if not sql.strip():
        error = ConfigError("No SQL was given.", hint="Write a query in the editor, then Run.")
        return _page(request, ask, error=error)
    if engine not in ENGINE_NAMES:
        error = ConfigError(f"Unknown engine {engine!r}.", hint=f"Use {', '.join(ENGINE_NAMES)}.")
        return _page(request, replace(ask, engine="duckdb"), error=error)
    if statements.is_destructive(sql) and not confirmed:
        return _page(request, ask, confirm=True)
    started = time.monotonic()
    try:
        table = _run(request, ask)
    except LakehouseError as exc:
        return _page(request, ask, error=exc)
    seconds = time.monotonic() - started
    return _page(request, ask, result=_result_context(request, ask, table, seconds))


def _run(request: Request, ask: Ask) -> pa.Table:
    lake = lake_of(request)
    with _engine_lock(request, ask.engine):
        try:
            return run_recorded(lake, ask.sql, ask.engine, QueryHistory(settings_of(request)),
                                as_of=ask.as_of or None, native=ask.native)  # fmt: skip
        finally:
            if ask.engine == "duckdb":
                _reset_duckdb(lake)


def _engine_lock(request: Request, engine: str) -> Any:
    """One query at a time per engine: the console shares one connection to each.

    DuckDB's lock is the console's ``lake_lock`` (other pages use that connection
    too); a long Spark query does not hold up a DuckDB one.
    """
    if engine == "duckdb":
        return lake_lock(request)
    state = request.app.state
    with _LOCKS_GUARD:  # not lake_lock: a long DuckDB query must not hold up Trino's
        if not hasattr(state, "engine_locks"):
            state.engine_locks = {}
        lock: threading.Lock = state.engine_locks.setdefault(engine, threading.Lock())
    return lock


def _reset_duckdb(lake: Any) -> None:
    """A USE in the user's text must not stick to the next query (the connection is shared)."""
    try:
        lake.reset_duckdb()
    except Exception:  # a broken connection: the next query reports it with its hint
        log.debug("resetting DuckDB's namespace failed", exc_info=True)


def _result_context(request: Request, ask: Ask, table: pa.Table,
                    seconds: float) -> dict[str, Any]:  # fmt: skip
    if not statements.is_query(ask.sql):
        shown = table.num_columns > 0 and statements.reported_count(table) is None
        columns, rows = query_results.grid(table) if shown else ([], [])
        return {"statement": statements.outcome(ask.sql, table), "seconds": seconds,
                "columns": list(zip(columns, [str(t) for t in table.schema.types], strict=True)),
                "rows": rows, "row_count": table.num_rows, "chart": None}  # fmt: skip
    columns, rows = query_results.grid(table)
    choice = choose_chart(table)
    figure = query_results.chart_figure(table, choice)
    kept = _results(request).keep(ask.sql, ask.engine, table, _governed_revision(request))
    return {
        "columns": list(zip(columns, [str(t) for t in table.schema.types], strict=True)),
        "rows": rows, "row_count": table.num_rows, "seconds": seconds,
        "chart": chart_json(figure) if figure is not None else None, "choice": choice,
        "null_x": query_results.null_x_rows(table, choice) if choice.kind != "bar" else 0,
        "download": f"/query/results/{kept.ident}.csv" if kept else None,
        "statement": None,
    }  # fmt: skip


@router.get("/query/results/{ident}.csv")
def download(request: Request, ident: str) -> Response:
    """A kept result as CSV, exactly as `lakehouse query --format csv` writes it."""
    from lakehouse.engines import output

    kept = _results(request).get(ident)
    if kept.revision is not None and kept.revision != _governed_revision(request):
        raise LakehouseError(
            "That result was computed under an earlier governance policy; it may hold rows "
            "or columns the policy no longer shows, so it is not served.",
            hint="Run the query again (the policy in force now applies) and download it then.",
        )
    return Response(
        output.to_csv(kept.table).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="query-{ident}.csv"'},
    )


def _governed_revision(request: Request) -> int | None:
    """The policy's revision now when the console's principal is governed, else None."""
    lake = lake_of(request)
    if not lake.governed():
        return None
    from lakehouse.governance.store import load_policy

    return load_policy(lake.settings).revision


def _page(request: Request, ask: Ask, *, error: LakehouseError | None = None,
          result: dict[str, Any] | None = None, confirm: bool = False) -> HTMLResponse:  # fmt: skip
    settings = settings_of(request)
    history = QueryHistory(settings)
    only = viewer_filter(settings, lake_of(request).principal)  # a governed principal: its own
    context = {
        "title": "Query", "ask": ask, "engines": engine_choices(settings),
        "history": history.entries(HISTORY_SHOWN, only=only), "history_path": history.path,
        "history_everyone": only is None,
        "error": error, "result": result, "confirm": confirm,
    }  # fmt: skip
    status = status_for(error) if error is not None else 200
    return render(request, "query.html", context, status_code=status)
