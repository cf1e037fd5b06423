"""Trino's own access decisions in the audit log (``lakehouse_audit.access_log``).

Trino enforces the policy itself (its rules file), for the library and for direct
clients alike (the Trino CLI, the DB-API, BI tools), so only Trino knows what each
query read or was refused. It keeps every finished query, with the tables and
columns it read (``inputs``) and its failure, and serves them on its REST API
(``/v1/query``; the admin may view every user's). :func:`collect` reads the queries
of governed users (not the admin's) that finished since the last collection and
records one decision per table read (engine ``trino``, the query id Trino gave),
or one denial with Trino's reason. Each query is recorded once (the ids collected
are kept, under a lock).

Collection runs whenever the audit log is read (``lakehouse audit``,
:func:`lakehouse.governance.audit.read_log`), in every audit flush of a lakehouse
process (a governed query or ingest, the console) and at ``lakehouse up``; Trino
keeps a finished query at least 15 minutes (``query.min-expire-age``) and beyond
that its newest 100 (``query.max-history``), so a decision is lost only when more
than 100 queries finish and none of those runs for 15 minutes. The filters and
masks recorded are those of the policy the query ran under; when the policy changed
after the query started (or the table is gone) they are not known and the record
says so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.governance.policy import Policy

log = logging.getLogger("lakehouse.governance.audit")
ENGINE = "trino"
FINISHED = ("FINISHED", "FAILED")
KEEP_IDS = 20_000  # ids remembered (Trino keeps far fewer queries)
TIMEOUT = 5.0
UNKNOWN_FILTERS = "unknown: the policy changed after the query started"


def _collected_path(settings: Settings) -> Path:
    return settings.home_dir / "governance" / "audit" / "trino-collected.json"


def _get(settings: Settings, path: str) -> Any:
    request = urllib.request.Request(settings.trino_uri + path,
                                     headers={"X-Trino-User": settings.governance_admin})  # fmt: skip
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        return json.loads(answer.read())


def _moment(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def decisions(info: dict[str, Any], policy: Policy, admin: str, catalog: str,
              policy_changed_at: dt.datetime | None,
              columns_of: Callable[[str], Sequence[str]]) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The audit records (``audit.record``'s keywords) of one finished query's
    QueryInfo: a denial with Trino's reason, else one record per lake table read
    (``columns_of(table)``: all its columns, to decide the filters the policy put)."""
    from lakehouse.engines.trino import denied
    from lakehouse.governance.access import table_access

    user = info.get("session", {}).get("user", "")
    query_id = info.get("queryId")
    stats = info.get("queryStats") or {}
    # When Trino decided, not when it was collected: a query of an hour ago is not "now".
    at = _moment(stats.get("endTime")) or _moment(stats.get("createTime"))
    error = (info.get("errorCode") or {}).get("name")
    if error == "PERMISSION_DENIED":
        message = (info.get("failureInfo") or {}).get("message", "Access Denied")
        refusal = denied(user, message, catalog)
        yield {"principal": user, "resource": refusal.resource, "columns": [], "filters": [],
               "allowed": False, "query_id": query_id, "action": refusal.permission,
               "reason": message, "at": at}  # fmt: skip
        return
    started = _moment(stats.get("createTime"))
    known = policy_changed_at is None or started is None or policy_changed_at <= started
    # The column guard's own lookup (trino_guard, run as the admin in the row filter)
    # is an input too: not the user's read unless its query names information_schema.
    named_metadata = "information_schema" in str(info.get("query", "")).lower()
    for read in info.get("inputs") or []:
        if read.get("catalogName") != catalog:
            continue
        if read.get("schema") == "information_schema" and not named_metadata:
            continue
        table = f"{read.get('schema')}.{read.get('table')}"
        columns = [c.get("name", "") for c in read.get("columns") or []]
        filters = [UNKNOWN_FILTERS]
        if known:
            try:
                access = table_access(policy, user, table, list(columns_of(table)), admin=admin)
                filters = [*access.applied, *([access.row_filter] if access.row_filter else [])]
            except Exception:  # the table is gone, or the policy no longer fits it
                filters = [UNKNOWN_FILTERS]
        yield {"principal": user, "resource": table, "columns": columns, "filters": filters,
               "allowed": True, "query_id": query_id, "action": "SELECT", "at": at,
               "reason": None if error is None else f"the query failed: {error}"}  # fmt: skip


def collect(settings: Settings) -> int:
    """Record the governed users' Trino queries finished since the last collection;
    how many records were written. 0 when governance is off or this home's governed
    Trino does not run or answer (its queries are collected when it does, while it
    keeps them)."""
    from lakehouse.governance.trino_rules import governed_trino_running

    if not settings.governance_enabled or not governed_trino_running(settings):
        return 0  # only this home's governed Trino: another's queries are not ours
    try:
        listed = _get(settings, "/v1/query")
    except (urllib.error.URLError, OSError, ValueError):
        return 0
    path = _collected_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        return _collect(settings, listed, path)


def _collect(settings: Settings, listed: list[dict[str, Any]], path: Path) -> int:
    from lakehouse.governance.audit import record
    from lakehouse.governance.store import load_policy, policy_path

    try:
        seen = set(json.loads(path.read_text()))
    except (OSError, ValueError):
        seen = set()
    policy, admin = load_policy(settings), settings.governance_admin
    fresh = [q for q in listed
             if q.get("state") in FINISHED and q.get("queryId") not in seen
             and not policy.is_admin((q.get("session") or {}).get("user", admin), admin)]  # fmt: skip
    try:
        changed = dt.datetime.fromtimestamp(policy_path(settings).stat().st_mtime, dt.UTC)
    except OSError:
        changed = None
    written = 0
    columns_of = _catalog_columns(settings)
    for query in fresh:
        try:
            info = _get(settings, f"/v1/query/{query['queryId']}")
        except (urllib.error.URLError, OSError, ValueError):
            continue  # expired meanwhile, or Trino went away: nothing to record
        for decision in decisions(info, policy, admin, settings.catalog_name, changed, columns_of):
            record(settings, decision.pop("principal"), ENGINE, decision.pop("resource"),
                   decision.pop("columns"), decision.pop("filters"), decision.pop("allowed"),
                   decision.pop("query_id"), **decision)  # fmt: skip
            written += 1
        seen.add(query["queryId"])
    if fresh:  # Trino's ids start with the time: the newest are kept
        path.write_text(json.dumps(sorted(seen)[-KEEP_IDS:]))
    return written


def _catalog_columns(settings: Settings) -> Callable[[str], list[str]]:
    """A table's columns from the catalog, each table loaded once."""
    from lakehouse.lake import catalog as cat

    found: dict[str, list[str]] = {}

    def columns_of(table: str) -> list[str]:
        if table not in found:
            loaded = cat.load_table(cat.open_catalog(settings), table)
            found[table] = [f.name for f in loaded.schema().fields]
        return found[table]

    return columns_of
