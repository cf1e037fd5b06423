"""Zero-ETL: each integration's state, position, lag, rows/s, dead letters and last
error (``sync.status.status_rows``, what `lakehouse sync status` prints), its lag
over time (``sync.lag_history``) and its dead letters, a page at a time.

Governed (``sync.status.integration_sights``): a principal sees an integration only
when it may see every lake table it reads or writes, and its dead letters' rows and
last error (source values, unfiltered) only when it may SELECT every one of them
whole; otherwise their count, and a sentence saying why. Each such decision on an
integration's page is audited (engine ``console``, action ``READ_DEAD_LETTERS``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from lakehouse.console.charts import chart_json
from lakehouse.console.web import lake_of, render, settings_of
from lakehouse.errors import AccessDeniedError, LakehouseError
from lakehouse.sync import lag_history
from lakehouse.sync.dead_letter_pages import PAGE_SIZE, dead_letter_page
from lakehouse.sync.status import FULL_SIGHT, Sight, integration_sights, status_rows

if TYPE_CHECKING:
    import plotly.graph_objects as go

router = APIRouter()
# A state whose report is not a running follower's: the page says how to start one.
NOT_FOLLOWED = ("not running", "never run", "stopped")
# ?refresh=N reloads the page every N seconds (0: never), to watch a sync work.
Refresh = Query(0, ge=0, le=3600)
PAYLOAD_SHOWN = 2_000  # characters of a dead letter's row shown; the rest is said, not hidden


@router.get("/zero-etl", response_class=HTMLResponse)
def integrations(request: Request, refresh: int = Refresh) -> HTMLResponse:
    """Every integration as `lakehouse sync status` shows it, and their lag over time;
    reloaded every ``refresh`` seconds when given."""
    settings = settings_of(request)
    sights = integration_sights(lake_of(request))
    every = status_rows(settings)
    rows = [r for r in every if sights.get(r["name"], FULL_SIGHT).status]
    hidden = [r["name"] for r in every if r not in rows]  # counted, not named
    series = {r["name"]: lag_history.samples(settings, r["name"], r["generation_started"])
              for r in rows}  # fmt: skip
    figure = _lag_figure(series) if any(series.values()) else None
    context = {"title": "Zero-ETL", "rows": [_shown(r, sights[r["name"]]) for r in rows],
               "chart": chart_json(figure) if figure is not None else None,
               "home": settings.home_dir, "not_followed": _not_followed(rows),
               "refresh": refresh, "hidden": hidden}  # fmt: skip
    return render(request, "zero_etl.html", context)


@router.get("/zero-etl/{name}", response_class=HTMLResponse)
def integration(request: Request, name: str, page: int = Query(1, ge=1),
                refresh: int = Refresh) -> HTMLResponse:  # fmt: skip
    """One integration: its status, its lag and rows per pass, its dead letters (paged)."""
    settings = settings_of(request)
    lake = lake_of(request)
    found = [r for r in status_rows(settings) if r["name"] == name]
    if not found:
        raise HTTPException(404, detail="See every integration on the Zero-ETL page "
                            "(/zero-etl), or create one with `lakehouse sync create`.")  # fmt: skip
    row = found[0]
    sight = integration_sights(lake).get(name, FULL_SIGHT)
    if lake.governed():
        _audit(lake, name, sight)
    if not sight.status:
        raise AccessDeniedError(lake.principal, "DESCRIBE", f"integration {name}",
                                message=f"{lake.principal} may not see integration {name}: "
                                f"{sight.why}.", hint=_HIDDEN_HINT)  # fmt: skip
    samples = lag_history.samples(settings, name, row["generation_started"])
    figure = _lag_figure({name: samples}, rows=True) if samples else None
    letters, letters_error = None, None
    if sight.values:
        try:
            letters = dead_letter_page(lake, name, row["generation_started"],
                                       (page - 1) * PAGE_SIZE, PAGE_SIZE,
                                       decided=lake.governed())  # fmt: skip
        except LakehouseError as exc:  # the status still shows: it lives in the home
            letters_error = exc
    context = {"title": f"Zero-ETL: {name}", "row": _shown(row, sight), "page": page,
               "values_hidden": sight.why if not sight.values else "",
               "page_size": PAGE_SIZE, "letters": letters, "letters_error": letters_error,
               "chart": chart_json(figure) if figure is not None else None,
               "samples": len(samples), "refresh": refresh,
               "payload_shown": PAYLOAD_SHOWN}  # fmt: skip
    return render(request, "zero_etl_integration.html", context)


_HIDDEN_HINT = (
    "What a principal sees follows the policy on the integration's lake tables: "
    "`lakehouse grants --principal NAME` lists its grants; an admin can grant "
    "DESCRIBE or SELECT on them (`lakehouse grant`)."
)


def _audit(lake: Any, name: str, sight: Sight) -> None:
    """The decision on a governed principal's reading of the integration's dead letters
    (the source rows they hold), in the audit log as engine ``console``."""
    from lakehouse.governance.audit import record
    from lakehouse.sync.deadletters import TABLE

    record(lake.settings, lake.principal, "console", TABLE, (), (f"integration = '{name}'",),
           sight.values, None, action="READ_DEAD_LETTERS", reason=sight.why or None)  # fmt: skip


def _shown(row: dict[str, Any], sight: Sight = FULL_SIGHT) -> dict[str, Any]:
    """A status row plus its text: lag (unknown, never 0, for a failing pass), ages;
    the last error's text left out when the principal may not see values."""
    if not sight.values:
        row = row | {"last_error": "(hidden)" if row["last_error"] else ""}
    if row["lag_seconds"] is not None:
        lag = f"{row['lag_seconds']:.1f} s"
    else:
        lag = "unknown" if row["shown_state"] in ("retrying", "waiting", "failed") else "-"
    updated = _age(row["updated_at"]) if row["updated_at"] else "never"
    error_at = _age(row["last_error_at"]) if row["last_error_at"] else ""
    return row | {"lag_text": lag, "updated_text": updated, "error_at_text": error_at}


def _age(epoch: float) -> str:
    seconds = max(time.time() - epoch, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _not_followed(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows if r["shown_state"] in NOT_FOLLOWED]


def _lag_figure(series: dict[str, list[lag_history.LagSample]], rows: bool = False) -> go.Figure:
    """Lag (seconds) over time, a line per integration; with ``rows``, the rows each
    pass applied as bars on a second axis. A pass of unknown lag is a gap."""
    import datetime as dt

    import plotly.graph_objects as go

    figure = go.Figure()
    for name, samples in series.items():
        if not samples:
            continue
        at = [dt.datetime.fromtimestamp(s.at).astimezone() for s in samples]
        figure.add_trace(go.Scatter(x=at, y=[s.lag_seconds for s in samples], name=f"{name} lag",
                                    mode="lines+markers", connectgaps=False))  # fmt: skip
        if rows:
            figure.add_trace(go.Bar(x=at, y=[s.rows for s in samples], name="rows applied",
                                    yaxis="y2", opacity=0.35))  # fmt: skip
    figure.update_layout(yaxis={"title": "lag (s)", "rangemode": "tozero"}, xaxis_title="time",
                         showlegend=True)  # fmt: skip
    if rows:
        figure.update_layout(yaxis2={"title": "rows applied", "overlaying": "y", "side": "right",
                                     "rangemode": "tozero"})  # fmt: skip
    return figure
