"""`lakehouse ml`: train models on the lake, list the registry, serve a model."""

from __future__ import annotations

from typing import Any

import click

from lakehouse.cli.common import friendly_errors, lake_of, out, settings_of
from lakehouse.cli.display import print_table


@click.group()
def ml() -> None:
    """Machine learning on the lake: training, the MLflow registry, live endpoints."""


@ml.group()
def train() -> None:
    """Train a model on the lake's tables and register it in MLflow."""


@train.command()
@click.option("--k-min", type=int, default=3, show_default=True, help="Smallest k tried.")
@click.option("--k-max", type=int, default=8, show_default=True, help="Largest k tried.")
@click.pass_context
@friendly_errors
def segments(ctx: click.Context, k_min: int, k_max: int) -> None:
    """Customer segments (features, clustering, ml.customer_segments); k by silhouette."""
    with lake_of(settings_of(ctx)) as lake:
        result = lake.ml.train_segments(k_min=k_min, k_max=k_max)
    _print_result(result)


@train.command()
@click.option("--top-n", type=int, default=10, show_default=True, help="Products per customer.")
@click.option("--holdout-days", type=int, default=28, show_default=True,
              help="Days of the latest orders held out for evaluation.")  # fmt: skip
@click.option("--algorithm", type=click.Choice(["item_knn", "als"]), default="item_knn",
              show_default=True, help="implicit's item-to-item cosine kNN, or its ALS.")  # fmt: skip
@click.pass_context
@friendly_errors
def recommendations(ctx: click.Context, top_n: int, holdout_days: int, algorithm: str) -> None:
    """Product recommendations (implicit feedback, ml.product_recommendations); prints
    hold-out metrics against the most-popular baseline."""
    with lake_of(settings_of(ctx)) as lake:
        result = lake.ml.train_recommendations(
            top_n=top_n, holdout_days=holdout_days, algorithm=algorithm
        )
    _print_result(result)


def _print_result(result: Any) -> None:
    out.print(str(result), soft_wrap=True, markup=False, highlight=False)


@ml.command()
@click.argument("name", required=False)
@click.option("--version", type=int, help="Model version (default: the latest).")
@click.option("--port", type=int, help="Port (default: the first free from ml_serve_port).")
@click.option("--stop", is_flag=True, help="Stop NAME's endpoint (every endpoint without NAME).")
@click.pass_context
@friendly_errors
def serve(
    ctx: click.Context, name: str | None, version: int | None, port: int | None, stop: bool
) -> None:
    """Start a live endpoint for registered model NAME; prints its invocations URL."""
    lake = lake_of(settings_of(ctx))
    if stop:
        stopped = lake.ml.stop(name)
        out.print(f"stopped: {', '.join(stopped)}" if stopped else "no endpoint was running")
        return
    if name is None:
        raise click.UsageError("NAME is required (or use --stop).")
    endpoint = lake.ml.serve(name, version, port)
    out.print(
        f"{endpoint.name} version {endpoint.version} serves at {endpoint.invocations_url}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


@ml.command()
@click.argument("name", required=False)
@click.pass_context
@friendly_errors
def stop(ctx: click.Context, name: str | None) -> None:
    """Stop the endpoint of NAME (every endpoint without NAME)."""
    stopped = lake_of(settings_of(ctx)).ml.stop(name)
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "no endpoint was running")


@ml.command()
@click.pass_context
@friendly_errors
def models(ctx: click.Context) -> None:
    """Registered models, their latest version and the endpoint serving them."""
    lake = lake_of(settings_of(ctx))
    serving = {e.name: e for e in lake.ml.endpoints()}
    rows = []
    for model in lake.ml.models():
        endpoint = serving.get(model.name)
        where = f"v{endpoint.version} at {endpoint.invocations_url}" if endpoint else ""
        rows.append([model.name, str(model.latest_version), model.run_id, where])
    print_table(["model", "latest version", "run", "endpoint"], rows)
