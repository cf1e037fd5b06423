"""Models: the registered models, their versions, metrics and lineage, with links
into MLflow (``ml.registry_view.model_views``, over the registry that `lakehouse
ml models` lists). When MLflow is not running, the page says so and how to start it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lakehouse.console.failures import status_for
from lakehouse.console.web import render, settings_of
from lakehouse.errors import LakehouseError
from lakehouse.ml.registry_view import model_views

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> HTMLResponse:
    """Every registered model with its newest versions; the error and hint when MLflow
    cannot answer."""
    settings = settings_of(request)
    try:
        views = model_views(settings)
    except LakehouseError as exc:
        context = {"title": "Models", "error": exc, "mlflow": settings.mlflow_uri,
                   "home": settings.home_dir}  # fmt: skip
        return render(request, "models.html", context, status_code=status_for(exc))
    context = {"title": "Models", "models": views, "mlflow": settings.mlflow_uri,
               "home": settings.home_dir}  # fmt: skip
    return render(request, "models.html", context)
