"""Overview: every service with its health, URL, PID, memory and uptime, and the web UIs.

Reads ``get_runtime(settings).status()``, the call behind `lakehouse status`. It
needs no other service, so it renders when everything else is down, and says
for each service that is not running the exact command that starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lakehouse.config import Settings
from lakehouse.console.web import lake_of, render, settings_of, start_command
from lakehouse.runtimes import ServiceStatus, get_runtime

router = APIRouter()

# The web UIs linked from the Overview: (service, label, what it is for).
WEB_UIS = (
    ("trino", "Trino UI", "queries running on the Trino cluster"),
    ("mlflow", "MLflow", "experiments, runs and the model registry"),
    ("dashboards", "Dashboards", "Superset: the Customer insights dashboard"),
    ("jupyter", "JupyterLab", "notebooks for the workshop"),
)


@dataclass(frozen=True)
class ServiceRow:
    """One service as the Overview shows it."""

    status: ServiceStatus
    state: str  # "up", "sick" (running, not healthy), "down" (started, then died) or "off"
    start_command: str | None
    uptime: str


@dataclass(frozen=True)
class WebUi:
    label: str
    purpose: str
    url: str | None
    running: bool
    start_command: str


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """The Overview page."""
    settings = settings_of(request)
    statuses, probed = stack_status(settings)
    from lakehouse.services import all_services

    optional = {svc.name for svc in all_services(settings) if svc.optional}
    rows = [_row(settings, status, status.name in optional) for status in statuses]
    from lakehouse.console.governed import visible_runs
    from lakehouse.lake.maintenance_policy import recorded_runs

    runs, runs_hidden = visible_runs(lake_of(request), recorded_runs(settings))
    context = {"title": "Overview", "rows": rows, "uis": _web_uis(settings, statuses),
               "home": settings.home_dir, "runtime": settings.runtime, "probed": probed,
               "maintenance": runs[:10], "maintenance_hidden": runs_hidden}  # fmt: skip
    return render(request, "overview.html", context)


def stack_status(settings: Settings) -> tuple[list[ServiceStatus], str | None]:
    """What `lakehouse status` shows, and None; or, when the runtime cannot be asked
    (the console in a container has no `docker`), each service's own health
    probe and the reason the runtime was not asked."""
    from lakehouse.errors import LakehouseError
    from lakehouse.services import build_services

    try:
        return get_runtime(settings).status(), None
    except LakehouseError as exc:
        probed = []
        for svc in build_services(settings):
            health = svc.health()
            probed.append(ServiceStatus(svc.name, svc.spec().url, health.ok, None, None,
                                        health.detail, started=False))  # fmt: skip
        return probed, exc.message


def _row(settings: Settings, status: ServiceStatus, optional: bool) -> ServiceRow:
    if status.healthy:
        state = "up"
    elif status.pid is not None:
        state = "sick"  # running, not answering: starting up, or stuck; its log says which
    else:
        state = "down" if status.started else "off"
    command = start_command(settings, status.name, optional) if state in ("down", "off") else None
    return ServiceRow(status, state, command, human_duration(status.uptime_seconds))


def _web_uis(settings: Settings, statuses: list[ServiceStatus]) -> list[WebUi]:
    from lakehouse.services import all_services

    known = {svc.name: svc for svc in all_services(settings)}
    healthy = {status.name for status in statuses if status.healthy}
    uis = []
    for name, label, purpose in WEB_UIS:
        svc = known.get(name)
        url = svc.spec().url if svc is not None else None
        uis.append(WebUi(label, purpose, url, name in healthy,
                         start_command(settings, name, bool(svc and svc.optional))))  # fmt: skip
    return uis


def human_duration(seconds: float | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``4 min 10 s`` or ``12 s``; ``''`` for None."""
    if seconds is None:
        return ""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
