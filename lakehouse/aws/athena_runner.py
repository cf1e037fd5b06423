"""Athena query executions, run asynchronously on Trino as the caller's principal.

A bounded thread pool takes executions in order: QUEUED until a thread is free,
RUNNING while Trino runs it, then SUCCEEDED (rows written to the output location as
``<id>.csv`` plus ``<id>.csv.metadata``), FAILED (Trino's own ``ERROR_NAME:
message`` as the reason) or CANCELLED (StopQueryExecution cancels the Trino query
itself). Every state change goes through :class:`AthenaStore`, conditionally, so a
cancel and a finishing query never overwrite each other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trino

from lakehouse.aws import athena_results as results
from lakehouse.aws.athena_output import OutputError
from lakehouse.aws.athena_sql import (
    VACUUM_DEFAULT_AGE_SECONDS,
    AthenaSqlError,
    Statement,
    route_tables,
    translate,
    with_parameters,
)
from lakehouse.aws.athena_store import AthenaStore, Execution, results_dir
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse.aws.athena")
# Queries Trino runs at once for Athena; more wait QUEUED, as in an Athena workgroup.
QUERY_THREADS = 4
FETCH_ROWS = 5000
CANCELLED_REASON = "Query was cancelled by user"
# Athena's AthenaError.ErrorCategory: 1 system, 2 user, 3 other.
SYSTEM, USER = 1, 2


@dataclass
class Outcome:
    """What a finished statement produced."""

    columns: list[dict[str, Any]]
    row_count: int
    update_count: int | None
    scanned: int
    engine_ms: int


class Runner:
    """The pool of one ``aws`` service: submit, stop, and nothing else."""

    def __init__(self, settings: Settings, store: AthenaStore) -> None:
        self.settings = settings
        self.store = store
        self._pool = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="athena-query")
        self._cursors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def submit(self, execution_id: str) -> None:
        self._pool.submit(self._run, execution_id)

    def stop(self, execution_id: str) -> None:
        """Cancel a QUEUED or RUNNING execution (and its Trino query); others stay as they are."""
        self.store.update(execution_id, ("QUEUED", "RUNNING"), state="CANCELLED",
                          reason=CANCELLED_REASON, completed=time.time())  # fmt: skip
        with self._lock:
            cursor = self._cursors.get(execution_id)
        if cursor is not None:
            try:
                cursor.cancel()
            except Exception:  # the query may have just ended: nothing left to cancel
                log.debug("cancelling %s", execution_id, exc_info=True)
        # The client's one cancel can miss (its execute() blocks until the first rows, and a
        # stop before Trino answered finds no query): Trino's own kill by the recorded id
        # does not; a query id recorded after this stop is killed when it is recorded.
        execution = self.store.execution(execution_id)
        if execution is not None and execution.trino_id:
            self._kill(execution.trino_id)

    def _kill(self, trino_id: str) -> None:
        from lakehouse.aws.athena_workgroups import kill_trino_queries

        threading.Thread(target=kill_trino_queries, args=(self.settings, [trino_id], "cancelled by StopQueryExecution"),
                         name="athena-kill", daemon=True).start()  # fmt: skip

    def _run(self, execution_id: str) -> None:
        started = time.time()
        if not self.store.update(execution_id, ("QUEUED",), state="RUNNING", started=started):
            return  # cancelled while queued
        execution = self.store.execution(execution_id)
        assert execution is not None
        try:
            outcome = self._execute(execution)
        except AthenaSqlError as exc:
            self._fail(execution_id, str(exc), USER)
        except trino.exceptions.TrinoUserError as exc:
            self._fail(execution_id, self._reason(exc), USER)
        except (trino.exceptions.TrinoQueryError, trino.exceptions.TrinoExternalError) as exc:
            self._fail(execution_id, self._reason(exc), SYSTEM)
        except OutputError as exc:
            self._fail(execution_id, str(exc), USER)
        except trino.exceptions.TrinoConnectionError as exc:  # Trino down or gone mid-query
            self._fail(execution_id, f"Trino at {self.settings.trino_uri} did not answer ({exc}). "
                       "Hint: start it with `lakehouse up --services trino` (`lakehouse status` "
                       "shows it), then run the query again.", SYSTEM)  # fmt: skip
        except Exception as exc:  # a bug or an outage: said in the reason, logged in full
            log.exception("Athena query %s failed", execution_id)
            self._fail(execution_id, f"{type(exc).__name__}: {exc}", SYSTEM)
        else:
            self.store.update(
                execution_id, ("RUNNING",), state="SUCCEEDED", completed=time.time(),
                columns=json.dumps(outcome.columns), row_count=outcome.row_count,
                update_count=outcome.update_count, scanned=outcome.scanned,
                engine_ms=outcome.engine_ms,
            )  # fmt: skip
        finally:
            with self._lock:
                self._cursors.pop(execution_id, None)

    def _reason(self, exc: trino.exceptions.TrinoQueryError) -> str:
        """Trino's ``ERROR_NAME: message``, naming the lake's catalog as Athena users know it."""
        try:  # the client also raises these with a bare string (a cancelled query)
            message, name = exc.message or str(exc), exc.error_name
        except (AttributeError, TypeError):
            message, name = str(exc), None
        message = message.replace(f"'{self.settings.catalog_name}.", "'awsdatacatalog.")
        return f"{name}: {message}" if name else message

    def _fail(self, execution_id: str, reason: str, category: int) -> None:
        error = {"ErrorCategory": category, "ErrorMessage": reason, "Retryable": category == SYSTEM}
        self.store.update(execution_id, ("RUNNING",), state="FAILED", reason=reason,
                          error=json.dumps(error), completed=time.time())  # fmt: skip

    def _execute(self, execution: Execution) -> Outcome:
        statement = translate(execution.query, self.settings.catalog_name)
        catalog = (execution.catalog or "AwsDataCatalog").lower()
        if catalog != "awsdatacatalog":
            raise AthenaSqlError(f"CATALOG_NOT_FOUND: Catalog '{execution.catalog}' does not exist")
        self.store.update(execution.id, ("RUNNING",), statement_type=statement.kind,
                          substatement=statement.substatement, header=int(statement.header))  # fmt: skip
        from lakehouse.aws.athena_output import check_bucket

        check_bucket(self.settings, execution)
        if statement.vacuum_table is not None:
            return self._vacuum(execution, statement.vacuum_table)
        database = (execution.database or "default").lower()
        statement.sql = route_tables(statement.sql, database, self.settings.catalog_name,
                                     self._catalog_of)  # fmt: skip
        parameters = json.loads(execution.request).get("ExecutionParameters")
        statement.sql = with_parameters(statement.sql, parameters)
        outcome = self._statement(execution, statement)
        if statement.created_table is not None and statement.table_properties:
            self._set_properties(database, statement.created_table, statement.table_properties)
        if statement.ctas_table is not None:
            files = self._rows(
                execution, f"SELECT file_path FROM {_metadata_table(statement.ctas_table, 'files')}"
            )
            from lakehouse.aws.athena_output import upload_manifest

            manifest = upload_manifest(self.settings, execution, [row[0] for row in files])
            self.store.update(execution.id, ("RUNNING",), manifest=manifest)
        return outcome

    def _set_properties(self, database: str, table: str, properties: dict[str, str]) -> None:
        """Athena's TBLPROPERTIES (vacuum_*, optimize_*...) on the table Trino just created,
        through the catalog (Trino takes no extra properties unless configured to)."""
        from lakehouse.lake.catalog import open_catalog

        parts = [part.strip().strip('"') for part in table.split(".")]
        namespace, name = (parts[-2] if len(parts) > 1 else database), parts[-1]
        loaded = open_catalog(self.settings).load_table((namespace.lower(), name.lower()))
        with loaded.transaction() as change:
            change.set_properties(properties)

    def _rows(self, execution: Execution, sql: str) -> list[list[Any]]:
        """All rows of a small query of lakehouse's own, as the execution's principal."""
        connection = self._connection(execution)
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            connection.close()

    def _catalog_of(self, database: str, table: str) -> str | None:
        """The Trino catalog of Glue's ``database.table`` (the lake's unless it is one of
        Glue's Hive-style tables); None when unknown or Glue's Hive support is absent."""
        try:
            from lakehouse.aws.glue_hive import trino_catalog_of
        except ImportError:
            return None
        try:
            return trino_catalog_of(self.settings, database, table)
        except LakehouseError:  # no hive catalog on this Trino: the lake's then
            return None

    def _connection(self, execution: Execution, session: dict[str, str] | None = None) -> Any:
        from lakehouse.engines.trino import TrinoEngine, default_user
        from lakehouse.engines.trino_results import ENCODING

        as_principal = self.settings.model_copy(update={"principal": execution.principal})
        return TrinoEngine(self.settings).connect(
            schema=(execution.database or "default").lower(), user=default_user(as_principal),
            encoding=ENCODING, legacy_primitive_types=True, session_properties=session or {},
        )  # fmt: skip

    def _govern(self, execution: Execution, sql: str) -> None:
        """Trino's rules up to date for the tables the statement reads (governance on)."""
        if self.settings.governance_enabled:
            from lakehouse.engines.trino import lake_tables_read
            from lakehouse.governance.trino_rules import ensure_current

            ensure_current(self.settings, lake_tables_read(sql, execution.database))

    def _statement(self, execution: Execution, statement: Statement) -> Outcome:
        self._govern(execution, statement.sql)
        connection = self._connection(execution, statement.session)
        try:
            recorded: list[str] = []

            def record_query_id(stats: dict[str, Any]) -> None:
                """Trino's query id as soon as Trino answers (a restart kills it by this id)."""
                if not recorded and cursor.query_id:
                    recorded.append(cursor.query_id)
                    self.store.update(execution.id, ("RUNNING",), trino_id=cursor.query_id)
                    if self._cancelled(execution.id):  # stopped before Trino named it
                        self._kill(cursor.query_id)

            cursor = connection.cursor(stats_callback=record_query_id)
            with self._lock:
                self._cursors[execution.id] = cursor
            self._raise_if_cancelled(execution.id)
            cursor.execute(statement.sql)
            # A stop between the check and Trino's first answer found no query to cancel.
            if self._cancelled(execution.id):
                cursor.cancel()
                self._raise_if_cancelled(execution.id)
            return self._collect(execution, statement, cursor)
        finally:
            connection.close()

    def _cancelled(self, execution_id: str) -> bool:
        current = self.store.execution(execution_id)
        return current is None or current.state != "RUNNING"

    def _raise_if_cancelled(self, execution_id: str) -> None:
        if self._cancelled(execution_id):
            raise trino.exceptions.TrinoUserError(
                {"errorName": "USER_CANCELED", "message": CANCELLED_REASON}, None
            )

    def _collect(self, execution: Execution, statement: Statement, cursor: Any) -> Outcome:
        """Stream the rows to the local page file and to the output location."""
        first = cursor.fetchmany(FETCH_ROWS)
        if cursor.update_type is not None:  # DDL or a write: no result rows, maybe a count
            cursor.fetchall()
            count = cursor._query.update_count  # the client keeps Trino's count here
            self._write_output(execution, [], iter(()), None)
            return Outcome([], 0, count, _scanned(cursor.stats), _elapsed(cursor.stats))
        columns = list(cursor._query.columns or [])  # the typed columns, kept here too
        signatures = [c.get("typeSignature") or {"rawType": c["type"]} for c in columns]
        header = [c["name"] for c in columns] if statement.header else None

        def rendered() -> Any:
            batch = first
            while batch:
                for row in batch:
                    yield [results.render(v, s) for v, s in zip(row, signatures, strict=True)]
                batch = cursor.fetchmany(FETCH_ROWS)

        infos = [results.column_info(c) for c in columns]
        count = self._write_output(execution, infos, rendered(), header)
        return Outcome(infos, count, None, _scanned(cursor.stats), _elapsed(cursor.stats))

    def _vacuum(self, execution: Execution, table: str) -> Outcome:
        """Athena's VACUUM: expire snapshots older than the table's
        ``vacuum_max_snapshot_age_seconds`` (default 5 days), then remove orphan files as old."""
        age = VACUUM_DEFAULT_AGE_SECONDS
        self._govern(execution, f"SELECT * FROM {table}")
        found = self._rows(execution, f"SELECT value FROM {_metadata_table(table, 'properties')} "
                                      "WHERE key = 'vacuum_max_snapshot_age_seconds'")  # fmt: skip
        if found:
            age = int(found[0][0])
        catalog = self.settings.catalog_name
        session = {f"{catalog}.expire_snapshots_min_retention": f"{age}s",
                   f"{catalog}.remove_orphan_files_min_retention": f"{age}s"}  # fmt: skip
        scanned = elapsed = 0
        for procedure in ("expire_snapshots", "remove_orphan_files"):
            sql = f"ALTER TABLE {table} EXECUTE {procedure}(retention_threshold => '{age}s')"
            step = Statement(sql, "DML", "VACUUM", False, session=session)
            outcome = self._statement(execution, step)
            scanned, elapsed = scanned + outcome.scanned, elapsed + outcome.engine_ms
        return Outcome([], 0, None, scanned, elapsed)

    def _write_output(self, execution: Execution, columns: list[dict[str, Any]],
                      rows: Any, header: list[str] | None) -> int:  # fmt: skip
        """Rows to the local page file (header first when given) and to the output
        location (:mod:`athena_output`); returns the data rows."""
        from lakehouse.aws import athena_output

        page = page_file(self.settings, execution.id)
        page.parent.mkdir(parents=True, exist_ok=True)
        count = results.write_rows(page, _with_header(header, rows))
        current = self.store.execution(execution.id)
        ddl = current is not None and current.statement_type == "DDL"
        athena_output.upload(self.settings, execution, page, columns, ddl)
        return count - (1 if header is not None else 0)


def _metadata_table(table: str, kind: str) -> str:
    """Trino's ``"t$kind"`` metadata table of ``table`` (``db.t``, ``"db"."t"``, ``lake.db.t``)."""
    head, _, last = table.rpartition(".")
    return f'{head + "." if head else ""}"{last.strip().strip(chr(34))}${kind}"'


def _with_header(header: list[str] | None, rows: Any) -> Any:
    if header is not None:
        yield header
    yield from rows


def _scanned(stats: dict[str, Any] | None) -> int:
    return int((stats or {}).get("physicalInputBytes") or 0)


def _elapsed(stats: dict[str, Any] | None) -> int:
    return int((stats or {}).get("elapsedTimeMillis") or 0)


def page_file(settings: Settings, execution_id: str) -> Path:
    return results_dir(settings) / f"{execution_id}.jsonl"
