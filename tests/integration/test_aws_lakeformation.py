"""Lake Formation's API on lakehouse's governance: boto3's lakeformation client grants,
filters and tags through a governed ``aws`` service, and the lake's engines (DuckDB
through the library's rewrite, Trino through its own access control) honour it.

The module runs a governed Trino coordinator and a governed ``aws`` service in a home
of their own (the policy lives there) on the session's catalog and S3.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from lakehouse import Lakehouse, Settings
from lakehouse.errors import AccessDeniedError
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.aws import AwsService
from lakehouse.services.trino import TrinoNode
from lakehouse.testing.lake import IsolatedLake, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_aws, pytest.mark.lakehouse_trino]

ACCOUNT = "000000000000"
CUSTOMERS = pa.table({
    "id": pa.array([1, 2, 3, 4], pa.int64()),
    "name": ["Ada", "Bo", "Carl", "Dee"],
    "email": ["ada@x.eu", "bo@y.us", "carl@z.eu", "dee@w.eu"],
    "phone": ["+44 1", "+1 2", "+49 3", "+33 4"],
    "region": ["EU", "US", "EU", "EU"],
})  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def governed(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a governed Trino and aws service on the session's catalog and S3."""
    settings = stack.model_copy(update={
        "home": tmp_path_factory.mktemp("governed_aws"), "trino_port": free_port(),
        "aws_port": free_port(), "trino_workers": 0, "governance_enabled": True,
        "principal": None, "trino_heap": "1G", "trino_query_memory": "512MB",
    })  # fmt: skip
    runtime = LocalRuntime(settings)
    runtime.start_service(TrinoNode(settings), timeout=300)  # a second JVM on a busy machine
    try:
        runtime.start_service(AwsService(settings), timeout=120)
        yield settings
    finally:
        runtime.stop("aws")
        runtime.stop("trino")


@pytest.fixture(scope="module")
def admin_lake(governed: Settings) -> Iterator[Lakehouse]:
    with Lakehouse(governed) as lake:
        yield lake


@pytest.fixture
def corner(admin_lake: Lakehouse, request: pytest.FixtureRequest) -> Iterator[IsolatedLake]:
    """The test's namespace, holding ``customers``."""
    isolated = IsolatedLake.create(admin_lake, unique_name(request.node.name))
    isolated.ingest(CUSTOMERS, "customers")
    yield isolated
    isolated.drop()


@pytest.fixture
def lf(governed: Settings) -> Any:
    return boto3.client("lakeformation", endpoint_url=governed.aws_uri,
                        region_name=governed.region, aws_access_key_id=governed.access_key,
                        aws_secret_access_key=governed.secret_key)  # fmt: skip


def user(name: str) -> dict[str, str]:
    return {"DataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:user/{name}"}


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return str(caught.value.response["Error"]["Code"])


def test_grant_list_and_revoke_are_enforced(
    lf: Any, corner: IsolatedLake, admin_lake: Lakehouse
) -> None:
    ns = corner.namespace
    resource = {"TableWithColumns": {"DatabaseName": ns, "Name": "customers",
                                     "ColumnWildcard": {"ExcludedColumnNames": ["email"]}}}  # fmt: skip
    query = f"SELECT * FROM {ns}.customers ORDER BY id"
    with pytest.raises(AccessDeniedError):
        admin_lake.sql(query, principal="alice_lf")  # unknown to the policy yet
    lf.grant_permissions(Principal=user("alice_lf"), Resource=resource, Permissions=["SELECT"])
    rows = admin_lake.sql(query, principal="alice_lf")
    assert rows.column_names == ["id", "name", "phone", "region"] and rows.num_rows == 4
    listed = lf.list_permissions(Principal=user("alice_lf"))["PrincipalResourcePermissions"]
    assert [(p["Principal"], p["Permissions"], p["Resource"]["TableWithColumns"]["ColumnWildcard"])
            for p in listed] == [(user("alice_lf"), ["SELECT"], {"ExcludedColumnNames": ["email"]})]  # fmt: skip
    by_table = lf.list_permissions(Resource={"Table": {"DatabaseName": ns, "Name": "customers"}})
    assert len(by_table["PrincipalResourcePermissions"]) == 1
    lf.revoke_permissions(Principal=user("alice_lf"), Resource=resource, Permissions=["SELECT"])
    with pytest.raises(AccessDeniedError):
        admin_lake.sql(query, principal="alice_lf")
    assert error_code(lf.grant_permissions, Principal=user("alice_lf"), Resource=resource,
                      Permissions=["CREATE_DATABASE"]) == "InvalidInputException"  # fmt: skip
    assert error_code(lf.grant_permissions, Principal={"DataLakePrincipalIdentifier": "nobody_lf"},
                      Resource=resource, Permissions=["SELECT"]) == "InvalidInputException"  # fmt: skip


def test_a_data_cells_filter_filters_rows_on_trino(
    lf: Any, corner: IsolatedLake, admin_lake: Lakehouse
) -> None:
    ns = corner.namespace
    name = f"eu_{ns}"[:100]
    table = {"TableCatalogId": ACCOUNT, "DatabaseName": ns, "TableName": "customers", "Name": name}
    lf.create_data_cells_filter(TableData={**table, "RowFilter": {"FilterExpression": "region = 'EU'"},
                                           "ColumnNames": ["id", "name", "region"]})  # fmt: skip
    shown = lf.get_data_cells_filter(**table)["DataCellsFilter"]
    assert "region" in shown["RowFilter"]["FilterExpression"] and shown["ColumnNames"] == [
        "id",
        "name",
        "region",
    ]
    assert error_code(lf.create_data_cells_filter, TableData={**table, "RowFilter": {"AllRowsWildcard": {}}}
                      ) == "AlreadyExistsException"  # fmt: skip
    lf.grant_permissions(
        Principal=user("bob_lf"), Resource={"DataCellsFilter": table}, Permissions=["SELECT"]
    )
    query = f"SELECT * FROM {ns}.customers ORDER BY id"
    on_trino = admin_lake.sql(query, engine="trino", principal="bob_lf")
    on_duckdb = admin_lake.sql(query, principal="bob_lf")
    assert on_trino.to_pylist() == on_duckdb.to_pylist() == [
        {"id": 1, "name": "Ada", "region": "EU"}, {"id": 3, "name": "Carl", "region": "EU"},
        {"id": 4, "name": "Dee", "region": "EU"}]  # fmt: skip
    listed = lf.list_data_cells_filter(
        Table={"CatalogId": ACCOUNT, "DatabaseName": ns, "Name": "customers"}
    )
    assert [f["Name"] for f in listed["DataCellsFilters"]] == [name]
    assert error_code(lf.delete_data_cells_filter, **table) == "InvalidInputException"  # granted
    lf.revoke_permissions(
        Principal=user("bob_lf"), Resource={"DataCellsFilter": table}, Permissions=["SELECT"]
    )
    lf.delete_data_cells_filter(**table)
    assert error_code(lf.get_data_cells_filter, **table) == "EntityNotFoundException"


def test_lf_tags_on_resources_and_tag_grants(
    lf: Any, corner: IsolatedLake, admin_lake: Lakehouse
) -> None:
    ns = corner.namespace
    key = f"pii_{ns}"[:100]
    lf.create_lf_tag(TagKey=key, TagValues=["true", "false"])
    assert error_code(lf.create_lf_tag, TagKey=key, TagValues=["x"]) == "AlreadyExistsException"
    assert lf.get_lf_tag(TagKey=key)["TagValues"] == ["true", "false"]
    table = {"DatabaseName": ns, "Name": "customers"}
    lf.add_lf_tags_to_resource(
        Resource={"Table": table}, LFTags=[{"TagKey": key, "TagValues": ["false"]}]
    )
    failed = lf.add_lf_tags_to_resource(
        Resource={"TableWithColumns": {**table, "ColumnNames": ["email", "phone"]}},
        LFTags=[{"TagKey": key, "TagValues": ["true"]}])  # fmt: skip
    assert failed["Failures"] == []
    bad = lf.add_lf_tags_to_resource(
        Resource={"Table": table}, LFTags=[{"TagKey": key, "TagValues": ["maybe"]}]
    )
    assert bad["Failures"][0]["Error"]["ErrorCode"] == "InvalidInputException"
    shown = lf.get_resource_lf_tags(
        Resource={"TableWithColumns": {**table, "ColumnNames": ["email", "name"]}}
    )
    assert shown["LFTagsOnTable"][0]["TagValues"] == ["false"]
    assert {c["Name"]: c["LFTags"][0]["TagValues"] for c in shown["LFTagsOnColumns"]} == {
        "email": ["true"], "name": ["false"]}  # fmt: skip
    policy = {
        "LFTagPolicy": {
            "ResourceType": "TABLE",
            "Expression": [{"TagKey": key, "TagValues": ["false"]}],
        }
    }
    lf.grant_permissions(Principal=user("carol_lf"), Resource=policy, Permissions=["SELECT"])
    rows = admin_lake.sql(f"SELECT * FROM {ns}.customers ORDER BY id", principal="carol_lf")
    assert rows.column_names == ["id", "name", "region"]
    assert error_code(lf.delete_lf_tag, TagKey=key) == "InvalidInputException"  # in use
    assert key in [t["TagKey"] for t in lf.list_lf_tags()["LFTags"]]


def test_a_principal_cannot_redirect_results_or_touch_others_saved_queries(
    governed: Settings,
) -> None:
    """Results are written with the stack's key: a principal may neither change a
    workgroup's output location nor send its own results outside the results bucket
    (into a table's folder), nor delete another's named query."""
    from lakehouse.governance import admin, s3_access

    name = unique_name("wg_user")
    admin.add_principal(governed, name)
    keys = s3_access.credentials(governed, name)

    def athena_as(key: str, secret: str) -> Any:
        return boto3.client("athena", endpoint_url=governed.aws_uri, region_name=governed.region,
                            aws_access_key_id=key, aws_secret_access_key=secret)  # fmt: skip

    own = athena_as(keys.access_key, keys.secret_key)
    boss = athena_as(governed.access_key, governed.secret_key)
    moved = {"ResultConfigurationUpdates": {"OutputLocation": "s3://landing/taken/"}}
    assert error_code(own.update_work_group, WorkGroup="primary",
                      ConfigurationUpdates=moved) == "AccessDeniedException"  # fmt: skip
    assert error_code(own.create_work_group, Name=name) == "AccessDeniedException"
    assert error_code(own.start_query_execution, QueryString="SELECT 1",
                      ResultConfiguration={"OutputLocation": "s3://landing/raw/"}) == (
        "AccessDeniedException")  # fmt: skip
    location = boss.get_work_group(WorkGroup="primary")["WorkGroup"]["Configuration"]
    assert "landing" not in location["ResultConfiguration"]["OutputLocation"]
    saved = boss.create_named_query(Name="kept", Database="default", QueryString="SELECT 1")
    assert error_code(own.delete_named_query,
                      NamedQueryId=saved["NamedQueryId"]) == "AccessDeniedException"  # fmt: skip
    assert boss.get_named_query(NamedQueryId=saved["NamedQueryId"])["NamedQuery"]["Name"] == "kept"


def test_a_principal_reads_only_its_own_permissions_and_what_it_may_see(
    lf: Any, corner: IsolatedLake, governed: Settings
) -> None:
    """As Lake Formation: a vended key lists its own permissions only, reads no other
    principal's filter (row-filter literals) and tags only on what it may see."""
    from lakehouse.governance import s3_access

    ns, alice, bob = corner.namespace, unique_name("alice"), unique_name("bob")
    table = {"TableCatalogId": ACCOUNT, "DatabaseName": ns, "TableName": "customers",
             "Name": f"us_{ns}"[:100]}  # fmt: skip
    lf.create_data_cells_filter(TableData={**table, "RowFilter": {"FilterExpression": "region = 'US'"},
                                           "ColumnWildcard": {"ExcludedColumnNames": []}})  # fmt: skip
    lf.grant_permissions(Principal=user(bob), Resource={"DataCellsFilter": table},
                         Permissions=["SELECT"])  # fmt: skip
    lf.grant_permissions(Principal=user(alice), Permissions=["SELECT"], Resource={"TableWithColumns": {
        "DatabaseName": ns, "Name": "customers", "ColumnNames": ["id", "name"]}})  # fmt: skip
    key = f"k_{ns}"[:100]
    lf.create_lf_tag(TagKey=key, TagValues=["a"])
    columns = {"DatabaseName": ns, "Name": "customers", "ColumnNames": ["name", "email"]}
    lf.add_lf_tags_to_resource(Resource={"TableWithColumns": columns},
                               LFTags=[{"TagKey": key, "TagValues": ["a"]}])  # fmt: skip
    keys = s3_access.credentials(governed, alice)
    as_alice = boto3.client("lakeformation", endpoint_url=governed.aws_uri,
                            region_name=governed.region, aws_access_key_id=keys.access_key,
                            aws_secret_access_key=keys.secret_key)  # fmt: skip
    listed = as_alice.list_permissions()["PrincipalResourcePermissions"]
    assert [p["Principal"] for p in listed] == [user(alice)]
    assert as_alice.list_permissions(Principal=user(alice))["PrincipalResourcePermissions"]
    assert error_code(as_alice.list_permissions, Principal=user(bob)) == "AccessDeniedException"
    assert error_code(as_alice.get_data_cells_filter, **table) == "AccessDeniedException"
    assert as_alice.list_data_cells_filter()["DataCellsFilters"] == []
    assert key not in [t["TagKey"] for t in as_alice.list_lf_tags().get("LFTags", [])]
    assert error_code(as_alice.get_lf_tag, TagKey=key) == "AccessDeniedException"
    named = {**columns, "ColumnNames": ["name"]}
    seen = as_alice.get_resource_lf_tags(Resource={"TableWithColumns": named})
    assert seen["LFTagsOnColumns"][0]["LFTags"][0]["TagValues"] == ["a"]
    hidden = error_code(as_alice.get_resource_lf_tags, Resource={"TableWithColumns": columns})
    assert hidden == "AccessDeniedException"  # she may not SELECT email
    assert lf.get_data_cells_filter(**table)["DataCellsFilter"]["Name"] == table["Name"]
    lf.revoke_permissions(Principal=user(bob), Resource={"DataCellsFilter": table},
                          Permissions=["SELECT"])  # fmt: skip
