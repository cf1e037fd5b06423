"""``create_app(settings)``: the console's FastAPI app, one router per page module."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from lakehouse.console.charts import plotly_js_path
from lakehouse.console.failures import error_response, install_error_pages
from lakehouse.console.guard import REFUSAL_HINT, refusal
from lakehouse.console.web import STATIC_DIR

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from lakehouse.config import Settings

# Modules under lakehouse/console/pages/, each with ``router = APIRouter()``.
PAGES: tuple[str, ...] = ("overview", "catalog", "query", "zero_etl", "models")

# Headers on every answer: no framing by other sites (clickjacking), no MIME sniffing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(settings: Settings) -> FastAPI:
    """The console for the lake house ``settings`` describe (nothing is contacted yet).

    Pages are the routers of ``PAGES``; ``/healthz`` answers ``ok``; static files
    are under ``/static`` with plotly.js at ``/static/vendor/plotly.min.js``.
    """
    from lakehouse.client import Lakehouse

    app = FastAPI(title="lakehouse console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.lake = Lakehouse(settings)
    app.state.lake_lock = threading.Lock()
    install_error_pages(app)
    _install_guard(app, settings.bind_host)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript",
                            headers={"Cache-Control": "max-age=86400"})  # fmt: skip

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for page in PAGES:
        module = importlib.import_module(f"lakehouse.console.pages.{page}")
        app.include_router(module.router)
    return app


def _install_guard(app: FastAPI, bind_host: str) -> None:
    """Refuse foreign hosts and cross-site changes (see ``guard.py``); add security headers."""

    @app.middleware("http")
    async def same_origin(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        why = refusal(request.method, request.headers, bind_host, request.url.scheme)
        if why is not None:
            response = error_response(request, 403, why, REFUSAL_HINT)
        else:
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
