"""How a user tests orders_app with lakehouse's pytest fixtures: no mocks, no AWS."""

from __future__ import annotations

import boto3
import pytest
from orders_app import load_orders, top_customers

CSV = "order_id,customer,amount\n1,ann,10.0\n2,bob,5.5\n3,ann,2.5\n4,cy,30.0\n"


@pytest.fixture
def orders_file(aws_env: dict[str, str], s3_bucket: str) -> tuple[str, str]:
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="incoming/orders.csv", Body=CSV.encode())
    return s3_bucket, "incoming/orders.csv"


def test_load_then_report(orders_file: tuple[str, str], lake) -> None:  # type: ignore[no-untyped-def]
    table = lake.name("orders")
    assert load_orders(*orders_file, table=table) == 4
    assert top_customers(table) == [("cy", 30.0), ("ann", 12.5), ("bob", 5.5)]
    assert lake.sql("SELECT count(*) AS n FROM orders").column("n")[0].as_py() == 4


def test_loading_twice_appends(orders_file: tuple[str, str], lake) -> None:  # type: ignore[no-untyped-def]
    table = lake.name("orders")
    load_orders(*orders_file, table=table)
    load_orders(*orders_file, table=table)
    assert len(lake.table("orders").history()) == 2
    assert lake.sql("SELECT sum(amount) AS s FROM orders").column("s")[0].as_py() == 96.0


@pytest.mark.lakehouse_aws  # the plugin starts the aws service (and Trino) for this test
def test_the_revenue_report_runs_on_athena_and_glue(orders_file: tuple[str, str], lake) -> None:  # type: ignore[no-untyped-def]
    from revenue_report import ReportFailed, revenue_by_customer, run_query, tables_in

    load_orders(*orders_file, table=lake.name("orders"))
    assert "orders" in tables_in(lake.namespace)
    assert revenue_by_customer(lake.namespace) == [("cy", 30.0), ("ann", 12.5), ("bob", 5.5)]
    with pytest.raises(ReportFailed, match="no_such_table"):
        run_query("SELECT * FROM no_such_table", lake.namespace)
