"""Governance on S3: each principal's own credentials read only what it may read.

A governed S3 and catalog (their own home and ports, governance on) hold three
tables the admin writes; alice, bob and carol get their keys from ``lakehouse env
--as`` and talk to SeaweedFS with plain boto3, as any tool would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lakehouse import Settings
from lakehouse.env import environment
from lakehouse.governance import store
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
)
from lakehouse.lake import catalog as cat
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

pytestmark = [pytest.mark.integration]

ORDERS = pa.table({"id": pa.array([1, 2], pa.int64()), "region": ["EU", "US"]})
READ_ORDERS = Grant(principal="alice", permissions=(Permission.SELECT,),
                    resource=Resource(table="gov.orders"))  # fmt: skip
POLICY = Policy(
    grants=(
        READ_ORDERS,
        # Hidden column: the raw files would show it.
        Grant(principal="alice", permissions=(Permission.SELECT,),
              resource=Resource(table="gov.customers", excluded_columns=("region",))),
        Grant(principal="alice", permissions=(Permission.INSERT,),
              resource=Resource(namespace="landing", all_tables=True)),
        Grant(principal="bob", permissions=(Permission.SELECT,),
              resource=Resource(data_cells_filter="eu_orders")),
        Grant(principal="carol", permissions=(Permission.SELECT,),
              resource=Resource(table="gov.orders")),
    ),
    data_cells_filters=(DataCellsFilter(name="eu_orders", table="gov.orders", row_filter="region = 'EU'"),),
    masks=(ColumnMask(table="gov.orders", column="region", principal="carol", kind="hash"),),
)  # fmt: skip


@pytest.fixture(scope="module")
def governed(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A governed S3 and catalog with gov.orders, gov.customers and landing.events."""
    home = tmp_path_factory.mktemp("governed-s3")
    ports = isolated_stack_env(home)
    settings = stack.model_copy(update={
        "home": home, "governance_enabled": True, "principal": None,
        "s3_port": int(ports["LAKEHOUSE_S3_PORT"]),
        "catalog_port": int(ports["LAKEHOUSE_CATALOG_PORT"]),
        "s3_internal_port_base": int(ports["LAKEHOUSE_S3_INTERNAL_PORT_BASE"]),
    })  # fmt: skip
    runtime = LocalRuntime(settings)
    try:
        runtime.up(["s3", "catalog"])
        catalog = cat.open_catalog(settings)
        for namespace in ("gov", "landing"):
            catalog.create_namespace(namespace)
        for name in ("gov.orders", "gov.customers", "landing.events"):
            catalog.create_table(name, ORDERS.schema).append(ORDERS)
        store.update(settings, lambda _: POLICY)
        yield settings
    finally:
        runtime.down(["catalog", "s3"])


def s3_as(settings: Settings, principal: str | None) -> Any:
    """boto3 with the keys ``lakehouse env --as principal`` exports (None: plain env)."""
    env = environment(settings, principal)
    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )  # fmt: skip


def files_of(settings: Settings, table: str) -> tuple[str, list[str]]:
    """(bucket, keys) of every file under the table's location, listed with the admin's key."""
    location = cat.load_table(cat.open_catalog(settings), table).location()
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    listing = s3_as(settings, None).list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    keys = [item["Key"] for item in listing.get("Contents", [])]
    assert any("/data/" in k for k in keys) and any("/metadata/" in k for k in keys), keys
    return bucket, keys


def denied(call: Any) -> bool:
    try:
        call()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
        return True
    return False


def test_each_principal_reads_only_whole_tables_it_may_select(governed: Settings) -> None:
    alice = s3_as(governed, "alice")
    bucket, orders = files_of(governed, "gov.orders")
    for key in orders:  # data and metadata files alike
        assert alice.get_object(Bucket=bucket, Key=key)["Body"].read()
    prefix = orders[0].rsplit("/", 2)[0] + "/"
    listed = alice.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert sorted(item["Key"] for item in listed) == sorted(orders)
    _, customers = files_of(governed, "gov.customers")  # a hidden column
    assert all(denied(lambda k=k: alice.get_object(Bucket=bucket, Key=k)) for k in customers)
    assert denied(lambda: alice.list_objects_v2(Bucket=bucket))
    # bob's rows are filtered and carol's region is masked: no raw files for either.
    for principal in ("bob", "carol"):
        client = s3_as(governed, principal)
        assert denied(lambda c=client: c.get_object(Bucket=bucket, Key=orders[0]))
    admin = s3_as(governed, governed.governance_admin)
    for key in customers + orders:
        assert admin.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_writes_only_where_insert_is_held(governed: Settings) -> None:
    alice = s3_as(governed, "alice")
    bucket, events = files_of(governed, "landing.events")
    data = next(key for key in events if "/data/" in key)
    new_key = data.rsplit("/", 1)[0] + "/alice-upload.parquet"
    alice.put_object(Bucket=bucket, Key=new_key, Body=b"x")
    alice.delete_object(Bucket=bucket, Key=new_key)
    _, orders = files_of(governed, "gov.orders")
    before = s3_as(governed, None).get_object(Bucket=bucket, Key=orders[0])["Body"].read()
    assert denied(lambda: alice.put_object(Bucket=bucket, Key=orders[0], Body=b"overwritten"))
    assert denied(lambda: alice.delete_object(Bucket=bucket, Key=orders[0]))
    assert denied(lambda: alice.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"x"))
    after = s3_as(governed, None).get_object(Bucket=bucket, Key=orders[0])["Body"].read()
    assert after == before


def test_cli_exports_the_principals_own_key_and_catalog_token(governed: Settings) -> None:
    variables = {**os.environ, **isolated_ports(governed), "LAKEHOUSE_GOVERNANCE_ENABLED": "true"}
    cli = Path(sys.executable).parent / "lakehouse"
    answer = subprocess.run([str(cli), "env", "--as", "alice", "--json"], env=variables,
                            capture_output=True, text=True, check=True)  # fmt: skip
    exported = json.loads(answer.stdout)
    mine = environment(governed, "alice")
    assert exported["AWS_ACCESS_KEY_ID"] == mine["AWS_ACCESS_KEY_ID"] != governed.access_key
    assert exported["PYICEBERG_CATALOG__LAKE__S3__ACCESS_KEY_ID"] == mine["AWS_ACCESS_KEY_ID"]
    token = exported["PYICEBERG_CATALOG__LAKE__TOKEN"]  # alice's own (test_governance_catalog)
    assert token == mine["PYICEBERG_CATALOG__LAKE__TOKEN"] != governed.catalog_token


def isolated_ports(settings: Settings) -> dict[str, str]:
    return {
        "LAKEHOUSE_HOME": str(settings.home_dir), "LAKEHOUSE_S3_PORT": str(settings.s3_port),
        "LAKEHOUSE_CATALOG_PORT": str(settings.catalog_port),
        "LAKEHOUSE_S3_INTERNAL_PORT_BASE": str(settings.s3_internal_port_base),
        "LAKEHOUSE_ACCESS_KEY": settings.access_key, "LAKEHOUSE_SECRET_KEY": settings.secret_key,
        "LAKEHOUSE_CATALOG_TOKEN": settings.catalog_token,
    }  # fmt: skip


def test_revocation_reaches_running_s3(governed: Settings) -> None:
    alice = s3_as(governed, "alice")
    bucket, orders = files_of(governed, "gov.orders")
    assert alice.get_object(Bucket=bucket, Key=orders[0])["Body"].read()
    revoked = time.monotonic()
    store.update(governed, lambda p: p.model_copy(
        update={"grants": tuple(g for g in p.grants if g != READ_ORDERS)}))  # fmt: skip
    # The update returns after SeaweedFS was signalled; its reload is asynchronous.
    deadline = revoked + 5
    while not denied(lambda: alice.get_object(Bucket=bucket, Key=orders[0])):
        assert time.monotonic() < deadline, "alice still reads gov.orders 5 s after the revoke"
    store.update(governed, lambda p: p.model_copy(update={"grants": (*p.grants, READ_ORDERS)}))
    deadline = time.monotonic() + 5
    while denied(lambda: alice.get_object(Bucket=bucket, Key=orders[0])):
        assert time.monotonic() < deadline, "alice's grant did not come back within 5 s"


def test_a_column_dropped_and_added_again_closes_the_files(governed: Settings) -> None:
    """Older files of a column dropped and added again under its name hold the old
    field's values: compared by name alone the table looked unchanged and a
    whole-table reader kept its file access."""
    from pyiceberg.types import StringType

    catalog = cat.open_catalog(governed)
    table = catalog.create_table("gov.reborn", ORDERS.schema)
    table.append(ORDERS)
    reader = Grant(principal="carol", permissions=(Permission.SELECT,),
                   resource=Resource(table="gov.reborn"))  # fmt: skip
    store.update(governed, lambda p: p.model_copy(update={"grants": (*p.grants, reader)}))
    try:
        carol = s3_as(governed, "carol")
        bucket, files = files_of(governed, "gov.reborn")
        assert carol.get_object(Bucket=bucket, Key=files[0])["Body"].read()
        with table.update_schema() as update:
            update.delete_column("region")
        with cat.load_table(catalog, "gov.reborn").update_schema() as update:
            update.add_column("region", StringType())
        changed = time.monotonic()
        carol = s3_as(governed, "carol")  # `lakehouse env --as` reads the tables again
        while not denied(lambda: carol.get_object(Bucket=bucket, Key=files[0])):
            assert time.monotonic() < changed + 5, "carol still reads gov.reborn's old files"
    finally:
        store.update(governed, lambda p: p.model_copy(
            update={"grants": tuple(g for g in p.grants if g != reader)}))  # fmt: skip
        catalog.purge_table("gov.reborn")
