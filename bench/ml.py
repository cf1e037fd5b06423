"""`python -m bench ml`: the machine-learning figures at sample scale 1.

On a stack of its own (S3, catalog, MLflow in a temporary home) with the scale-1
sample loaded:

* training time of each model, the whole call (read, fit, register, batch output)
  and, for the recommender, the fit alone for each algorithm;
* batch scoring rows/s of the recommender, against ranking the same customers by
  popularity alone (the same ranking code without a model) in the same run;
* the recommender endpoint's latency over 200 calls (one customer each), p50 and
  p95, against MLflow's own ``/ping`` on the same server;
* precision@10, recall@10 and MAP@10 on the hold-out for each algorithm against
  the most-popular baseline computed in the same run.

Results: bench/results/ml.json.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

RESULTS = Path(__file__).parent / "results"
SCALE = 1.0
CALLS = 200
K = 10


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def training(lake: Lakehouse) -> dict[str, Any]:
    """Whole training calls of both models, timed."""
    seg_s, seg = timed(lambda: lake.ml.train_segments())
    rec_s, rec = timed(lambda: lake.ml.train_recommendations(top_n=K))
    return {
        "segments_train_s": seg_s,
        "segments_k": seg.k,
        "segments_rows": sum(p.size for p in seg.profiles),
        "recommendations_train_s": rec_s,
        "recommendations_version": rec.model.version,
        "recommendations_rows": rec.rows,
    }


def recommender_figures(lake: Lakehouse) -> dict[str, Any]:
    """Fit time and hold-out metrics per algorithm, and batch scoring rows/s."""
    from lakehouse.ml import recommend
    from lakehouse.ml.recommender import NoModel, recommendations_table
    from lakehouse.ml.tracking import training_run

    with training_run(lake, "bench-ml", list(recommend.INPUTS)) as run:
        events = recommend.load_events(run, recommend.resolve_sources(None))
    data = recommend.interactions(events)
    figures: dict[str, Any] = {"customers": len(events.customers)}
    for algorithm in recommend.ALGORITHMS:
        options = recommend.Options(algorithm=algorithm)
        fit_s, scorer = timed(partial(recommend.fit, data, options))
        result = recommend.evaluate(events, 28, K, options)
        model_s, table = timed(partial(recommendations_table, data, scorer, events.customers, K))
        figures[algorithm] = {
            "fit_s": fit_s,
            "batch_rows": table.num_rows,
            "batch_s": model_s,
            "batch_rows_per_s": table.num_rows / model_s,
            "metrics": result.model,
            "baseline": result.baseline,
            "lift": {name: result.model[name] / result.baseline[name] for name in result.model},
            "holdout_customers": result.customers,
            "holdout_cutoff": result.cutoff.isoformat(),
        }
    pop_s, pop = timed(lambda: recommendations_table(data, NoModel(), events.customers, K))
    figures["popularity_batch_rows_per_s"] = pop.num_rows / pop_s
    return figures


def _post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
    return time.perf_counter() - started


def _get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
    return time.perf_counter() - started


def endpoint_latency(lake: Lakehouse) -> dict[str, Any]:
    """p50/p95 of ``CALLS`` one-customer invocations, and of ``/ping`` on the same server."""
    from lakehouse.ml.recommend import MODEL_NAME

    endpoint = lake.ml.serve(MODEL_NAME)
    try:
        customers = np.random.default_rng(7).integers(1, 20_000, CALLS)
        bodies = [
            json.dumps({"dataframe_records": [{"customer_id": int(c)}]}).encode() for c in customers
        ]
        _post(endpoint.invocations_url, bodies[0])  # the first call loads lazily: not counted
        calls = [_post(endpoint.invocations_url, body) for body in bodies]
        pings = [_get(f"{endpoint.url}/ping") for _ in range(CALLS)]
    finally:
        lake.ml.stop(MODEL_NAME)
    return {
        "calls": CALLS,
        "invocations_p50_ms": percentile(calls, 50) * 1000,
        "invocations_p95_ms": percentile(calls, 95) * 1000,
        "ping_p50_ms": percentile(pings, 50) * 1000,
        "ping_p95_ms": percentile(pings, 95) * 1000,
        "invocations_mean_ms": statistics.mean(calls) * 1000,
    }


def ml_bench(lake: Lakehouse) -> dict[str, Any]:
    from lakehouse.sample import load_sample

    load_s, _ = timed(lambda: load_sample(lake, scale=SCALE))
    before = os.getloadavg()[0]
    trained = training(lake)
    return {
        "scale": SCALE,
        "sample_load_s": load_s,
        # The machine's 1-minute load average before and after the training calls.
        "training_load_average": [before, os.getloadavg()[0]],
        "training": trained,
        "recommender": recommender_figures(lake),
        "endpoint": endpoint_latency(lake),
    }


def run_alone() -> dict[str, Any]:
    """S3, catalog and MLflow in a temporary home, the scale-1 sample, then the bench."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "mlflow"])
            with Lakehouse(settings) as lake:
                result = ml_bench(lake)
        finally:
            runtime.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ml.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("figure", "measured", "baseline", title="machine learning at scale 1")
    t, rec, ep = result["training"], result["recommender"], result["endpoint"]
    load = result.get("training_load_average", [float("nan")] * 2)
    table.add_row("train segments (features, k-means k by silhouette, batch output)",
                  f"{t['segments_train_s']:.1f} s",
                  f"k={t['segments_k']}; load average {load[0]:.1f} -> {load[1]:.1f}")  # fmt: skip
    table.add_row("train recommendations (hold-out, refit, register, batch output)",
                  f"{t['recommendations_train_s']:.1f} s", f"{t['recommendations_rows']:,} rows")  # fmt: skip
    for algorithm in ("item_knn", "als"):
        fig = rec[algorithm]
        table.add_row(f"{algorithm}: fit", f"{fig['fit_s']:.2f} s", "")
        table.add_row(f"{algorithm}: batch scoring", f"{fig['batch_rows_per_s']:,.0f} rows/s",
                      f"popularity only {rec['popularity_batch_rows_per_s']:,.0f} rows/s")  # fmt: skip
        for name, value in fig["metrics"].items():
            table.add_row(f"{algorithm}: {name}", f"{value:.4f}",
                          f"most-popular {fig['baseline'][name]:.4f} ({fig['lift'][name]:.2f}x)")  # fmt: skip
    table.add_row(f"endpoint, one customer per call ({ep['calls']} calls)",
                  f"p50 {ep['invocations_p50_ms']:.0f} ms, p95 {ep['invocations_p95_ms']:.0f} ms",
                  f"/ping p50 {ep['ping_p50_ms']:.1f} ms, p95 {ep['ping_p95_ms']:.1f} ms")  # fmt: skip
    console.print(table)
