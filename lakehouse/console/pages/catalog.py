"""Catalog (the Glue console): namespaces, then tables, then one table."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lakehouse.console.web import lake_of, render

router = APIRouter()


@router.get("/catalog", response_class=HTMLResponse)
def namespaces(request: Request) -> HTMLResponse:
    """Every namespace of the catalog."""
    lake = lake_of(request)
    names = sorted(".".join(ns) for ns in lake.catalog.list_namespaces())
    return render(request, "catalog_namespaces.html", {"title": "Catalog", "namespaces": names})
