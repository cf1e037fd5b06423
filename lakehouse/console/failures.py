"""Errors as pages: a LakehouseError shows its message and its Hint, never a traceback.

``status_for`` maps the kind of error to an HTTP status: 404 for something
that does not exist, 403 for what the governance policy refuses, 503 for a
service that is down, 400 for bad input.
Paths under ``/api/`` answer JSON ``{"error": ..., "hint": ...}`` instead.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from lakehouse.console.web import hint_for, render, settings_of
from lakehouse.errors import (
    AccessDeniedError,
    LakehouseError,
    ModelNotFoundError,
    ServiceNotRunningError,
    SnapshotNotFoundError,
    TableNotFoundError,
)

log = logging.getLogger("lakehouse.console")

NOT_FOUND = (TableNotFoundError, SnapshotNotFoundError, ModelNotFoundError)


def status_for(error: LakehouseError) -> int:
    """404 for a missing table, snapshot or model; 403 for a refusal of the policy;
    503 for a service down; else 400."""
    if isinstance(error, NOT_FOUND):
        return 404
    if isinstance(error, AccessDeniedError):
        return 403
    if isinstance(error, ServiceNotRunningError):
        return 503
    return 400


def error_response(
    request: Request, status: int, message: str, hint: str | None, title: str | None = None
) -> Response:
    """The error page (or JSON under /api/) with ``message`` and ``hint``."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, "hint": hint}, status_code=status)
    context = {"title": title or _TITLES.get(status, "Error"), "message": message, "hint": hint,
               "status": status}  # fmt: skip
    return render(request, "error.html", context, status_code=status)


_TITLES = {400: "Bad request", 403: "Refused", 404: "Not found", 503: "Service unavailable",
           500: "Console error"}  # fmt: skip


def install_error_pages(app: FastAPI) -> None:
    """Register the handlers: LakehouseError, unknown URL, bad parameters, anything else."""

    @app.exception_handler(LakehouseError)
    async def lakehouse_error(request: Request, exc: LakehouseError) -> Response:
        hint = hint_for(settings_of(request), exc)
        return error_response(request, status_for(exc), exc.message, hint)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            message = f"There is no page at {request.url.path}."
            hint = exc.detail if exc.detail != "Not Found" else "Start again from the Overview."
            return error_response(request, 404, message, hint)
        return error_response(request, exc.status_code, str(exc.detail), None)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(_problem(error) for error in exc.errors())
        return error_response(request, 400, f"Bad request parameters: {problems}.",
                              "Fix the address, or start again from the page's own links.")  # fmt: skip

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            request, 500, f"The console failed unexpectedly ({type(exc).__name__}). "
            "This is a lakehouse bug.",
            "See `lakehouse logs console` for the details, and report it.",
        )  # fmt: skip


def _problem(error: dict[str, object]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "path"))  # type: ignore[attr-defined]
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"
