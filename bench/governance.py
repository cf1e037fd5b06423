"""`python -m bench governance`: what the policy costs a query, per engine.

The 14-query suite (``sample_data.queries``) runs as the admin (the query as it is
today) and as a governed principal (grants on every table of ``retail`` and ``web``,
a hash mask on ``retail.customers.email``, a row filter on ``web.clickstream``)
through ``lake.sql``: the governed run pays reading the policy, planning, the
catalog lookups of each table's schema, the rewrite and its audit records. Median of
``REPEATS`` runs each after a warm-up, alternating admin and governed runs so load
from elsewhere falls on both; the ratio is governed / admin per query, and their
geometric mean. DuckDB only by default; ``python -m bench governance trino spark``
adds Trino (the same coordinator as both users: the governed one under the rules
file lakehouse writes from the policy, the admin with every privilege) and Spark
(the rewrite, as on DuckDB); servers' start-ups are not timed. Results:
bench/results/governance.json.
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

from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.governance import store
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
)
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from sample_data.queries import QUERIES

RESULTS = Path(__file__).parent / "results"
REPEATS = 5
SCALE = 0.2
PRINCIPAL = "bench_analyst"
POLICY = Policy(
    grants=(
        Grant(principal=PRINCIPAL, permissions=(Permission.SELECT,),
              resource=Resource(namespace="retail", all_tables=True)),
        Grant(principal=PRINCIPAL, permissions=(Permission.SELECT,),
              resource=Resource(data_cells_filter="known_sessions")),
    ),
    data_cells_filters=(DataCellsFilter(name="known_sessions", table="web.clickstream",
                                        row_filter="session_id IS NOT NULL"),),
    masks=(ColumnMask(table="retail.customers", column="email", principal=PRINCIPAL, kind="hash"),),
)  # fmt: skip


def paired_medians(lake: Lakehouse, sql: str, engine: str) -> tuple[float, float]:
    """Median seconds as the admin and as the governed principal, runs alternating."""
    lake.sql(sql, engine=engine)  # warm-up: plans, caches
    lake.sql(sql, engine=engine, principal=PRINCIPAL)
    admin: list[float] = []
    governed: list[float] = []
    for _ in range(REPEATS):
        for samples, principal in ((admin, None), (governed, PRINCIPAL)):
            started = time.perf_counter()
            lake.sql(sql, engine=engine, principal=principal)
            samples.append(time.perf_counter() - started)
    return statistics.median(admin), statistics.median(governed)


def overhead(lake: Lakehouse, engine: str) -> dict[str, Any]:
    per_query = {}
    for name, sql in QUERIES.items():
        admin, governed = paired_medians(lake, sql, engine)
        per_query[name] = {"admin_s": admin, "governed_s": governed, "ratio": governed / admin}
    geomean = math.exp(statistics.fmean(math.log(q["ratio"]) for q in per_query.values()))
    return {"per_query": per_query, "geomean_ratio_governed_to_admin": geomean}


def run_alone(engines: tuple[str, ...] = ("duckdb",)) -> dict[str, Any]:
    """The figures on a throwaway stack in a temporary home (sample at ``SCALE``)."""
    from lakehouse.sample import load_sample

    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        os.environ["LAKEHOUSE_GOVERNANCE_ENABLED"] = "true"
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", *[e for e in engines if e in ("trino", "spark")]])
            with Lakehouse(settings) as lake:
                load_sample(lake, scale=SCALE)
                store.update(settings, lambda _: POLICY)
                result = {
                    "scale": SCALE, "repeats": REPEATS, "queries": len(QUERIES),
                    "load_average_1min_before": os.getloadavg()[0],
                    "engines": {engine: overhead(lake, engine) for engine in engines},
                    "load_average_1min_after": os.getloadavg()[0],
                }  # fmt: skip
        finally:
            runtime.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "governance.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="Governed query / the same query as admin (median seconds)")
    for column in ("engine", "query", "admin s", "governed s", "ratio"):
        table.add_column(column)
    for engine, figures in result["engines"].items():
        for name, q in figures["per_query"].items():
            table.add_row(engine, name, f"{q['admin_s']:.3f}", f"{q['governed_s']:.3f}",
                          f"{q['ratio']:.2f}")  # fmt: skip
        table.add_row(engine, "geometric mean", "", "",
                      f"{figures['geomean_ratio_governed_to_admin']:.2f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    chosen = ("duckdb", *[e for e in ("trino", "spark") if e in sys.argv[1:]])
    print_table(Console(), run_alone(chosen))
