"""`python -m bench athena`: the Athena API against Trino asked directly, same run.

A throwaway stack (S3, catalog, Trino, aws) in a temporary home, the retail sample
at ``SCALE``. Figures, each with its baseline measured in the same run:

- ``select_1``: boto3 StartQueryExecution, GetQueryExecution polled every 20 ms
  until SUCCEEDED, GetQueryResults (median of ``REPEATS``), against
  ``lake.sql("SELECT 1", engine="trino", native=True)``.
- ``results_100k``: GetQueryResults paging all 100,000 rows (1,000 a page) of a
  finished query, rows/s, against fetching the same query's rows from Trino with
  its DB-API client.
- ``suite``: awswrangler ``read_sql_query`` (``ctas_approach=False``, in its own
  environment) on the 14-query suite (the text lakehouse's translation gives Trino,
  since Athena's SQL is Trino's), each query timed inside one process, against
  ``lake.sql(q, engine="trino")`` in this process and against the
  ``lakehouse query --engine trino`` CLI (a process per query, as users run it).

Results: bench/results/athena.json.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.config import Settings
from lakehouse.env import environment
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from lakehouse.sample import load_sample
from sample_data.queries import QUERIES, query_for

RESULTS = Path(__file__).parent / "results"
SCALE = 0.2
REPEATS = 15
ROWS = 100_000
# Trino's sequence() stops at 10,000 entries: 100 x 1,000 rows.
BIG_QUERY = ("SELECT a * 1000 + b AS x, 'row-' || CAST(a * 1000 + b AS varchar) AS label, "
             "(a * 1000 + b) * 0.5e0 AS half FROM UNNEST(sequence(0, 99)) AS s(a) "
             "CROSS JOIN UNNEST(sequence(1, 1000)) AS t(b)")  # fmt: skip
WRANGLER = """
import json, sys, time
import awswrangler as wr
times = {}
for name, sql in json.loads(sys.argv[1]).items():
    started = time.perf_counter()
    frame = wr.athena.read_sql_query(sql, database="retail", ctas_approach=False)
    times[name] = [time.perf_counter() - started, len(frame)]
print(json.dumps(times))
"""


def median_s(action: Callable[[], Any], repeats: int = REPEATS) -> float:
    action()  # warm-up, not counted
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def athena_round_trip(athena: Any, sql: str) -> list[dict[str, Any]]:
    execution_id = athena.start_query_execution(QueryString=sql)["QueryExecutionId"]
    while True:
        state = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        if state["Status"]["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.02)
    assert state["Status"]["State"] == "SUCCEEDED", state["Status"]
    return athena.get_query_results(QueryExecutionId=execution_id)["ResultSet"]["Rows"]


def page_all(athena: Any, execution_id: str) -> int:
    rows, kwargs = 0, {"QueryExecutionId": execution_id, "MaxResults": 1000}
    while True:
        answer = athena.get_query_results(**kwargs)
        rows += len(answer["ResultSet"]["Rows"])
        if "NextToken" not in answer:
            return rows
        kwargs["NextToken"] = answer["NextToken"]


def measure(settings: Settings, lake: Lakehouse) -> dict[str, Any]:
    athena = boto3.client("athena", endpoint_url=settings.aws_uri, region_name=settings.region,
                          aws_access_key_id=settings.access_key,
                          aws_secret_access_key=settings.secret_key)  # fmt: skip
    select_1 = {"athena_s": median_s(lambda: athena_round_trip(athena, "SELECT 1")),
                "trino_s": median_s(lambda: lake.sql("SELECT 1", engine="trino", native=True))}  # fmt: skip
    execution_id = athena.start_query_execution(QueryString=BIG_QUERY)["QueryExecutionId"]
    while athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"][
        "State"
    ] in ("QUEUED", "RUNNING"):
        time.sleep(0.05)
    assert page_all(athena, execution_id) == ROWS + 1  # every row, and the header
    paged = median_s(lambda: page_all(athena, execution_id), repeats=3)

    def trino_fetch() -> None:
        cursor = lake.trino().cursor()
        cursor.execute(BIG_QUERY)
        assert len(cursor.fetchall()) == ROWS

    direct = median_s(trino_fetch, repeats=3)
    results = {"athena_rows_per_s": ROWS / paged, "trino_rows_per_s": ROWS / direct,
               "athena_s": paged, "trino_s": direct}  # fmt: skip
    return {"select_1": select_1, "results_100k": results, "suite": suite(settings, lake)}


def suite(settings: Settings, lake: Lakehouse) -> dict[str, Any]:
    from tests.integration.aws_clients import run_python, wrangler_python

    texts = {name: query_for(name, "trino") for name in QUERIES}
    env = environment(settings)
    native = {name: trino_text(lake, sql) for name, sql in texts.items()}  # Athena's SQL is Trino's
    wrangler = json.loads(run_python(WRANGLER, env, python=wrangler_python(settings),
                                     timeout=1800, args=[json.dumps(native)]))  # fmt: skip
    library, cli = {}, {}
    for name, sql in texts.items():
        library[name] = median_s(lambda sql=sql: lake.sql(sql, engine="trino"), repeats=1)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lakehouse.cli", "query", "--engine", "trino", sql],
                       env={**os.environ, **env}, check=True, capture_output=True, timeout=600)  # fmt: skip
        cli[name] = time.perf_counter() - started
    per_query = {name: {"awswrangler_s": wrangler[name][0], "rows": wrangler[name][1],
                        "lake_sql_trino_s": library[name], "cli_trino_s": cli[name]}
                 for name in texts}  # fmt: skip
    return {"queries": per_query,
            "geomean_vs_lake_sql": geomean([q["awswrangler_s"] / q["lake_sql_trino_s"] for q in per_query.values()]),
            "geomean_vs_cli": geomean([q["awswrangler_s"] / q["cli_trino_s"] for q in per_query.values()])}  # fmt: skip


def trino_text(lake: Lakehouse, sql: str) -> str:
    """The suite's text (DuckDB's dialect) as lakehouse translates it for Trino."""
    from lakehouse.engines.translate import parse, referenced_tables, translate

    schema = lake._lake_schema(referenced_tables(parse(sql, "trino")), {})
    return translate(sql, "trino", schema=schema).sql


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def run_alone() -> dict[str, Any]:
    """The stack in a temporary home, the sample loaded, the figures; written to athena.json."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog", "trino", "aws"])
            with Lakehouse(settings) as lake:
                load_sample(lake, scale=SCALE)
                result = measure(settings, lake)
        finally:
            runtime.down()
    s1, big = result["select_1"], result["results_100k"]
    result["ratios"] = {
        "select_1_athena_vs_trino": s1["athena_s"] / s1["trino_s"],
        "results_100k_rows_per_s_vs_trino": big["athena_rows_per_s"] / big["trino_rows_per_s"],
        "suite_awswrangler_vs_lake_sql": result["suite"]["geomean_vs_lake_sql"],
        "suite_awswrangler_vs_cli": result["suite"]["geomean_vs_cli"],
    }
    result |= {"scale": SCALE, "repeats": REPEATS, "load_average": os.getloadavg(),
               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "athena.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("figure", "Athena API", "baseline", "ratio", title="athena")
    s1, big, ratios = result["select_1"], result["results_100k"], result["ratios"]
    table.add_row("SELECT 1 round trip", f"{s1['athena_s'] * 1000:.0f} ms",
                  f"Trino {s1['trino_s'] * 1000:.0f} ms", f"{ratios['select_1_athena_vs_trino']:.1f}x")  # fmt: skip
    table.add_row("GetQueryResults, 100k rows", f"{big['athena_rows_per_s']:,.0f} rows/s",
                  f"Trino {big['trino_rows_per_s']:,.0f} rows/s",
                  f"{ratios['results_100k_rows_per_s_vs_trino']:.2f}x")  # fmt: skip
    table.add_row("14-query suite (geomean)", "awswrangler", "lake.sql trino",
                  f"{ratios['suite_awswrangler_vs_lake_sql']:.1f}x")  # fmt: skip
    table.add_row("", "awswrangler", "lakehouse query --engine trino",
                  f"{ratios['suite_awswrangler_vs_cli']:.2f}x")  # fmt: skip
    console.print(table)
