"""`python -m bench console`: page load times of the console at catalog scale, and its memory.

A throwaway stack (S3, catalog, console) gets a namespace of 1,000 tables and
one table with 1,000 snapshots (one-row appends, 50 to a catalog commit), the
worst case for a table page: 1,000 manifests, one data file each. Each page is fetched over
HTTP from the running console (its whole answer read), ``REPEATS`` times after
one warm-up; p50 and p95 are reported. Baselines, measured in the same run:
for the table list, pyiceberg's own ``list_tables`` of that namespace (the one
catalog request the page makes); for the table page, pyiceberg's
``load_table`` of that table (the metadata read the page cannot avoid). The
console's resident memory (its process tree) is read after the loads.
The browser's rendering time is not part of the figures.

Results: bench/results/console.json.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env, tree_memory_mb

RESULTS = Path(__file__).parent / "results"
TABLES = 1_000
SNAPSHOTS = 1_000
SNAPSHOTS_PER_COMMIT = 50
REPEATS = 30
MANY, DEEP = "bench_many", "bench_deep"


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds of ``samples`` (seconds)."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000}


def timings(action: Callable[[], Any], repeats: int = REPEATS) -> list[float]:
    """Seconds of each of ``repeats`` calls, after one uncounted warm-up call."""
    action()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def fetch(url: str) -> Callable[[], None]:
    def get() -> None:
        with urllib.request.urlopen(url, timeout=120) as answer:
            if answer.status != 200:
                raise RuntimeError(f"{url}: HTTP {answer.status}")
            answer.read()

    return get


def build_catalog(lake: Lakehouse, console: Console, tables: int, snapshots: int) -> None:
    """A namespace of ``tables`` empty tables, and a table with ``snapshots`` snapshots."""
    catalog = lake.catalog
    schema = pa.schema([("id", pa.int64()), ("label", pa.string())])
    catalog.create_namespace_if_not_exists(MANY)
    with console.status(f"creating {tables:,} tables"):
        for i in range(tables):
            catalog.create_table(f"{MANY}.t{i:04}", schema=schema)
    catalog.create_namespace_if_not_exists(DEEP)
    table = catalog.create_table(f"{DEEP}.history", schema=schema)
    with console.status(f"committing {snapshots:,} snapshots"):
        for first in range(0, snapshots, SNAPSHOTS_PER_COMMIT):
            # Each append is a snapshot of its own (its own data file, manifest and
            # manifest list); a batch shares one catalog commit, so the growing
            # metadata file is rewritten 20 times, not 1,000.
            with table.transaction() as batch:
                for i in range(first, min(first + SNAPSHOTS_PER_COMMIT, snapshots)):
                    batch.append(pa.table({"id": [i], "label": [f"row {i}"]}, schema=schema))
    kept = len(catalog.load_table(f"{DEEP}.history").snapshots())
    if kept != snapshots:
        raise RuntimeError(f"{DEEP}.history has {kept} snapshots, not {snapshots}")


def measure(settings: Settings, lake: Lakehouse, runtime: LocalRuntime) -> dict[str, Any]:
    base = f"http://127.0.0.1:{settings.console_port}"
    pages = {
        "catalog_list": f"/catalog/{MANY}",
        "catalog_list_page_10": f"/catalog/{MANY}?page=10",
        "namespaces": "/catalog",
        "table_page": f"/catalog/{DEEP}/history",
        "table_page_at_first_snapshot": None,
    }
    first = min(lake.table(f"{DEEP}.history").snapshots(), key=lambda s: s.timestamp_ms)
    pages["table_page_at_first_snapshot"] = (
        f"/catalog/{DEEP}/history?snapshot={first.snapshot_id}&history_page=20"
    )
    figures = {
        name: percentiles(timings(fetch(base + path))) for name, path in pages.items() if path
    }
    baselines = {
        "pyiceberg_list_tables": percentiles(timings(lambda: lake.catalog.list_tables(MANY))),
        "pyiceberg_load_table": percentiles(
            timings(lambda: lake.catalog.load_table(f"{DEEP}.history"))
        ),
    }
    pid = runtime.pid("console")
    return {"pages": figures, "baselines": baselines,
            "console_rss_mib": tree_memory_mb(pid) if pid else None}  # fmt: skip


def ratios(result: dict[str, Any]) -> dict[str, float]:
    pages, base = result["pages"], result["baselines"]
    listing = base["pyiceberg_list_tables"]["p50_ms"]
    loading = base["pyiceberg_load_table"]["p50_ms"]
    return {
        "list_page_vs_list_tables_p50": pages["catalog_list"]["p50_ms"] / listing,
        "table_page_vs_load_table_p50": pages["table_page"]["p50_ms"] / loading,
    }


def run_alone(tables: int = TABLES, snapshots: int = SNAPSHOTS) -> dict[str, Any]:
    """S3, catalog and console in a temporary home, the catalog built, then the loads.

    Building 1,000 snapshots takes 20-30 minutes on a loaded 2-core machine (each
    commit rewrites a manifest list of every manifest so far): fewer can be asked.
    """
    console = Console()
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "console"])
            with Lakehouse(settings) as lake:
                started = time.perf_counter()
                build_catalog(lake, console, tables, snapshots)
                built = time.perf_counter() - started
                with console.status("loading pages"):
                    result = measure(settings, lake, runtime)
        finally:
            runtime.down()
    result |= {"ratios": ratios(result), "tables": tables, "snapshots": snapshots,
               "repeats": REPEATS, "build_s": built, "load_average": os.getloadavg(),
               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "console.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("page (HTTP, whole answer)", "p50", "p95", title="console")
    for name, figure in {**result["pages"], **result["baselines"]}.items():
        table.add_row(name, f"{figure['p50_ms']:.0f} ms", f"{figure['p95_ms']:.0f} ms")
    for name, value in result["ratios"].items():
        table.add_row(name, f"{value:.1f}x", "")
    rss = result["console_rss_mib"]
    table.add_row("console resident memory", f"{rss:.0f} MiB" if rss else "unknown", "")
    console.print(table)
