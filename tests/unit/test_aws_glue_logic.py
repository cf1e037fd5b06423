"""Pure logic of the Glue and Lake Formation APIs: paging, name patterns, partition
expressions, Hive storage formats, the CREATE TABLE a Glue table becomes, LF resources."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import name_matcher, page
from lakehouse.aws.glue_hive import create_statement, created_with
from lakehouse.aws.glue_hive_formats import format_of, storage_of, trino_properties
from lakehouse.aws.glue_partitions import checked_expression, matching, partition_value
from lakehouse.aws.glue_tables import version_id
from lakehouse.aws.lakeformation import IAM_ARN, resource_of
from lakehouse.governance.policy import Resource

PARQUET_INPUT = {
    "Name": "events",
    "StorageDescriptor": {
        "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string",
                                                       "Comment": "it's a name"}],
        "Location": "s3://warehouse/raw/events/",
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "SerdeInfo": {"SerializationLibrary":
                      "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    },
    "PartitionKeys": [{"Name": "dt", "Type": "string"}],
    "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
    "TableType": "EXTERNAL_TABLE",
}  # fmt: skip


def test_pages_follow_tokens_to_the_end() -> None:
    items = list(range(7))
    seen, token = [], None
    while True:
        chunk, token = page(items, {"MaxResults": 3, "NextToken": token})
        seen += chunk
        if token is None:
            break
    assert seen == items
    with pytest.raises(AwsError, match="NextToken"):
        page(items, {"NextToken": "not-a-token"})


def test_table_name_expressions_as_glue_reads_them() -> None:
    names = ["orders", "order_items", "customers", "Sales_2024"]

    def match(expression: str) -> list[str]:
        pattern = name_matcher(expression)
        assert pattern is not None
        return [n for n in names if pattern.fullmatch(n)]

    assert match("order*") == ["orders", "order_items"]
    assert match("*ers") == ["orders", "customers"]
    assert match("sales.*") == ["Sales_2024"]
    assert match("orders|customers") == ["orders", "customers"]
    assert name_matcher(None) is None
    with pytest.raises(AwsError) as caught:
        name_matcher("(")
    assert caught.value.code == "InvalidInputException"


def test_partition_expressions_filter_and_refuse_functions() -> None:
    rows = pa.table({"dt": ["2024-01-01", "2024-01-02", "2024-02-01"], "n": [1, 2, 3]})
    assert matching(rows, "dt = '2024-01-02'") == [1]
    assert matching(rows, "dt LIKE '2024-01%' AND n > 1") == [1]
    assert matching(rows, "n IN (1, 3)") == [0, 2]
    assert matching(rows, None) == [0, 1, 2]
    for bad in ["length(dt) = 10", "dt = (SELECT 1)", "1; DROP TABLE x"]:
        with pytest.raises(AwsError):
            checked_expression(bad)
    assert partition_value(None) == "__HIVE_DEFAULT_PARTITION__"
    assert partition_value(True) == "true"


def test_formats_from_serde_input_format_or_classification() -> None:
    assert format_of(PARQUET_INPUT).trino == "PARQUET"
    csv = {"StorageDescriptor": {"SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        "Parameters": {"field.delim": ","}}}, "Parameters": {"skip.header.line.count": "1"}}  # fmt: skip
    fmt = format_of(csv)
    assert fmt.trino == "TEXTFILE"
    assert trino_properties(fmt, csv) == {"format": "TEXTFILE", "textfile_field_separator": ",",
                                          "skip_header_line_count": 1}  # fmt: skip
    assert format_of({"Parameters": {"classification": "json"}}).trino == "JSON"
    with pytest.raises(AwsError, match="storage format"):
        format_of({"StorageDescriptor": {"SerdeInfo": {"SerializationLibrary": "x.AvroSerDe"}}})
    shown = storage_of("TEXTFILE", {"field.delim": ",", "EXTERNAL": "TRUE"})
    assert shown["SerdeInfo"]["Parameters"] == {"field.delim": ","}


def test_a_glue_table_becomes_an_external_trino_table() -> None:
    statement = create_statement("raw", "events", PARQUET_INPUT)
    assert 'CREATE TABLE hive."raw"."events"' in statement
    assert "\"name\" varchar COMMENT 'it''s a name'" in statement
    assert "external_location = 's3://warehouse/raw/events/'" in statement
    assert "partitioned_by = ARRAY['dt']" in statement
    assert "extra_properties = MAP(ARRAY['classification'], ARRAY['parquet'])" in statement
    for broken in ({**PARQUET_INPUT, "StorageDescriptor": {"Columns": []}},
                   {**PARQUET_INPUT, "TableType": "VIRTUAL_VIEW"}):  # fmt: skip
        with pytest.raises(AwsError):
            create_statement("raw", "events", broken)


def test_show_create_table_properties_are_read() -> None:
    shown = created_with(
        "CREATE TABLE hive.raw.events (\n   id bigint,\n   dt varchar\n)\nWITH (\n"
        "   external_location = 's3://warehouse/raw/events',\n   format = 'PARQUET',\n"
        "   partitioned_by = ARRAY['dt'],\n   skip_header_line_count = 1\n)"
    )
    assert shown == {"external_location": "s3://warehouse/raw/events", "format": "PARQUET",
                     "partitioned_by": ["dt"], "skip_header_line_count": 1}  # fmt: skip


def test_iceberg_metadata_file_names_give_version_ids() -> None:
    assert version_id("s3://w/ns/t/metadata/00003-6c1f.metadata.json") == "3"
    assert version_id("s3://w/ns/t/metadata/v1.metadata.json") == "0"


def test_lake_formation_resources_and_principals() -> None:
    assert resource_of({"Database": {"Name": "retail"}}) == Resource(namespace="retail")
    assert resource_of({"Table": {"DatabaseName": "retail", "TableWildcard": {}}}) == Resource(
        namespace="retail", all_tables=True)  # fmt: skip
    assert resource_of({"TableWithColumns": {"DatabaseName": "retail", "Name": "customers",
                                             "ColumnWildcard": {"ExcludedColumnNames": ["email"]}}}
                       ) == Resource(table="retail.customers", excluded_columns=("email",))  # fmt: skip
    assert resource_of({"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [
        {"TagKey": "pii", "TagValues": ["false"]}]}}) == Resource(tags={"pii": ("false",)})  # fmt: skip
    with pytest.raises(AwsError, match="DataLocation"):
        resource_of({"DataLocation": {"ResourceArn": "arn:aws:s3:::b"}})
    found = IAM_ARN.match("arn:aws:iam::000000000000:role/team/analyst")
    assert found is not None and (found["kind"], found["name"]) == ("role", "analyst")
    assert IAM_ARN.match("alice") is None


def test_a_forged_negative_page_token_is_refused_not_a_repeat() -> None:
    """{"offset": -2} would slice the last two items again (Glue and Athena paging)."""
    import base64
    import json

    from lakehouse.aws.athena import offset_page

    forged = base64.urlsafe_b64encode(json.dumps({"offset": -2}).encode()).decode()
    with pytest.raises(AwsError, match="NextToken"):
        page(list(range(10)), {"NextToken": forged, "MaxResults": 3})
    with pytest.raises(AwsError, match="NextToken"):
        offset_page(list(range(10)), {"NextToken": forged}, default=3, largest=50)
