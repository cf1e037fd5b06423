"""A report written for AWS: revenue per customer through Athena, tables from Glue.

It knows nothing about lakehouse: plain boto3 clients with no endpoint argument,
as on AWS; the AWS_ENDPOINT_URL_ATHENA / _GLUE variables (set by `lakehouse env`
or the pytest plugin's ``aws_env``) send the calls to lakehouse's ``aws`` service.
"""

from __future__ import annotations

import time

import boto3

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


class ReportFailed(RuntimeError):
    """Athena said the query failed; carries Athena's StateChangeReason."""


def run_query(sql: str, database: str, poll_seconds: float = 0.2) -> list[list[str | None]]:
    """Rows of ``sql`` (header row dropped) as Athena returns them: strings, None for NULL."""
    athena = boto3.client("athena")
    execution_id = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": database}
    )["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)
        status = execution["QueryExecution"]["Status"]
        if status["State"] in TERMINAL:
            break
        time.sleep(poll_seconds)
    if status["State"] != "SUCCEEDED":
        raise ReportFailed(status.get("StateChangeReason", status["State"]))
    rows: list[list[str | None]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        for row in page["ResultSet"]["Rows"]:
            rows.append([cell.get("VarCharValue") for cell in row["Data"]])
    return rows[1:]  # Athena's first row of a SELECT is the header


def revenue_by_customer(database: str, table: str = "orders") -> list[tuple[str, float]]:
    """(customer, revenue) from the largest, computed by Athena."""
    rows = run_query(
        f"SELECT customer, sum(amount) AS revenue FROM {table} GROUP BY customer ORDER BY revenue DESC",
        database,
    )
    return [(str(customer), float(revenue or 0)) for customer, revenue in rows]


def tables_in(database: str) -> list[str]:
    """The table names Glue lists in ``database``."""
    glue = boto3.client("glue")
    names: list[str] = []
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        names += [table["Name"] for table in page["TableList"]]
    return sorted(names)
