"""Input checks of the aws service against botocore's models (pure logic)."""

from __future__ import annotations

import pytest
from botocore.model import OperationModel

from lakehouse.aws import models
from lakehouse.aws.errors import AwsError


def _op(service: str, name: str) -> OperationModel:
    return models.service_model(service).operation_model(name)


def test_a_timestamp_out_of_range_is_invalid_input_not_a_crash() -> None:
    body = {"DatabaseName": "db", "TableInput": {"Name": "t", "LastAccessTime": 1e300}}
    with pytest.raises(AwsError) as caught:
        models.parse_input(_op("glue", "CreateTable"), body, {})
    assert caught.value.code == "InvalidInputException" and caught.value.status == 400


def test_a_blob_that_is_not_base64_is_invalid_input() -> None:
    decimal = {"UnscaledValue": "not base64!", "Scale": 0}
    stats = {"ColumnName": "c", "ColumnType": "decimal", "AnalyzedTime": 0,
             "StatisticsData": {"Type": "DECIMAL", "DecimalColumnStatisticsData":
                                {"MinimumValue": decimal, "NumberOfNulls": 0,
                                 "NumberOfDistinctValues": 1}}}  # fmt: skip
    body = {"DatabaseName": "d", "TableName": "t", "ColumnStatisticsList": [stats]}
    with pytest.raises(AwsError) as caught:
        models.parse_input(_op("glue", "UpdateColumnStatisticsForTable"), body, {})
    assert caught.value.code == "InvalidInputException"
    decimal["UnscaledValue"] = "AQ=="
    parsed = models.parse_input(_op("glue", "UpdateColumnStatisticsForTable"), body, {})
    stats_in = parsed["ColumnStatisticsList"][0]["StatisticsData"]["DecimalColumnStatisticsData"]
    assert stats_in["MinimumValue"]["UnscaledValue"] == b"\x01"


@pytest.mark.parametrize(
    ("service", "name", "body", "where"),
    [
        ("glue", "GetTables", {"DatabaseName": "d", "MaxResults": 100000}, "maxResults"),
        ("glue", "GetDatabases", {"MaxResults": 101}, "maxResults"),
        ("athena", "ListNamedQueries", {"MaxResults": 51}, "maxResults"),
    ],
)
def test_a_number_above_the_models_max_is_refused(
    service: str, name: str, body: dict[str, object], where: str
) -> None:
    with pytest.raises(AwsError) as caught:
        models.parse_input(_op(service, name), body, {})
    assert f"at '{where}'" in caught.value.message
    assert "less than or equal to" in caught.value.message


def test_numbers_within_the_models_range_pass() -> None:
    body = {"DatabaseName": "d", "MaxResults": 100}
    assert models.parse_input(_op("glue", "GetTables"), body, {}) == body


def test_list_table_metadata_refuses_a_bad_expression_before_reading_the_catalog() -> None:
    from lakehouse.aws.athena_catalog import list_table_metadata

    params = {"CatalogName": "AwsDataCatalog", "DatabaseName": "retail", "Expression": "(("}
    with pytest.raises(AwsError) as caught:
        list_table_metadata(None, params)  # type: ignore[arg-type]  # never reached: no call
    assert caught.value.code == "InvalidRequestException"
    assert "not a valid pattern" in caught.value.message


def test_a_request_signed_long_ago_is_refused_and_a_fresh_one_passes() -> None:
    import datetime as dt

    from lakehouse.aws.auth import check_fresh

    now = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
    check_fresh("20261130T100500Z", now)
    check_fresh("20261130T095000Z", now)
    with pytest.raises(AwsError) as caught:
        check_fresh("20261129T100000Z", now)  # a day old: a replay
    assert caught.value.code == "InvalidSignatureException" and caught.value.status == 403
    assert "Signature expired" in caught.value.message
    with pytest.raises(AwsError) as missing:
        check_fresh("", now)
    assert missing.value.code == "IncompleteSignatureException"


def test_a_string_longer_than_the_models_max_is_refused() -> None:
    op = _op("athena", "StartQueryExecution")
    with pytest.raises(AwsError) as caught:
        models.parse_input(op, {"QueryString": "x" * 262_145}, {})
    assert "at 'queryString'" in caught.value.message and "262144" in caught.value.message
    assert models.parse_input(op, {"QueryString": "x" * 262_144}, {})
