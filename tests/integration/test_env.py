"""`eval "$(lakehouse env)"` makes unmodified tools talk to the lake."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings

pytestmark = pytest.mark.integration

BOTO3_SCRIPT = """
import boto3
s3 = boto3.client("s3")
s3.put_object(Bucket="{bucket}", Key="env-test/hello.txt", Body=b"hello lake")
body = s3.get_object(Bucket="{bucket}", Key="env-test/hello.txt")["Body"].read()
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
print(body.decode(), ",".join(names))
"""


def in_lake_shell(command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in bash after eval-ing the CLI's exports."""
    bindir = Path(sys.executable).parent
    script = f'eval "$({sys.executable} -m lakehouse.cli env)" && {command}'
    env_path = f"{bindir}:/usr/bin:/bin"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PATH": env_path, "HOME": str(Path.home()), **_lakehouse_vars()})  # fmt: skip


def _lakehouse_vars() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k.startswith("LAKEHOUSE_")}


def test_plain_boto3_uses_the_lake(stack: Settings) -> None:
    result = in_lake_shell(f"python -c '{BOTO3_SCRIPT.format(bucket=stack.warehouse_bucket)}'")
    assert result.returncode == 0, result.stderr
    # The last line lists the buckets (the warehouse, and Trino's spooling bucket
    # when Trino runs in this session).
    hello, lake, buckets = result.stdout.split()
    assert (hello, lake) == ("hello", "lake")
    assert stack.warehouse_bucket in buckets.split(",")


@pytest.mark.skipif(shutil.which("aws", path=str(Path(sys.executable).parent)) is None,
                    reason="aws-cli is not installed in this venv")  # fmt: skip
def test_aws_cli_lists_the_warehouse(stack: Settings) -> None:
    result = in_lake_shell(f"aws s3 ls s3://{stack.warehouse_bucket}/")
    assert result.returncode == 0, result.stderr


def test_pyiceberg_cli_and_plain_load_catalog(lake: Lakehouse, namespace: str) -> None:
    lake.ingest(pa.table({"x": [1, 2]}), f"{namespace}.envcheck")
    listed = in_lake_shell(f"pyiceberg --catalog {lake.settings.catalog_name} list {namespace}")
    assert listed.returncode == 0, listed.stderr
    assert f"{namespace}.envcheck" in listed.stdout
    code = (
        "from pyiceberg.catalog import load_catalog; "
        f"print(load_catalog('{lake.settings.catalog_name}').load_table('{namespace}.envcheck').scan().to_arrow().num_rows)"
    )
    loaded = in_lake_shell(f'python -c "{code}"')
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "2"


@pytest.mark.lakehouse_postgres
@pytest.mark.lakehouse_opensearch
def test_psql_and_curl_reach_postgres_and_opensearch(
    stack: Settings, stack_services: list[str]
) -> None:
    """libpq's PG* variables and OPENSEARCH_URL: plain psql and curl need no flags."""
    if not {"postgres", "opensearch"} <= set(stack_services):
        pytest.skip("needs postgres and opensearch")
    from lakehouse.services.postgres import postgres_bin_dir

    psql = postgres_bin_dir() / "psql"
    result = in_lake_shell(f"{psql} -tA -c 'SELECT current_database(), current_user'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{stack.postgres_db}|{stack.postgres_user}"
    if shutil.which("curl"):
        health = in_lake_shell('curl -fsS "$OPENSEARCH_URL/_cluster/health"')
        assert health.returncode == 0, health.stderr
        assert '"cluster_name":"lakehouse"' in health.stdout
