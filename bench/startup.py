"""CLI start-up: `lakehouse --help` and `lakehouse query` as a user runs them.

Each command is a fresh process, timed from spawn to exit, median of ``RUNS``
after one unmeasured run (which fills the OS page cache and records the DuckDB
extensions' signature check). The commands take turns, so a burst of load from
elsewhere on the machine falls on every command alike. Each command's CPU time
(user + system, from the OS's accounting of finished children) is reported too:
on a busy machine it shows the work a command does without the waiting. Compared in the same run with ``python -c pass``
and plain DuckDB (``import duckdb; duckdb.sql('select 1')``). Results go to
bench/results/startup.json. `python -m bench startup` runs only this part and
the DuckDB-over-Iceberg figures (bench/results/duckdb_iceberg.json) against a
throwaway S3 + catalog stack holding the scale-1 sample.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RUNS = 15
RESULTS = Path(__file__).parent / "results"
TARGETS_S = {"help": 0.3, "query_select_1": 0.5}


def lakehouse_command() -> list[str]:
    """The installed `lakehouse` script next to this Python, else ``python -m lakehouse.cli``."""
    script = Path(sys.executable).parent / "lakehouse"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lakehouse.cli"]


def commands() -> dict[str, list[str]]:
    cli = lakehouse_command()
    return {
        "python_pass": [sys.executable, "-c", "pass"],
        "plain_duckdb": [sys.executable, "-c", "import duckdb; duckdb.sql('select 1').fetchall()"],
        "help": [*cli, "--help"],
        "query_select_1": [*cli, "query", "SELECT 1"],
        "query_lake_table": [*cli, "query", "SELECT count(*) FROM retail.orders"],
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_seconds(
    named: dict[str, list[str]], cwd: Path, runs: int = RUNS
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each command, commands taking turns; each run must succeed."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in named}
    for round_number in range(runs + 1):
        for name, command in named.items():
            started, cpu = time.perf_counter(), _children_cpu()
            subprocess.run(command, cwd=cwd, check=True, capture_output=True)
            if round_number:  # the first round only warms up
                times[name].append((time.perf_counter() - started, _children_cpu() - cpu))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in times.items()
    }


def startup_bench(cwd: Path) -> dict[str, Any]:
    """Medians in seconds, and ratios to ``python -c pass`` and to plain DuckDB.

    ``cwd`` is where the commands run: inside the project of a running stack
    (the environment's LAKEHOUSE_* variables may also point at it).
    """
    medians = median_seconds(commands(), cwd)
    python, duckdb = medians["python_pass"][0], medians["plain_duckdb"][0]
    figures = {
        name: {
            "median_s": wall,
            "median_cpu_s": cpu,
            "vs_python_pass": wall / python,
            "vs_plain_duckdb": wall / duckdb,
        }
        for name, (wall, cpu) in medians.items()
    }
    return {
        "runs_per_command": RUNS,
        "figures": figures,
        "targets_s": TARGETS_S,
        "met": {name: medians[name][0] <= limit for name, limit in TARGETS_S.items()},
    }


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=2))


def run_alone(queries: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`python -m bench startup`: start-up and DuckDB-over-Iceberg figures on a throwaway stack."""
    from bench.duckdb_iceberg import bench_queries
    from lakehouse import Lakehouse, load_settings
    from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
    from lakehouse.sample import load_sample

    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog"])
            with Lakehouse(settings) as lake:
                load_sample(lake, scale=1.0)
                duckdb_figures = bench_queries(lake, queries)
            result = startup_bench(Path(home))
        finally:
            runtime.down()
    write_results(result)
    (RESULTS / "duckdb_iceberg.json").write_text(json.dumps(duckdb_figures, indent=2))
    return result, duckdb_figures
