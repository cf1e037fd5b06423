"""What every page module uses: templates, rendering, the settings and the lake.

A page module under ``pages/`` defines ``router = APIRouter()``; its handlers
call library functions through :func:`lake_of` and answer with :func:`render`.
A :class:`~lakehouse.errors.LakehouseError` they raise becomes the error page
(``failures.py``), so handlers do not catch it themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

if TYPE_CHECKING:
    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# The navigation bar: (label, path), in order. A page module serves its path.
NAV = (
    ("Overview", "/"),
    ("Catalog", "/catalog"),
    ("Query", "/query"),
    ("Zero-ETL", "/zero-etl"),
    ("Models", "/models"),
)


def with_query(request: Request, **changes: object) -> str:
    """This page's path and query with ``changes`` applied (None removes a parameter)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals["nav"] = NAV
templates.env.globals["with_query"] = with_query


def count_text(value: int | None, sign: str = "") -> str:
    """``1,234`` (with ``sign`` in front), or ``unknown`` when the source does not say."""
    return "unknown" if value is None else f"{sign}{value:,}"


def size_text(value: int | None, sign: str = "") -> str:
    """``1.0 KiB`` (with ``sign`` in front), or ``unknown`` when the source does not say."""
    from jinja2.filters import do_filesizeformat

    return "unknown" if value is None else f"{sign}{do_filesizeformat(value, True)}"


templates.env.filters["count"] = count_text
templates.env.filters["size"] = size_text


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """The template rendered with ``context`` (plus ``request`` and the nav)."""
    return templates.TemplateResponse(request, template, context or {}, status_code=status_code)


def settings_of(request: Request) -> Settings:
    """The settings the console was started with."""
    settings: Settings = request.app.state.settings
    return settings


def lake_of(request: Request) -> Lakehouse:
    """The console's one library connection (``lakehouse.connect`` of its settings).

    Shared by every request: the catalog client is opened on first use and kept.
    Engines that are not thread-safe (DuckDB) must be used under ``lake_lock(request)``.
    """
    lake: Lakehouse = request.app.state.lake
    return lake


def lake_lock(request: Request) -> Any:
    """A lock for what one request at a time may use on the shared connection."""
    return request.app.state.lake_lock
