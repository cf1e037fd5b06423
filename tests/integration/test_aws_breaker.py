"""Hostile and careless use of the aws service, found by trying it as a user: each test
failed before its fix."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lakehouse import Lakehouse, Settings
from tests.integration.test_aws_athena import client, run

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino, pytest.mark.lakehouse_aws]


def test_an_output_bucket_that_does_not_exist_fails_the_query_before_it_runs(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    athena, s3 = client(stack, "athena"), client(stack, "s3")
    lake.sql(f"CREATE TABLE {namespace}.kept (id BIGINT)", engine="trino")
    missing = f"s3://no-such-bucket-{namespace.replace('_', '-')}/out/"
    execution = run(athena, f"INSERT INTO {namespace}.kept VALUES (1)",
                    ResultConfiguration={"OutputLocation": missing})  # fmt: skip
    status = execution["Status"]
    assert status["State"] == "FAILED", status
    assert "Unable to verify/create output bucket" in status["StateChangeReason"]
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert missing.split("/")[2] not in buckets  # no bucket made from a misspelt location
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.kept", engine="trino").to_pylist() == [
        {"n": 0}
    ]  # the write did not run


def _signed_post(stack: Settings, target: str, scope_service: str, signed_at: dt.datetime
                 ) -> requests.Response:  # fmt: skip
    """An Athena/Glue JSON call signed for ``scope_service`` at ``signed_at`` (UTC)."""
    body = json.dumps({})
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Date": signed_at.strftime("%Y%m%dT%H%M%SZ")}  # fmt: skip
    request = AWSRequest(method="POST", url=f"{stack.aws_uri}/", data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(stack.access_key, stack.secret_key), scope_service, stack.region)
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    scope = f"{signed_at:%Y%m%d}/{stack.region}/{scope_service}/aws4_request"
    signed = ";".join(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={stack.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return requests.post(f"{stack.aws_uri}/", data=body, headers=dict(request.headers), timeout=30)


def test_a_signature_is_for_one_service_and_fifteen_minutes(stack: Settings) -> None:
    now = dt.datetime.now(dt.UTC)
    fresh = _signed_post(stack, "AmazonAthena.ListWorkGroups", "athena", now)
    assert fresh.status_code == 200, fresh.text  # the way this test signs is right
    other = _signed_post(stack, "AmazonAthena.ListWorkGroups", "glue", now)
    assert other.status_code == 403 and other.json()["__type"] == "InvalidSignatureException"
    assert "scoped to correct service: 'athena'" in other.json()["message"]
    replayed = _signed_post(stack, "AWSGlue.GetDatabases", "glue", now - dt.timedelta(hours=1))
    assert replayed.status_code == 403, replayed.text
    assert replayed.json()["message"].startswith("Signature expired")
