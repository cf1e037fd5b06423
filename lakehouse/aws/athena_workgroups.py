"""Athena workgroups and named queries, kept in the Athena store.

The ``primary`` workgroup always exists (it cannot be deleted): its output location
is ``s3://aws-athena-query-results-<account>-<region>/``, which lakehouse creates.
Every workgroup reports Athena's engine version 3 (Trino is what runs the queries).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from typing import Any

from lakehouse.aws.athena_output import default_location
from lakehouse.aws.athena_store import AthenaStore
from lakehouse.aws.errors import AwsError
from lakehouse.aws.registry import Call, operation
from lakehouse.config import Settings

PRIMARY = "primary"
ENGINE_VERSION = {
    "SelectedEngineVersion": "AUTO",
    "EffectiveEngineVersion": "Athena engine version 3",
}
ENGINE_NAMES = ("AUTO", "Athena engine version 3")

_stores: dict[str, AthenaStore] = {}
_stores_lock = threading.Lock()


def store_of(settings: Settings) -> AthenaStore:
    """This home's store, opened once per process (running executions left by a
    previous process become FAILED then), with the primary workgroup in it."""
    key = str(settings.home_dir)
    with _stores_lock:
        if key not in _stores:
            store = AthenaStore.open(settings)
            if not store.rows("workgroups", "name = ?", (PRIMARY,)):
                configuration = {"ResultConfiguration": {"OutputLocation": default_location(settings)},
                                 "EnforceWorkGroupConfiguration": False}  # fmt: skip
                store.insert("workgroups", name=PRIMARY, description="", state="ENABLED",
                             created=time.time(), configuration=json.dumps(configuration),
                             tags="[]")  # fmt: skip
            if store.orphaned_trino_ids:
                threading.Thread(target=kill_trino_queries, args=(settings, store.orphaned_trino_ids),
                                 name="athena-orphans", daemon=True).start()  # fmt: skip
            _stores[key] = store
        return _stores[key]


def kill_trino_queries(
    settings: Settings, query_ids: list[str], message: str = "the lakehouse aws service restarted"
) -> None:
    """Kill Trino queries nobody reads any more: left by a previous process, or stopped."""
    from lakehouse.engines.trino import TrinoEngine
    from lakehouse.errors import LakehouseError

    engine = TrinoEngine(settings)
    for query_id in query_ids:
        # Already finished, or Trino is down: nothing left to stop (Trino itself abandons a
        # query no client polls after query.client.timeout, 5 minutes by default).
        with contextlib.suppress(LakehouseError):
            engine.sql(f"CALL system.runtime.kill_query(query_id => '{query_id}', "
                       f"message => '{message}')", principal=engine.admin)  # fmt: skip


def invalid(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message, AthenaErrorCode="INVALID_INPUT")


def workgroup_row(store: AthenaStore, name: str) -> dict[str, Any]:
    found = store.rows("workgroups", "name = ?", (name,))
    if not found:
        raise invalid(f"WorkGroup {name} is not found.")
    return found[0]


def _engine(configuration: dict[str, Any]) -> dict[str, Any]:
    asked = (configuration.get("EngineVersion") or {}).get("SelectedEngineVersion", "AUTO")
    if asked not in ENGINE_NAMES:
        raise invalid(f"Engine version '{asked}' is not available here: lakehouse runs Athena "
                      "engine version 3 (Trino); use AUTO or 'Athena engine version 3'.")  # fmt: skip
    return {"SelectedEngineVersion": asked, "EffectiveEngineVersion": "Athena engine version 3"}


def _workgroup(row: dict[str, Any]) -> dict[str, Any]:
    configuration = json.loads(row["configuration"])
    configuration["EngineVersion"] = _engine(configuration)
    return {"Name": row["name"], "State": row["state"], "Description": row["description"],
            "CreationTime": _time(row["created"]), "Configuration": configuration}  # fmt: skip


def _time(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def require_admin(call: Call, what: str) -> None:
    """AccessDeniedException unless governance is off or the caller is its admin (or in
    role admin): a workgroup's output location decides where everyone's results go."""
    if not call.settings.governance_enabled:
        return
    from lakehouse.governance.store import load_policy

    admin = call.settings.governance_admin
    if not load_policy(call.settings).is_admin(call.principal, admin):
        raise AwsError("AccessDeniedException", f"{call.principal} may not {what}: only the "
                       f"governance admin ({admin}, or a member of role admin) may.")  # fmt: skip


@operation("athena", "CreateWorkGroup")
def create_work_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    require_admin(call, "create workgroups")
    store = store_of(call.settings)
    name = params["Name"]
    if store.rows("workgroups", "name = ?", (name,)):
        raise invalid(f"WorkGroup {name} is already created")
    configuration = dict(params.get("Configuration") or {})
    configuration["EngineVersion"] = _engine(configuration)
    store.insert("workgroups", name=name, description=params.get("Description") or "",
                 state="ENABLED", created=time.time(), configuration=json.dumps(configuration),
                 tags=json.dumps(params.get("Tags") or []))  # fmt: skip
    return {}


@operation("athena", "GetWorkGroup")
def get_work_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"WorkGroup": _workgroup(workgroup_row(store_of(call.settings), params["WorkGroup"]))}


@operation("athena", "ListWorkGroups")
def list_work_groups(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    from lakehouse.aws.athena import offset_page

    rows = store_of(call.settings).rows("workgroups")
    summaries = [{k: v for k, v in _workgroup(row).items() if k != "Configuration"}
                 | {"EngineVersion": ENGINE_VERSION} for row in rows]  # fmt: skip
    chosen, token = offset_page(summaries, params, default=50, largest=50)
    return {"WorkGroups": chosen, "NextToken": token}


@operation("athena", "UpdateWorkGroup")
def update_work_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    require_admin(call, "change workgroups")
    store = store_of(call.settings)
    row = workgroup_row(store, params["WorkGroup"])
    configuration = json.loads(row["configuration"])
    updates = params.get("ConfigurationUpdates") or {}
    result = dict(configuration.get("ResultConfiguration") or {})
    result_updates = updates.get("ResultConfigurationUpdates") or {}
    if "OutputLocation" in result_updates:
        result["OutputLocation"] = result_updates["OutputLocation"]
    if result_updates.get("RemoveOutputLocation"):
        result.pop("OutputLocation", None)
    configuration["ResultConfiguration"] = result
    for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled",
                "BytesScannedCutoffPerQuery", "RequesterPaysEnabled", "EngineVersion"):  # fmt: skip
        if key in updates:
            configuration[key] = updates[key]
    if updates.get("RemoveBytesScannedCutoffPerQuery"):
        configuration.pop("BytesScannedCutoffPerQuery", None)
    configuration["EngineVersion"] = _engine(configuration)
    values: dict[str, Any] = {"configuration": json.dumps(configuration)}
    if "Description" in params:
        values["description"] = params["Description"]
    if "State" in params:
        values["state"] = params["State"]
    store.set("workgroups", "name", row["name"], **values)
    return {}


@operation("athena", "DeleteWorkGroup")
def delete_work_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    require_admin(call, "delete workgroups")
    store = store_of(call.settings)
    row = workgroup_row(store, params["WorkGroup"])
    if row["name"] == PRIMARY:
        raise invalid("Cannot delete primary workgroup")
    named = store.rows("named_queries", "workgroup = ?", (row["name"],))
    if named and not params.get("RecursiveDeleteOption"):
        raise invalid(f"WorkGroup {row['name']} is not empty: it holds {len(named)} named "
                      "queries (set RecursiveDeleteOption to delete them too).")  # fmt: skip
    store.delete("named_queries", "workgroup", row["name"])
    store.delete("workgroups", "name", row["name"])
    return {}


@operation("athena", "CreateNamedQuery")
def create_named_query(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    store = store_of(call.settings)
    group = workgroup_row(store, params.get("WorkGroup") or PRIMARY)
    token = params.get("ClientRequestToken")
    if token:
        for row in store.rows(
            "named_queries", "principal = ? AND token = ?", (call.principal, token)
        ):
            return {"NamedQueryId": row["id"]}
    named_id = str(uuid.uuid4())
    store.insert("named_queries", id=named_id, principal=call.principal, token=token,
                 name=params["Name"], description=params.get("Description"),
                 database=params["Database"], query=params["QueryString"], workgroup=group["name"])  # fmt: skip
    return {"NamedQueryId": named_id}


def _shown(call: Call, row: dict[str, Any]) -> bool:
    """Whether the caller may see the saved query ``row``: its author's, and everyone's
    to the admin when governance is on (its SQL may name tables and hold literals the
    caller may not see, as a query execution's does)."""
    if row["principal"] == call.principal:
        return True
    try:
        require_admin(call, "see another principal's named query")
    except AwsError:
        return False
    return True


def _named(call: Call, named_id: str, shown_only: bool = False) -> dict[str, Any]:
    """The named query ``named_id``; InvalidRequestException (as AWS answers) when it
    does not exist or, ``shown_only``, the caller may not see it."""
    rows = store_of(call.settings).rows("named_queries", "id = ?", (named_id,))
    if not rows or (shown_only and not _shown(call, rows[0])):
        raise invalid(f"NamedQuery {named_id} was not found")
    row = rows[0]
    return {"Name": row["name"], "Description": row["description"], "Database": row["database"],
            "QueryString": row["query"], "NamedQueryId": row["id"], "WorkGroup": row["workgroup"]}  # fmt: skip


@operation("athena", "GetNamedQuery")
def get_named_query(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"NamedQuery": _named(call, params["NamedQueryId"], shown_only=True)}


@operation("athena", "BatchGetNamedQuery")
def batch_get_named_query(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found, missing = [], []
    for named_id in params["NamedQueryIds"]:
        try:
            found.append(_named(call, named_id, shown_only=True))
        except AwsError as exc:
            missing.append(
                {"NamedQueryId": named_id, "ErrorCode": exc.code, "ErrorMessage": exc.message}
            )
    return {"NamedQueries": found, "UnprocessedNamedQueryIds": missing}


@operation("athena", "ListNamedQueries")
def list_named_queries(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    from lakehouse.aws.athena import offset_page

    store = store_of(call.settings)
    group = workgroup_row(store, params.get("WorkGroup") or PRIMARY)
    rows = store.rows("named_queries", "workgroup = ?", (group["name"],))
    ids = [row["id"] for row in rows if _shown(call, row)]
    chosen, token = offset_page(ids, params, default=50, largest=50)
    return {"NamedQueryIds": chosen, "NextToken": token}


@operation("athena", "DeleteNamedQuery")
def delete_named_query(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _named(call, params["NamedQueryId"])
    owner = store_of(call.settings).rows("named_queries", "id = ?", (params["NamedQueryId"],))
    if owner[0]["principal"] != call.principal:  # a saved query is its author's to delete
        require_admin(call, f"delete {owner[0]['principal']}'s named query")
    store_of(call.settings).delete("named_queries", "id", params["NamedQueryId"])
    return {}
