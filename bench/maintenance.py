"""`python -m bench maintenance [APPENDS]`: the 14-query suite before and after `optimize`.

``web.clickstream`` (read by 7 of the 14 queries) is written by ``APPENDS`` small
appends (default 1,000, one snapshot and one data file each), as a streaming
writer leaves it; the rest of the sample is loaded once. The suite
(``sample_data.queries``) runs on DuckDB and Trino before and after
``lake.optimize`` compacts the table (median of ``REPEATS`` runs after a warm-up);
the baseline, measured in the same run, is the same table written in one append.
Figures: fragmented / optimized per query and their geometric mean, the optimize
report, and the time the appends took. Results: bench/results/maintenance.json.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from sample_data.queries import QUERIES, query_for

RESULTS = Path(__file__).parent / "results"
SCALE = 0.2
APPENDS = 1000
REPEATS = 3
ENGINES = ("duckdb", "trino")
FRAGMENTED = "web.clickstream"


def suite_seconds(lake: Lakehouse) -> dict[str, dict[str, float]]:
    """engine -> query -> median seconds."""
    figures: dict[str, dict[str, float]] = {}
    for engine in ENGINES:
        figures[engine] = {}
        for name in QUERIES:
            sql = query_for(name, engine)
            lake.sql(sql, engine=engine)  # warm-up: plans, caches, JIT
            samples = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                lake.sql(sql, engine=engine)
                samples.append(time.perf_counter() - started)
            figures[engine][name] = statistics.median(samples)
    return figures


def rewrite_as_appends(lake: Lakehouse, name: str, appends: int) -> float:
    """Drop ``name`` and write its rows back in ``appends`` commits; seconds taken."""
    rows = lake.table(name).scan().to_arrow()
    lake.catalog.purge_table(name)
    table = lake.catalog.create_table(name, schema=rows.schema)
    size = math.ceil(rows.num_rows / appends)
    started = time.perf_counter()
    for offset in range(0, rows.num_rows, size):
        table.append(rows.slice(offset, size))
    return time.perf_counter() - started


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def ratios(slow: dict[str, dict[str, float]], fast: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        engine: {
            "per_query": {q: slow[engine][q] / fast[engine][q] for q in QUERIES},
            "geomean": geomean([slow[engine][q] / fast[engine][q] for q in QUERIES]),
        }
        for engine in ENGINES
    }


def run_alone(appends: int = APPENDS) -> dict[str, Any]:
    """The figures on a throwaway stack (S3, catalog, Trino) in a temporary home."""
    from lakehouse.sample import load_sample

    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "trino"])
            with Lakehouse(settings) as lake:
                load_sample(lake, scale=SCALE)
                baseline = suite_seconds(lake)  # the table as one append wrote it
                append_s = rewrite_as_appends(lake, FRAGMENTED, appends)
                fragmented = suite_seconds(lake)
                report = lake.optimize(FRAGMENTED)
                optimized = suite_seconds(lake)
                rows = lake.sql(f"SELECT count(*) AS n FROM {FRAGMENTED}").column("n")[0]
        finally:
            runtime.down()
    result = {
        "scale": SCALE, "appends": appends, "repeats": REPEATS, "table": FRAGMENTED,
        "rows": pa.scalar(rows).as_py(), "appends_s": append_s,
        "optimize": report.as_dict(),
        "seconds": {"one_append": baseline, "fragmented": fragmented, "optimized": optimized},
        "fragmented_over_optimized": ratios(fragmented, optimized),
        "optimized_over_one_append": ratios(optimized, baseline),
        "load_average_1min_after": os.getloadavg()[0],
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "maintenance.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=f"{result['table']} written by {result['appends']:,} appends: "
                  "query seconds before / after optimize (baseline: one append)")  # fmt: skip
    for column in ("engine", "query", "fragmented s", "optimized s", "one append s", "ratio"):
        table.add_column(column)
    seconds = result["seconds"]
    for engine, figures in result["fragmented_over_optimized"].items():
        for name, ratio in figures["per_query"].items():
            table.add_row(engine, name, f"{seconds['fragmented'][engine][name]:.3f}",
                          f"{seconds['optimized'][engine][name]:.3f}",
                          f"{seconds['one_append'][engine][name]:.3f}", f"{ratio:.2f}")  # fmt: skip
        table.add_row(engine, "geometric mean", "", "", "", f"{figures['geomean']:.2f}")
    console.print(table)
    report = result["optimize"]
    console.print(f"optimize: {report['files_before']} -> {report['files_after']} data files in "
                  f"{report['seconds']:.1f} s; {result['appends']} appends took "
                  f"{result['appends_s']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    print_table(Console(), run_alone(int(sys.argv[1]) if len(sys.argv) > 1 else APPENDS))
