"""Athena's query API on Trino: StartQueryExecution and the calls around it.

Queries run asynchronously (:mod:`athena_runner`) as the request's principal; state
is kept in SQLite (:mod:`athena_store`), results in the output location
(:mod:`athena_output`) and paged from a local copy (:mod:`athena_results`). A
principal sees its own executions; the governance admin sees every one. Named
queries and workgroups are :mod:`athena_workgroups`; data catalogs, databases and
table metadata :mod:`athena_catalog`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from typing import Any

from lakehouse.aws import athena_catalog, athena_workgroups  # noqa: F401  (registers their operations)
from lakehouse.aws import athena_results as results
from lakehouse.aws.athena_output import (
    default_bucket,
    default_location,
    ensure_default_bucket,
    result_location,
    split_location,
)
from lakehouse.aws.athena_runner import Runner, page_file
from lakehouse.aws.athena_store import TERMINAL, AthenaStore, Execution
from lakehouse.aws.athena_workgroups import ENGINE_VERSION, store_of, workgroup_row
from lakehouse.aws.errors import AwsError
from lakehouse.aws.registry import Call, operation
from lakehouse.config import Settings

_runners: dict[str, Runner] = {}
_runners_lock = threading.Lock()
_buckets_made: set[str] = set()  # homes whose results bucket this process made or saw


def runner_of(settings: Settings) -> Runner:
    """The one runner of this home's ``aws`` service (made on first use)."""
    key = str(settings.home_dir)
    with _runners_lock:
        if key not in _runners:
            _runners[key] = Runner(settings, store_of(settings))
        return _runners[key]


def invalid(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message, AthenaErrorCode="INVALID_INPUT")


def _is_admin(call: Call) -> bool:
    return not call.settings.governance_enabled or call.principal == call.settings.governance_admin


def _execution(call: Call, store: AthenaStore, execution_id: str) -> Execution:
    """The caller's execution ``execution_id``; InvalidRequestException as AWS answers."""
    found = store.execution(execution_id)
    if found is None or not (_is_admin(call) or found.principal == call.principal):
        raise invalid(f"QueryExecution {execution_id} was not found")
    return found


@operation("athena", "StartQueryExecution")
def start_query_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    token = params.get("ClientRequestToken")
    request = _request_key(params)
    if token:
        earlier = store.execution_by_token(call.principal, token)
        if earlier is not None:
            if earlier.request != request:
                raise AwsError("InvalidRequestException", "Idempotent parameters do not match",
                               AthenaErrorCode="INVALID_INPUT")  # fmt: skip
            return {"QueryExecutionId": earlier.id}
    group = workgroup_row(store, params.get("WorkGroup") or "primary")
    if group["state"] != "ENABLED":
        raise invalid(f"WorkGroup {group['name']} is disabled.")
    location = _output_location(call, group, params)
    context = params.get("QueryExecutionContext") or {}
    query = params["QueryString"]
    execution_id = str(uuid.uuid4())
    store.add_execution(
        id=execution_id, principal=call.principal, token=token, request=request, query=query,
        workgroup=group["name"], catalog=context.get("Catalog"), database=context.get("Database"),
        output_location=location, state="QUEUED", submitted=time.time(),
    )  # fmt: skip
    runner_of(call.settings).submit(execution_id)
    return {"QueryExecutionId": execution_id}


def _check_own_location(call: Call, location: str) -> None:
    """A governed principal's own output location must be in the results bucket: the
    service writes results with the stack's key, so a location in a table's folder
    would let a principal add files (rows of a Hive-style table) it may not write."""
    if _is_admin(call) or not location.startswith("s3://"):
        return
    from lakehouse.governance.store import load_policy

    if load_policy(call.settings).is_admin(call.principal, call.settings.governance_admin):
        return
    bucket = default_bucket(call.settings)
    if split_location(location)[0] != bucket:
        raise AwsError("AccessDeniedException", f"{call.principal} may not write query results to "
                       f"{location}: with governance on, a principal's results go to s3://{bucket}/ "
                       "(leave OutputLocation out, or ask the admin for a workgroup).")  # fmt: skip


def _request_key(params: dict[str, Any]) -> str:
    """The parameters an idempotency token pins (all but the token itself)."""
    return json.dumps({k: v for k, v in params.items() if k != "ClientRequestToken"},
                      sort_keys=True, default=str)  # fmt: skip


def _output_location(call: Call, group: dict[str, Any], params: dict[str, Any]) -> str:
    configuration = json.loads(group["configuration"])
    ours = (configuration.get("ResultConfiguration") or {}).get("OutputLocation")
    asked = (params.get("ResultConfiguration") or {}).get("OutputLocation")
    location = (
        ours if configuration.get("EnforceWorkGroupConfiguration") and ours else asked or ours
    )
    if location and location == asked and location != ours:
        _check_own_location(call, location)
    if group["name"] == "primary" and not location:
        location = default_location(call.settings)
    if not location:
        raise invalid(
            "No output location provided. An output location is required either through the "
            "Workgroup result configuration setting or as an API input."
        )
    try:
        bucket, _ = split_location(location)
    except ValueError as exc:
        raise invalid(f"outputLocation {location} is not a valid S3 location: {exc}") from exc
    if bucket == default_bucket(call.settings) and str(call.settings.home_dir) not in _buckets_made:
        ensure_default_bucket(call.settings)  # before the query: a CTAS writes its table there
        _buckets_made.add(str(call.settings.home_dir))
    if bucket == call.settings.warehouse_bucket:
        raise invalid(f"lakehouse does not write query results into the lake's warehouse bucket "
                      f"({bucket}); choose another OutputLocation.")  # fmt: skip
    return location


def query_execution(call: Call, execution: Execution) -> dict[str, Any]:
    """Athena's QueryExecution of a stored execution."""
    now = time.time()
    end = execution.completed or now
    queue_end = execution.started or end
    status: dict[str, Any] = {
        "State": execution.state, "StateChangeReason": execution.reason,
        "SubmissionDateTime": _time(execution.submitted),
        "CompletionDateTime": _time(execution.completed) if execution.completed else None,
        "AthenaError": json.loads(execution.error) if execution.error else None,
    }  # fmt: skip
    statistics = {
        "EngineExecutionTimeInMillis": execution.engine_ms or 0,
        "DataScannedInBytes": execution.scanned or 0,
        "TotalExecutionTimeInMillis": int((end - execution.submitted) * 1000),
        "QueryQueueTimeInMillis": int((queue_end - execution.submitted) * 1000),
        "ServiceProcessingTimeInMillis": 0,
        "DataManifestLocation": execution.manifest,
    }
    context = {"Database": execution.database, "Catalog": execution.catalog}
    location = result_location(execution)
    return {
        "QueryExecutionId": execution.id, "Query": execution.query,
        "StatementType": execution.statement_type, "SubstatementType": execution.substatement,
        "ResultConfiguration": {"OutputLocation": location} if location else {},
        "QueryExecutionContext": {k: v for k, v in context.items() if v},
        "Status": status, "Statistics": statistics, "WorkGroup": execution.workgroup,
        "ExecutionParameters": json.loads(execution.request).get("ExecutionParameters"),
        "EngineVersion": ENGINE_VERSION,
    }  # fmt: skip


def _time(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@operation("athena", "GetQueryExecution")
def get_query_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    return {
        "QueryExecution": query_execution(call, _execution(call, store, params["QueryExecutionId"]))
    }


@operation("athena", "BatchGetQueryExecution")
def batch_get_query_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    found, missing = [], []
    for execution_id in params["QueryExecutionIds"]:
        try:
            found.append(query_execution(call, _execution(call, store, execution_id)))
        except AwsError as exc:
            missing.append({"QueryExecutionId": execution_id, "ErrorCode": exc.code,
                            "ErrorMessage": exc.message})  # fmt: skip
    return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}


@operation("athena", "StopQueryExecution")
def stop_query_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    execution = _execution(call, store, params["QueryExecutionId"])
    if execution.state not in TERMINAL:
        runner_of(call.settings).stop(execution.id)
    return {}


@operation("athena", "ListQueryExecutions")
def list_query_executions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    group = workgroup_row(store, params.get("WorkGroup") or "primary")
    ids = store.execution_ids(group["name"])
    if not _is_admin(call):
        ids = [
            i
            for i in ids
            if (e := store.execution(i)) is not None and e.principal == call.principal
        ]
    chosen, token = offset_page(ids, params, default=50, largest=50)
    return {"QueryExecutionIds": chosen, "NextToken": token}


def offset_page(items: list[Any], params: dict[str, Any], default: int, largest: int
                ) -> tuple[list[Any], str | None]:  # fmt: skip
    """One page after NextToken (an opaque offset), at most MaxResults (<= ``largest``)."""
    size = params.get("MaxResults") or default
    if size > largest:
        raise invalid(f"1 validation error detected: Value '{size}' at 'maxResults' failed to "
                      f"satisfy constraint: Member must have value less than or equal to {largest}")  # fmt: skip
    token_in = params.get("NextToken")
    start = _token_value(token_in, "offset") if token_in else 0
    end = start + size
    token = _token({"offset": end}) if end < len(items) else None
    return items[start:end], token


def _token(value: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _token_value(token: str, key: str) -> int:
    try:
        value = int(json.loads(base64.urlsafe_b64decode(token.encode()))[key])
        if value < 0:  # a forged token: a negative offset would repeat the last items
            raise ValueError(value)
        return value
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid("The NextToken is not valid.") from exc


@operation("athena", "GetQueryResults")
def get_query_results(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    execution = _execution(call, store, params["QueryExecutionId"])
    if execution.state in ("QUEUED", "RUNNING"):
        raise invalid(f"Query has not yet finished. Current state: {execution.state}")
    if execution.state != "SUCCEEDED":
        reason = f". {execution.reason}" if execution.reason else ""
        raise invalid(
            f"Query did not finish successfully. Final query state: {execution.state}{reason}"
        )
    size = params.get("MaxResults") or results.MAX_RESULTS
    if size > results.MAX_RESULTS:
        raise invalid(f"1 validation error detected: Value '{size}' at 'maxResults' failed to "
                      "satisfy constraint: Member must have value less than or equal to 1000")  # fmt: skip
    offset = _token_value(params["NextToken"], "byte") if params.get("NextToken") else 0
    path = page_file(call.settings, execution.id)
    if not path.is_file():
        raise invalid(f"The results of query {execution.id} are no longer kept by this service; "
                      f"read them from {result_location(execution)}.")  # fmt: skip
    try:
        rows, following = results.read_page(path, offset, size)
    except ValueError as exc:
        raise invalid("The NextToken is not valid.") from exc
    answer: dict[str, Any] = {
        "ResultSet": {"Rows": results.datum_rows(rows),
                      "ResultSetMetadata": {"ColumnInfo": execution.column_list()}},
        "NextToken": _token({"byte": following}) if following is not None else None,
    }  # fmt: skip
    if execution.update_count is not None:
        answer["UpdateCount"] = execution.update_count
    return answer
