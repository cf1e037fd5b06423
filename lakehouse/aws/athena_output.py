"""Where Athena's results go: ``<OutputLocation>/<id>.csv`` (``<id>.txt`` for DDL) and
``<id>.csv.metadata`` on the lake's S3.

Athena's own ``.metadata`` file is a binary protobuf of the result's columns that
only Athena reads back. lakehouse writes an honest stand-in instead: JSON with a
``format`` field naming it, the execution id, the ColumnInfo list and the row count.
The primary workgroup's location is ``s3://aws-athena-query-results-<account>-<region>/``
(the bucket name Athena's console proposes); lakehouse creates that bucket. Any
other bucket must exist, as on AWS ("Unable to verify/create output bucket").
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from minio.error import S3Error

from lakehouse.aws import athena_results as results
from lakehouse.aws.athena_store import Execution
from lakehouse.aws.registry import ACCOUNT_ID
from lakehouse.config import Settings

METADATA_FORMAT = "lakehouse-athena-result-metadata/1 (JSON; Athena's own is binary protobuf)"


class OutputError(Exception):
    """The output location cannot take the results; the message is Athena's reason."""


def default_bucket(settings: Settings) -> str:
    """``aws-athena-query-results-<account>-<region>``."""
    return f"aws-athena-query-results-{ACCOUNT_ID}-{settings.region}"


def default_location(settings: Settings) -> str:
    return f"s3://{default_bucket(settings)}/"


def split_location(location: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as (bucket, ``some/prefix/``); ValueError if not s3://."""
    if not location.startswith("s3://") or len(location) <= len("s3://"):
        raise ValueError(f"{location} is not an s3:// location")
    bucket, _, prefix = location[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{location} names no bucket")
    return bucket, (prefix.rstrip("/") + "/" if prefix.strip("/") else "")


def result_name(execution_id: str, ddl: bool) -> str:
    return f"{execution_id}.txt" if ddl else f"{execution_id}.csv"


def result_location(execution: Execution) -> str | None:
    """The result file's ``s3://`` URI (None when the execution has no output location)."""
    if not execution.output_location:
        return None
    bucket, prefix = split_location(execution.output_location)
    return f"s3://{bucket}/{prefix}{result_name(execution.id, execution.statement_type == 'DDL')}"


def _client(settings: Settings) -> Any:
    from lakehouse.services.s3 import s3_client

    return s3_client(
        settings.s3_endpoint, settings.access_key, settings.secret_key, settings.region
    )


def ensure_default_bucket(settings: Settings) -> None:
    client = _client(settings)
    bucket = default_bucket(settings)
    if not client.bucket_exists(bucket):
        try:
            client.make_bucket(bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def check_bucket(settings: Settings, execution: Execution) -> None:
    """Raise OutputError, Athena's reason, when the output location's bucket does not
    exist (the default results bucket is made when missing). Checked before the query runs: SeaweedFS
    makes a bucket on a first PUT, so a misspelt location would otherwise become a new
    bucket, and a write would run before its results found nowhere to go."""
    if not execution.output_location:
        return
    bucket, _ = split_location(execution.output_location)
    # The default bucket is made at StartQueryExecution (and again by upload if gone).
    if bucket != default_bucket(settings) and not _client(settings).bucket_exists(bucket):
        raise OutputError(f"Unable to verify/create output bucket {bucket}")


def upload(settings: Settings, execution: Execution, page_file: Path,
           columns: list[dict[str, Any]], ddl: bool) -> None:  # fmt: skip
    """Write the rows of ``page_file`` (JSON lines) as the result file and its metadata."""
    if not execution.output_location:
        return
    bucket, prefix = split_location(execution.output_location)
    if bucket == default_bucket(settings):
        ensure_default_bucket(settings)
    client = _client(settings)
    name = result_name(execution.id, ddl)
    with tempfile.TemporaryDirectory(prefix="lakehouse-athena-") as scratch:
        local = Path(scratch) / name
        rows = 0
        with page_file.open(encoding="utf-8") as source, local.open("wb") as out:
            for line in source:
                row = json.loads(line)
                out.write(
                    b"".join(results.tsv_text([row])) if ddl else results.csv_line(row).encode()
                )
                rows += 1
        metadata = json.dumps({"format": METADATA_FORMAT, "QueryExecutionId": execution.id,
                               "ColumnInfo": columns, "Rows": rows}).encode()  # fmt: skip
        try:
            client.fput_object(bucket, prefix + name, str(local),
                               content_type="text/plain" if ddl else "text/csv")  # fmt: skip
            client.put_object(bucket, prefix + name + ".metadata", io.BytesIO(metadata),
                              len(metadata), content_type="application/json")  # fmt: skip
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                raise OutputError(f"Unable to verify/create output bucket {bucket}") from exc
            raise OutputError(f"Cannot write the results to {execution.output_location}: "
                              f"{exc.code}: {exc.message}") from exc  # fmt: skip


def upload_manifest(settings: Settings, execution: Execution, paths: list[str]) -> str | None:
    """Athena's data manifest of a CTAS: ``<id>-manifest.csv`` (the new table's data
    files, one S3 URI a line) in the output location; its URI (None without a location)."""
    if not execution.output_location:
        return None
    bucket, prefix = split_location(execution.output_location)
    if bucket == default_bucket(settings):
        ensure_default_bucket(settings)
    body = "".join(f"{path}\n" for path in paths).encode()
    key = f"{prefix}{execution.id}-manifest.csv"
    try:
        _client(settings).put_object(
            bucket, key, io.BytesIO(body), len(body), content_type="text/csv"
        )
    except S3Error as exc:
        raise OutputError(f"Cannot write the data manifest to s3://{bucket}/{key}: "
                          f"{exc.code}: {exc.message}") from exc  # fmt: skip
    return f"s3://{bucket}/{key}"
