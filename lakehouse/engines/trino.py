"""Trino as an engine: DB-API connections with ``lake`` as the default catalog.

Trino has no server-side default catalog, so every session lakehouse opens sets
catalog ``lake`` and schema ``default``; plain ``namespace.table`` names then
resolve in the lake, exactly as in DuckDB and Spark.
"""

from __future__ import annotations

import re
import time
from typing import Any

import lz4.block
import pyarrow as pa
import sqlglot
import trino
import zstandard
from sqlglot import exp
from trino.dbapi import Connection, Cursor

from lakehouse.config import Settings
from lakehouse.engines.limits import check_result_size
from lakehouse.engines.missing_files import missing_file_error
from lakehouse.engines.trino_arrow import arrow_schema
from lakehouse.engines.trino_results import ENCODING, record_batches
from lakehouse.errors import AccessDeniedError, QueryError
from lakehouse.services.catalog import DEFAULT_NAMESPACE

ENGINE = "trino"
USER = "lakehouse"  # the Trino user with governance off (anyone may read anything then)
# A coordinator just started can list its node active yet refuse to schedule a scan for
# a few seconds (NO_NODES_AVAILABLE, nothing ran): queries wait that out this long.
NO_NODES_WAIT_SECONDS = 60.0
# Trino's "Access Denied: Cannot select from columns [email] in table or view lake.ns.t"
_DENIED = re.compile(
    r"Cannot (?P<verb>select from|insert into|delete from|update|create table|drop table|"
    r"access catalog|show columns of table|show tables of schema|create schema|drop schema)"
    r"(?: columns \[(?P<columns>[^\]]*)\] in)?(?: table or view| table| schema| view)?"
    r" (?P<resource>\S+)"
)
_VERBS = {"select from": "SELECT", "insert into": "INSERT", "delete from": "DELETE",
          "update": "INSERT and DELETE", "create table": "CREATE_TABLE", "drop table": "DROP",
          "access catalog": "any", "show columns of table": "DESCRIBE",
          "show tables of schema": "DESCRIBE", "create schema": "CREATE", "drop schema": "DROP"}  # fmt: skip


def default_user(settings: Settings) -> str:
    """Who lakehouse connects to Trino as: governance off, ``lakehouse``; on, the
    configured principal (``LAKEHOUSE_PRINCIPAL``) or else the governance admin."""
    if not settings.governance_enabled:
        return USER
    return settings.principal or settings.governance_admin


class TrinoEngine:
    """Runs SQL on the lake house's Trino coordinator."""

    name = ENGINE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def admin(self) -> str:
        """The Trino user of lakehouse's own checks: may read everything."""
        s = self.settings
        return s.governance_admin if s.governance_enabled else USER

    def close(self) -> None:
        """Nothing to release: each query opens and closes its own connection."""

    def connect(
        self, schema: str = DEFAULT_NAMESPACE, user: str | None = None, **options: Any
    ) -> Connection:
        """A DB-API connection from the ``trino`` client, catalog ``lake``, as ``user``
        (by default :func:`default_user`: with governance on, Trino enforces the
        policy for that user).

        The session's time zone is UTC, as on every lakehouse engine, unless
        ``timezone=`` says otherwise: the client would otherwise send the
        caller's local zone, and dates cut from zoned timestamps would differ.
        """
        s = self.settings
        options.setdefault("timezone", "UTC")
        return trino.dbapi.connect(
            host=s.client_host, port=s.trino_port, user=user or default_user(s),
            catalog=s.catalog_name, schema=schema, **options,
        )  # fmt: skip

    def sql(
        self, query: str, namespace: str | None = None, principal: str | None = None
    ) -> pa.Table:
        """Run ``query`` (Trino dialect) as ``principal`` (default :func:`default_user`);
        Arrow typed from Trino's declared columns.

        With governance on, Trino's rules are brought up to date first when the policy
        or the list of tables changed. The result comes through Trino's spooling
        protocol (``ENCODING`` segments, converted one at a time), or the direct
        protocol when the server has no spooling; a large result costs its Arrow size
        plus a few segments. Raises ``AccessDeniedError`` when the policy refuses,
        ``QueryError`` otherwise, also for a result over ``result_max_bytes``.
        """
        if self.settings.governance_enabled:
            from lakehouse.governance.trino_rules import ensure_current

            ensure_current(self.settings, lake_tables_read(query, namespace))
        return self._run(query, namespace, principal or default_user(self.settings))

    def _run(self, query: str, namespace: str | None, user: str) -> pa.Table:
        """``_run_once``, retried while a just-started coordinator answers
        NO_NODES_AVAILABLE (the query was not scheduled, so nothing ran), for at most
        NO_NODES_WAIT_SECONDS."""
        deadline = time.monotonic() + NO_NODES_WAIT_SECONDS
        while True:
            try:
                return self._run_once(query, namespace, user)
            except QueryError as exc:
                if "NO_NODES_AVAILABLE" not in exc.reason or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def _run_once(self, query: str, namespace: str | None, user: str) -> pa.Table:
        connection = self.connect(schema=namespace or DEFAULT_NAMESPACE, user=user,
                                  encoding=ENCODING, legacy_primitive_types=True)  # fmt: skip
        try:
            return self._fetch_arrow(connection.cursor("segment"), query)
        except trino.exceptions.TrinoUserError as exc:
            if exc.error_name == "PERMISSION_DENIED":
                raise self._denied(user, exc.message) from exc
            raise QueryError(
                ENGINE, query, f"{exc.error_name}: {exc.message}", hint=self._hint(exc)
            ) from exc
        except (trino.exceptions.TrinoQueryError, trino.exceptions.TrinoExternalError) as exc:
            if (missing := missing_file_error(ENGINE, query, exc.message)) is not None:
                raise missing from exc
            raise QueryError(ENGINE, query, f"{exc.error_name}: {exc.message}",
                             hint="`lakehouse status` and `lakehouse logs trino` show the nodes.") from exc  # fmt: skip
        except (ValueError, zstandard.ZstdError, lz4.block.LZ4BlockError) as exc:
            raise QueryError(ENGINE, query, f"cannot decode Trino's result: {exc}",
                             hint="Run the query again; `lakehouse logs trino` may say more.") from exc  # fmt: skip
        except (trino.exceptions.HttpError, trino.exceptions.OperationalError, OSError) as exc:
            raise QueryError(ENGINE, query, f"cannot reach Trino at {self.settings.trino_uri}: {exc}",
                             hint="Start it with `lakehouse up --services trino`.") from exc  # fmt: skip
        finally:
            connection.close()

    def _fetch_arrow(self, cursor: Cursor, query: str) -> pa.Table:
        cursor.execute(query)
        batches: list[pa.RecordBatch] = []
        size = 0
        try:
            for batch in record_batches(cursor, lambda: _declared_columns(cursor)):
                batches.append(batch)
                size += batch.nbytes
                check_result_size(ENGINE, query, size, self.settings.result_max_bytes)
        finally:
            cursor.close()  # cancels the query if it is still running
        return pa.Table.from_batches(batches, arrow_schema(_declared_columns(cursor)))

    def _denied(self, user: str, message: str) -> AccessDeniedError:
        """Trino's refusal; a SELECT of a table the principal reads in part names the
        columns it may not see (Trino names only the table)."""
        error = denied(user, message, self.settings.catalog_name)
        if error.permission != "SELECT" or error.resource.startswith("column(s) "):
            return error
        from lakehouse.errors import LakehouseError
        from lakehouse.governance.trino_rules import hidden_columns

        try:
            hidden = hidden_columns(self.settings, user, error.resource)
        except AccessDeniedError as stale:  # the policy names a column that changed
            return stale
        except LakehouseError:
            return error
        if not hidden:
            return error
        return AccessDeniedError(
            user, "SELECT", f"column(s) {', '.join(hidden)} of {error.resource}",
            hint=f"Select only the columns {user} may see (not * nor {', '.join(hidden)}).",
        )  # fmt: skip

    @staticmethod
    def _hint(exc: trino.exceptions.TrinoUserError) -> str | None:
        if exc.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
            return "Run `lakehouse tables` to see the tables; names are namespace.table."
        if exc.error_name == "SYNTAX_ERROR":
            return "Check the SQL syntax (Trino dialect)."
        return None

    def wait_for_node(self, node_id: str, timeout: float) -> None:
        """Block until the coordinator lists ``node_id`` as active."""
        deadline = time.monotonic() + timeout
        query = f"SELECT count(*) AS n FROM system.runtime.nodes WHERE node_id = '{node_id}' AND state = 'active'"
        while time.monotonic() < deadline:
            try:
                # As the admin: system information is the admin's only, with governance on.
                if self._run(query, None, self.admin).column("n")[0].as_py() == 1:
                    return
            except QueryError:
                pass
            time.sleep(0.5)
        raise QueryError(ENGINE, query, f"worker {node_id} did not register within {timeout:.0f} s",
                         hint=f"See `lakehouse logs {node_id}`.")  # fmt: skip


def lake_tables_read(query: str, namespace: str | None) -> list[str] | None:
    """'ns.table' names ``query`` (Trino's dialect) reads; None when it cannot be parsed
    (the caller then lists the catalog)."""
    try:
        tree = sqlglot.parse_one(query, read="trino")
    except sqlglot.errors.ParseError:
        return None
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names = []
    for table in tree.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        names.append(f"{table.db or namespace or DEFAULT_NAMESPACE}.{table.name}")
    return names


def denied(user: str, message: str, catalog: str) -> AccessDeniedError:
    """Trino's access-denied message as lakehouse's error (principal, permission, resource)."""
    listing = f"`lakehouse grants --principal {user}` lists what {user} may do."
    found = _DENIED.search(message)
    if found is None:
        text = message.removeprefix("Access Denied: ")
        return AccessDeniedError(user, "required", text, hint=listing)
    resource = found["resource"].removeprefix(f"{catalog}.")
    if found["verb"] == "access catalog":
        return AccessDeniedError(user, "any", f"catalog {resource}", hint=listing)
    if found["columns"]:
        return AccessDeniedError(
            user, "SELECT", f"column(s) {found['columns']} of {resource}",
            hint=f"Select only the columns {user} may see; {listing}",
        )  # fmt: skip
    return AccessDeniedError(user, _VERBS[found["verb"]], resource)


def _declared_columns(cursor: Cursor) -> list[dict[str, Any]]:
    """The result's columns as Trino declares them (name, type signature).

    The DB-API description flattens types to text; the client keeps the
    structured signatures on the running query.
    """
    query = cursor._query  # private: the only place the client keeps them
    return list(query.columns or []) if query is not None else []
