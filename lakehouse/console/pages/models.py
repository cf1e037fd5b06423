"""Models: the registered models, their versions, metrics and lineage, with links
into MLflow (``ml.registry_view.model_views``, over the registry that `lakehouse
ml models` lists). When MLflow is not running, the page says so and how to start it.
A governed principal sees what ``ml.registry_view.governed_model_views`` gives it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lakehouse.console.failures import status_for
from lakehouse.console.web import lake_of, render, settings_of
from lakehouse.errors import LakehouseError
from lakehouse.ml.registry_view import governed_model_views

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> HTMLResponse:
    """Every registered model with its newest versions; the error and hint when MLflow
    cannot answer."""
    settings = settings_of(request)
    try:
        views, hidden = governed_model_views(lake_of(request))
    except LakehouseError as exc:
        context = {"title": "Models", "error": exc, "mlflow": settings.mlflow_uri,
                   "home": settings.home_dir}  # fmt: skip
        return render(request, "models.html", context, status_code=status_for(exc))
    context = {"title": "Models", "models": views, "mlflow": settings.mlflow_uri,
               "home": settings.home_dir, "hidden": hidden}  # fmt: skip
    return render(request, "models.html", context)
