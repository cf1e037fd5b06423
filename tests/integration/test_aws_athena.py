"""Athena's API on the real lake: boto3, PyAthena, the AWS CLI and awswrangler, unchanged
but for the endpoint, against the ``aws`` service running queries on Trino."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from lakehouse import Lakehouse, Settings
from lakehouse.env import environment
from tests.integration.aws_clients import run_python, wrangler_python

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_aws]

RESULTS_BUCKET = "aws-athena-query-results-000000000000-us-east-1"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def client(settings: Settings, name: str) -> Any:
    return boto3.client(name, endpoint_url=settings.s3_endpoint if name == "s3" else settings.aws_uri,
                        region_name=settings.region, aws_access_key_id=settings.access_key,
                        aws_secret_access_key=settings.secret_key)  # fmt: skip


@pytest.fixture(scope="module")
def athena(stack: Settings) -> Any:
    return client(stack, "athena")


@pytest.fixture(scope="module")
def s3(stack: Settings) -> Any:
    return client(stack, "s3")


def wait(athena: Any, execution_id: str, states: tuple[str, ...] = TERMINAL,
         timeout: float = 180) -> dict[str, Any]:  # fmt: skip
    """The execution once its state is one of ``states`` (polled, as clients do)."""
    deadline = time.monotonic() + timeout
    while True:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        if execution["Status"]["State"] in states:
            return execution
        assert time.monotonic() < deadline, f"still {execution['Status']['State']}: {execution}"
        time.sleep(0.05)


def run(athena: Any, sql: str, database: str | None = None, **extra: Any) -> dict[str, Any]:
    context = {"QueryExecutionContext": {"Database": database}} if database else {}
    started = athena.start_query_execution(QueryString=sql, **context, **extra)
    return wait(athena, started["QueryExecutionId"])


def all_rows(athena: Any, execution_id: str, page: int = 1000) -> list[list[str | None]]:
    rows: list[list[str | None]] = []
    kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": page}
    while True:
        answer = athena.get_query_results(**kwargs)
        assert len(answer["ResultSet"]["Rows"]) <= page
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in answer["ResultSet"]["Rows"]]
        if "NextToken" not in answer:
            return rows
        kwargs["NextToken"] = answer["NextToken"]


TYPED = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "name": pa.array(['say "hi"', "", None]),
    "price": pa.array([Decimal("12.50"), Decimal("-0.05"), None], pa.decimal128(10, 2)),
    "ratio": pa.array([0.1, 1e20, None], pa.float64()),
    "day": pa.array([19000, 19001, None], pa.date32()),
    "at": pa.array([1_700_000_000_123_456, 0, None], pa.timestamp("us")),
    "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
    "ok": pa.array([True, False, None]),
})  # fmt: skip
TYPED_TEXT = [
    ["id", "name", "price", "ratio", "day", "at", "tags", "ok"],
    ["1", 'say "hi"', "12.50", "0.1", "2022-01-08", "2023-11-14 22:13:20.123456", "[a, b]", "true"],
    ["2", "", "-0.05", "1.0E20", "2022-01-09", "1970-01-01 00:00:00.000000", "[]", "false"],
    ["3", None, None, None, None, None, None, None],
]


def test_query_lifecycle_types_results_and_csv(athena: Any, s3: Any, lake: Lakehouse,
                                               namespace: str) -> None:  # fmt: skip
    lake.ingest(TYPED, f"{namespace}.typed")
    execution = run(athena, f"SELECT * FROM AwsDataCatalog.{namespace}.typed ORDER BY id")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert (execution["StatementType"], execution["WorkGroup"]) == ("DML", "primary")
    assert execution["EngineVersion"]["EffectiveEngineVersion"] == "Athena engine version 3"
    stats = execution["Statistics"]
    assert stats["DataScannedInBytes"] > 0
    assert stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"] > 0
    execution_id = execution["QueryExecutionId"]
    location = f"s3://{RESULTS_BUCKET}/{execution_id}.csv"
    assert execution["ResultConfiguration"]["OutputLocation"] == location

    answer = athena.get_query_results(QueryExecutionId=execution_id)
    columns = answer["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        ("id", "bigint"), ("name", "varchar"), ("price", "decimal"), ("ratio", "double"),
        ("day", "date"), ("at", "timestamp"), ("tags", "array"), ("ok", "boolean")]  # fmt: skip
    assert (columns[2]["Precision"], columns[2]["Scale"]) == (10, 2)
    assert all_rows(athena, execution_id) == TYPED_TEXT
    assert answer["ResultSet"]["Rows"][3]["Data"][1] == {}  # NULL: no VarCharValue

    csv_text = s3.get_object(Bucket=RESULTS_BUCKET, Key=f"{execution_id}.csv")["Body"].read()
    lines = csv_text.decode().splitlines()
    assert lines[0] == '"id","name","price","ratio","day","at","tags","ok"'
    assert lines[1].startswith('"1","say ""hi""","12.50"')
    assert lines[3] == '"3",,,,,,,'
    assert list(csv.reader(io.StringIO(csv_text.decode())))[1:] == [
        [v or "" for v in row] for row in TYPED_TEXT[1:]
    ]
    metadata = s3.get_object(Bucket=RESULTS_BUCKET, Key=f"{execution_id}.csv.metadata")
    assert json.loads(metadata["Body"].read())["ColumnInfo"] == columns

    listed = athena.list_query_executions()["QueryExecutionIds"]
    assert listed[0] == execution_id
    batch = athena.batch_get_query_execution(QueryExecutionIds=[execution_id, "nope"])
    assert [e["QueryExecutionId"] for e in batch["QueryExecutions"]] == [execution_id]
    assert batch["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == "nope"
    with pytest.raises(ClientError) as unknown:
        athena.get_query_execution(QueryExecutionId="f00f00f0-0000-0000-0000-000000000000")
    assert unknown.value.response["Error"]["Code"] == "InvalidRequestException"


def test_ten_thousand_rows_page_back_exactly_once(
    athena: Any, lake: Lakehouse, namespace: str
) -> None:
    ids = list(range(10_000))
    lake.ingest(pa.table({"id": pa.array(ids, pa.int64()),
                          "amount": pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
                          "label": [f"row-{i}" for i in ids]}), f"{namespace}.big")  # fmt: skip
    execution = run(athena, "SELECT id, amount, label FROM big", database=namespace)
    rows = all_rows(athena, execution["QueryExecutionId"])
    assert rows[0] == ["id", "amount", "label"] and len(rows) == 10_001
    direct = lake.sql(f"SELECT id, amount, label FROM {namespace}.big", engine="trino", native=True)
    expected = sorted([str(r["id"]), str(r["amount"]), r["label"]] for r in direct.to_pylist())
    assert sorted(rows[1:]) == expected  # every row once, the values Trino gives
    with pytest.raises(ClientError, match="less than or equal to 1000"):
        athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"], MaxResults=1001)


def test_a_failed_query_says_why(athena: Any, namespace: str) -> None:
    execution = run(athena, "SELECT * FROM no_such_table", database=namespace)
    status = execution["Status"]
    assert status["State"] == "FAILED"
    assert status["StateChangeReason"].startswith("TABLE_NOT_FOUND: ")
    assert f"'awsdatacatalog.{namespace}.no_such_table'" in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorCategory"] == 2  # the user's error
    with pytest.raises(ClientError, match="Final query state: FAILED"):
        athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    syntax = run(athena, "SELEC 1")["Status"]
    assert syntax["State"] == "FAILED" and syntax["StateChangeReason"].startswith("SYNTAX_ERROR")


def test_a_cancelled_query_stops_on_trino(athena: Any, lake: Lakehouse) -> None:
    sql = "SELECT count(*) FROM tpch.sf100.lineitem a CROSS JOIN tpch.sf100.lineitem b"
    execution_id = athena.start_query_execution(QueryString=sql)["QueryExecutionId"]
    wait(athena, execution_id, ("RUNNING", *TERMINAL))

    def trino_states() -> list[str]:
        return lake.sql(f"SELECT state FROM system.runtime.queries WHERE query = '{sql}'",
                        engine="trino", native=True).column("state").to_pylist()  # fmt: skip

    deadline = time.monotonic() + 120
    while not trino_states():  # Trino has it (RUNNING is set just before it is sent)
        assert time.monotonic() < deadline, "Trino never got the query"
        time.sleep(0.2)
    athena.stop_query_execution(QueryExecutionId=execution_id)
    execution = wait(athena, execution_id)
    assert execution["Status"]["State"] == "CANCELLED"
    deadline = time.monotonic() + 60
    while True:  # Trino's own record of the query: no longer running
        states = trino_states()
        if states and all(state in ("FAILED", "FINISHED") for state in states):
            break
        assert time.monotonic() < deadline, f"Trino still runs it: {states}"
        time.sleep(0.2)
    assert wait(athena, execution_id)["Status"]["State"] == "CANCELLED"  # stays so


def test_named_queries_and_workgroups(athena: Any, s3: Any, namespace: str,
                                      s3_bucket: str) -> None:  # fmt: skip
    primary = athena.get_work_group(WorkGroup="primary")["WorkGroup"]
    assert (
        primary["Configuration"]["ResultConfiguration"]["OutputLocation"]
        == f"s3://{RESULTS_BUCKET}/"
    )
    assert primary["Configuration"]["EngineVersion"]["EffectiveEngineVersion"] == (
        "Athena engine version 3"
    )
    group = f"wg_{namespace}"
    athena.create_work_group(Name=group, Description="tests", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{s3_bucket}/out/"},
        "EnforceWorkGroupConfiguration": True})  # fmt: skip
    assert group in [g["Name"] for g in athena.list_work_groups()["WorkGroups"]]
    with pytest.raises(ClientError, match="already created"):
        athena.create_work_group(Name=group)
    named_id = athena.create_named_query(Name="one", Database=namespace, QueryString="SELECT 1 AS one",
                                         WorkGroup=group)["NamedQueryId"]  # fmt: skip
    named = athena.get_named_query(NamedQueryId=named_id)["NamedQuery"]
    assert (named["QueryString"], named["WorkGroup"]) == ("SELECT 1 AS one", group)
    assert athena.list_named_queries(WorkGroup=group)["NamedQueryIds"] == [named_id]
    assert (
        athena.batch_get_named_query(NamedQueryIds=[named_id])["NamedQueries"][0]["Name"] == "one"
    )

    execution = run(athena, named["QueryString"], WorkGroup=group,
                    ResultConfiguration={"OutputLocation": f"s3://{RESULTS_BUCKET}/ignored/"})  # fmt: skip
    execution_id = execution["QueryExecutionId"]
    assert (
        execution["ResultConfiguration"]["OutputLocation"]
        == f"s3://{s3_bucket}/out/{execution_id}.csv"
    )
    body = s3.get_object(Bucket=s3_bucket, Key=f"out/{execution_id}.csv")["Body"].read()
    assert body == b'"one"\n"1"\n'
    assert athena.list_query_executions(WorkGroup=group)["QueryExecutionIds"] == [execution_id]

    athena.update_work_group(WorkGroup=group, State="DISABLED")
    with pytest.raises(ClientError, match="is disabled"):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup=group)
    with pytest.raises(ClientError, match="is not empty"):
        athena.delete_work_group(WorkGroup=group)
    athena.delete_named_query(NamedQueryId=named_id)
    athena.delete_work_group(WorkGroup=group)
    with pytest.raises(ClientError, match="Cannot delete primary"):
        athena.delete_work_group(WorkGroup="primary")
    with pytest.raises(ClientError, match="not found"):
        athena.get_named_query(NamedQueryId=named_id)


def test_execution_parameters(athena: Any) -> None:
    execution = run(athena, "SELECT ? + 1 AS n, ? AS s", ExecutionParameters=["41", "'x'"])
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["Query"] == "SELECT ? + 1 AS n, ? AS s"
    assert execution["ExecutionParameters"] == ["41", "'x'"]
    assert all_rows(athena, execution["QueryExecutionId"]) == [["n", "s"], ["42", "x"]]


def test_client_request_token_is_idempotent(athena: Any) -> None:
    first = athena.start_query_execution(QueryString="SELECT 2", ClientRequestToken="t" * 32)
    again = athena.start_query_execution(QueryString="SELECT 2", ClientRequestToken="t" * 32)
    assert first["QueryExecutionId"] == again["QueryExecutionId"]
    with pytest.raises(ClientError, match="Idempotent parameters do not match"):
        athena.start_query_execution(QueryString="SELECT 3", ClientRequestToken="t" * 32)


def test_iceberg_ddl_and_dml(athena: Any, lake: Lakehouse, namespace: str, s3_bucket: str) -> None:
    iceberg_bucket = s3_bucket
    create = run(athena, f"""CREATE TABLE orders (id bigint, customer string, amount decimal(10,2),
        at timestamp) PARTITIONED BY (bucket(4, id), day(at))
        LOCATION 's3://{iceberg_bucket}/orders/'
        TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet',
                       'vacuum_max_snapshot_age_seconds'='60')""", database=namespace)  # fmt: skip
    assert create["Status"]["State"] == "SUCCEEDED", create["Status"]
    assert create["StatementType"] == "DDL"
    table = lake.table(f"{namespace}.orders")
    assert table.properties["vacuum_max_snapshot_age_seconds"] == "60"
    assert [str(f) for f in table.spec().fields] == [
        "1000: id_bucket: bucket[4](1)",
        "1001: at_day: day(4)",
    ]
    assert table.location().startswith(f"s3://{iceberg_bucket}/orders")
    insert = run(athena, "INSERT INTO orders VALUES (1, 'ann', 10.50, TIMESTAMP '2024-01-01 10:00:00'), "
                 "(2, 'bob', 3.25, TIMESTAMP '2024-01-02 11:00:00')", database=namespace)  # fmt: skip
    assert insert["Status"]["State"] == "SUCCEEDED", insert["Status"]
    assert athena.get_query_results(QueryExecutionId=insert["QueryExecutionId"])["UpdateCount"] == 2
    for statement in ("UPDATE orders SET amount = 11.00 WHERE id = 1", "DELETE FROM orders WHERE id = 2",
                      "MERGE INTO orders t USING (VALUES (3, 'cy', 1.00, TIMESTAMP '2024-01-03 00:00:00')) "
                      "AS s(id, customer, amount, at) ON t.id = s.id WHEN NOT MATCHED THEN INSERT "
                      "VALUES (s.id, s.customer, s.amount, s.at)",
                      "OPTIMIZE orders REWRITE DATA USING BIN_PACK", "VACUUM orders"):  # fmt: skip
        done = run(athena, statement, database=namespace)
        assert done["Status"]["State"] == "SUCCEEDED", (statement, done["Status"])
    rows = all_rows(athena, run(athena, "SELECT id, amount FROM orders ORDER BY id",
                                database=namespace)["QueryExecutionId"])  # fmt: skip
    assert rows == [["id", "amount"], ["1", "11.00"], ["3", "1.00"]]
    # Dropped here: the table's files live in s3_bucket, which is removed before the
    # namespace fixture would purge the table.
    assert run(athena, "DROP TABLE orders", database=namespace)["Status"]["State"] == "SUCCEEDED"
    assert not lake.catalog.table_exists(f"{namespace}.orders")
    hive = run(athena, "CREATE EXTERNAL TABLE h (a int) LOCATION 's3://x/y'", database=namespace)
    assert (
        hive["Status"]["State"] == "FAILED"
        and "Glue's CreateTable" in hive["Status"]["StateChangeReason"]
    )


def test_catalog_databases_and_table_metadata(athena: Any, lake: Lakehouse, namespace: str) -> None:
    lake.ingest(TYPED, f"{namespace}.typed")
    catalogs = athena.list_data_catalogs()["DataCatalogsSummary"]
    assert [c["CatalogName"] for c in catalogs] == ["AwsDataCatalog"]
    assert athena.get_data_catalog(Name="awsdatacatalog")["DataCatalog"]["Type"] == "GLUE"
    names = [d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]]
    assert namespace in names
    table = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=namespace,
                                      TableName="typed")["TableMetadata"]  # fmt: skip
    assert [(c["Name"], c["Type"]) for c in table["Columns"]] == [
        ("id", "bigint"), ("name", "string"), ("price", "decimal(10,2)"), ("ratio", "double"),
        ("day", "date"), ("at", "timestamp"), ("tags", "array<string>"), ("ok", "boolean")]  # fmt: skip
    assert table["Parameters"]["table_type"] == "ICEBERG"
    listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=namespace)
    assert [t["Name"] for t in listed["TableMetadataList"]] == ["typed"]
    with pytest.raises(ClientError) as missing:
        athena.get_table_metadata(
            CatalogName="AwsDataCatalog", DatabaseName=namespace, TableName="no"
        )
    assert missing.value.response["Error"]["Code"] == "MetadataException"


def test_pyathena_cursor(stack: Settings, lake: Lakehouse, namespace: str) -> None:
    import pyathena

    lake.ingest(TYPED, f"{namespace}.typed")
    connection = pyathena.connect(s3_staging_dir=f"s3://{RESULTS_BUCKET}/pyathena/",
                                  region_name=stack.region, endpoint_url=stack.aws_uri,
                                  aws_access_key_id=stack.access_key,
                                  aws_secret_access_key=stack.secret_key, schema_name=namespace)  # fmt: skip
    cursor = connection.cursor()
    cursor.execute("SELECT id, name, price, day, ok FROM typed WHERE id < %(limit)d ORDER BY id",
                   {"limit": 3})  # fmt: skip
    assert [d[0] for d in cursor.description] == ["id", "name", "price", "day", "ok"]
    import datetime as dt

    assert cursor.fetchall() == [(1, 'say "hi"', Decimal("12.50"), dt.date(2022, 1, 8), True),
                                 (2, "", Decimal("-0.05"), dt.date(2022, 1, 9), False)]  # fmt: skip


def env_only(stack: Settings) -> dict[str, str]:
    """Only what ``eval "$(lakehouse env)"`` exports (it includes PATH and HOME-free AWS_*)."""
    return environment(stack)


def test_the_aws_cli_through_lakehouse_env(stack: Settings) -> None:
    env = env_only(stack)
    started = subprocess.run(["aws", "athena", "start-query-execution", "--query-string",
                              "SELECT 40 + 2 AS answer", "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr
    execution_id = json.loads(started.stdout)["QueryExecutionId"]
    athena = client(stack, "athena")
    assert wait(athena, execution_id)["Status"]["State"] == "SUCCEEDED"
    fetched = subprocess.run(["aws", "athena", "get-query-results", "--query-execution-id",
                              execution_id, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    rows = json.loads(fetched.stdout)["ResultSet"]["Rows"]
    assert rows == [{"Data": [{"VarCharValue": "answer"}]}, {"Data": [{"VarCharValue": "42"}]}]


ENV_ONLY_SCRIPT = """
import time, boto3
athena = boto3.client("athena")
started = athena.start_query_execution(QueryString="SELECT 7 AS seven")
while True:
    state = athena.get_query_execution(QueryExecutionId=started["QueryExecutionId"])
    if state["QueryExecution"]["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
        break
    time.sleep(0.05)
rows = athena.get_query_results(QueryExecutionId=started["QueryExecutionId"])["ResultSet"]["Rows"]
print(rows[1]["Data"][0]["VarCharValue"])
print(sorted(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]))
"""


def test_boto3_with_only_the_lakehouse_env(stack: Settings) -> None:
    env = env_only(stack)
    assert env["AWS_ENDPOINT_URL"] == stack.s3_endpoint  # the global one is SeaweedFS's
    out = run_python(ENV_ONLY_SCRIPT, env).splitlines()
    assert out[0] == "7" and RESULTS_BUCKET in out[1]
    # Without the service-specific variable, Athena's calls would go to the global
    # endpoint (SeaweedFS), which does not speak Athena: the variable is what routes them.
    without = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL_ATHENA"}
    failed = subprocess.run([sys.executable, "-c", ENV_ONLY_SCRIPT], env=without, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert failed.returncode != 0


WRANGLER_SCRIPT = """
import json
import awswrangler as wr
sql = "SELECT id, name, price FROM typed ORDER BY id"
plain = wr.athena.read_sql_query(sql, database="{database}", ctas_approach=False)
print(json.dumps(plain.to_dict(orient="records"), default=repr))
ctas = wr.athena.read_sql_query(sql, database="{database}")  # the default: CTAS, then Parquet
print(json.dumps(ctas.sort_values("id").to_dict(orient="records"), default=repr))
print(sorted(wr.catalog.tables(database="{database}")["Table"]))
"""


def test_awswrangler_read_sql_query(stack: Settings, lake: Lakehouse, namespace: str) -> None:
    lake.ingest(TYPED, f"{namespace}.typed")
    out = run_python(WRANGLER_SCRIPT.format(database=namespace), env_only(stack),
                     python=wrangler_python(stack)).splitlines()  # fmt: skip
    # awswrangler reads Athena's CSV with na_values=["", "NaN"]: '' comes back as null,
    # on AWS too. The CTAS approach reads Parquet, which keeps it.
    assert json.loads(out[0]) == [
        {"id": 1, "name": 'say "hi"', "price": "Decimal('12.50')"},
        {"id": 2, "name": None, "price": "Decimal('-0.05')"},
        {"id": 3, "name": None, "price": None},
    ]
    assert json.loads(out[1]) == [
        {"id": 1, "name": 'say "hi"', "price": "Decimal('12.50')"},
        {"id": 2, "name": "", "price": "Decimal('-0.05')"},
        {"id": 3, "name": None, "price": None},
    ]
    assert out[2] == "['typed']"  # the CTAS's temporary table is gone


def test_the_readme_example(stack: Settings, sample: dict[str, int], lake: Lakehouse) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    found = re.search(r"<!-- athena-example -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert found, "the README's Athena example is gone"
    out = run_python(found.group(1), env_only(stack)).strip()
    expected = lake.sql("SELECT status, count(*) AS orders FROM retail.orders GROUP BY status "
                        "ORDER BY status", engine="trino", native=True).to_pylist()  # fmt: skip
    rows = [["status", "orders"]] + [[r["status"], str(r["orders"])] for r in expected]
    assert out == f"SUCCEEDED {rows}"


def trino_states(lake: Lakehouse, sql: str) -> list[str]:
    escaped = sql.replace("'", "''")
    found = lake.sql(f"SELECT state FROM system.runtime.queries WHERE query = '{escaped}'",
                     engine="trino", native=True)  # fmt: skip
    return [str(state) for state in found.column("state").to_pylist()]


def test_a_restart_fails_what_was_running_and_stops_it_on_trino(
    stack: Settings, athena: Any, lake: Lakehouse
) -> None:
    from lakehouse.aws.athena_store import RESTARTED
    from lakehouse.runtimes.local import LocalRuntime

    sql = "SELECT count(*) FROM tpch.sf100.lineitem a CROSS JOIN tpch.sf100.orders b"
    execution_id = athena.start_query_execution(QueryString=sql)["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while "RUNNING" not in trino_states(lake, sql):
        assert time.monotonic() < deadline, "Trino never ran the query"
        time.sleep(0.1)
    runtime = LocalRuntime(stack)
    runtime.down(["aws"])
    runtime.up(["aws"])
    status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
    assert (status["State"], status["StateChangeReason"]) == ("FAILED", RESTARTED)
    deadline = time.monotonic() + 60
    while "RUNNING" in trino_states(lake, sql):  # killed by the restarted service
        assert time.monotonic() < deadline, "the orphaned Trino query still runs"
        time.sleep(0.2)
