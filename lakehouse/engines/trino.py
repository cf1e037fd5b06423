"""Trino as an engine: DB-API connections with ``lake`` as the default catalog.

Trino has no server-side default catalog, so every session lakehouse opens sets
catalog ``lake`` and schema ``default``; plain ``namespace.table`` names then
resolve in the lake, exactly as in DuckDB and Spark.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import trino
from trino.dbapi import Connection, Cursor

from lakehouse.config import Settings
from lakehouse.engines.limits import check_result_size
from lakehouse.engines.trino_arrow import arrow_schema, record_batch
from lakehouse.errors import QueryError
from lakehouse.services.catalog import DEFAULT_NAMESPACE

ENGINE = "trino"
USER = "lakehouse"
BATCH_ROWS = 50_000
PREFETCH_PAGES = 8


class TrinoEngine:
    """Runs SQL on the lake house's Trino coordinator."""

    name = ENGINE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def close(self) -> None:
        """Nothing to release: each query opens and closes its own connection."""

    def connect(self, schema: str = DEFAULT_NAMESPACE, **options: Any) -> Connection:
        """A DB-API connection from the ``trino`` client, catalog ``lake``."""
        s = self.settings
        return trino.dbapi.connect(
            host=s.client_host, port=s.trino_port, user=USER,
            catalog=s.catalog_name, schema=schema, **options,
        )  # fmt: skip

    def sql(self, query: str, namespace: str | None = None) -> pa.Table:
        """Run ``query`` (Trino dialect); Arrow typed from Trino's declared columns.

        Rows are fetched and converted in batches of ``BATCH_ROWS``, so a large
        result costs its Arrow size plus one batch of protocol values.
        Raises ``QueryError``, also for a result over ``result_max_bytes``.
        """
        connection = self.connect(schema=namespace or DEFAULT_NAMESPACE,
                                  legacy_primitive_types=True, timezone="UTC")  # fmt: skip
        try:
            return self._fetch_arrow(connection.cursor(), query)
        except trino.exceptions.TrinoUserError as exc:
            raise QueryError(
                ENGINE, query, f"{exc.error_name}: {exc.message}", hint=self._hint(exc)
            ) from exc
        except (trino.exceptions.TrinoQueryError, trino.exceptions.TrinoExternalError) as exc:
            raise QueryError(ENGINE, query, f"{exc.error_name}: {exc.message}",
                             hint="`lakehouse status` and `lakehouse logs trino` show the nodes.") from exc  # fmt: skip
        except (trino.exceptions.HttpError, trino.exceptions.OperationalError, OSError) as exc:
            raise QueryError(ENGINE, query, f"cannot reach Trino at {self.settings.trino_uri}: {exc}",
                             hint="Start it with `lakehouse up --services trino`.") from exc  # fmt: skip
        finally:
            connection.close()

    def _fetch_arrow(self, cursor: Cursor, query: str) -> pa.Table:
        cursor.execute(query)
        columns = _declared_columns(cursor)
        batches: list[pa.RecordBatch] = []
        size = 0
        for rows in _row_batches(cursor, BATCH_ROWS):
            columns = columns or _declared_columns(cursor)
            batches.append(record_batch(rows, columns))
            size += batches[-1].nbytes
            check_result_size(ENGINE, query, size, self.settings.result_max_bytes)
        return pa.Table.from_batches(batches, arrow_schema(columns or _declared_columns(cursor)))

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
                if self.sql(query).column("n")[0].as_py() == 1:
                    return
            except QueryError:
                pass
            time.sleep(0.5)
        raise QueryError(ENGINE, query, f"worker {node_id} did not register within {timeout:.0f} s",
                         hint=f"See `lakehouse logs {node_id}`.")  # fmt: skip


def _declared_columns(cursor: Cursor) -> list[dict[str, Any]]:
    """The result's columns as Trino declares them (name, type signature).

    The DB-API description flattens types to text; the client keeps the
    structured signatures on the running query.
    """
    query = cursor._query  # private: the only place the client keeps them
    return list(query.columns or []) if query is not None else []


def _row_batches(cursor: Cursor, batch_rows: int) -> Iterator[list[list[Any]]]:
    """The result's rows in batches of about ``batch_rows``, one protocol page at a time.

    A thread fetches the next pages (HTTP and JSON decoding) while the caller
    converts the previous batch; at most ``PREFETCH_PAGES`` wait in between.
    """
    query = cursor._query  # private: pages, not one Python call per row
    assert query is not None
    pages: queue.Queue[list[list[Any]] | BaseException | None] = queue.Queue(PREFETCH_PAGES)

    def fetch() -> None:
        try:
            pages.put(list(query.result.rows or []))
            while not query.finished and not query.cancelled:
                pages.put(list(query.fetch()))
            pages.put(None)
        except BaseException as exc:  # handed to the caller, raised there
            pages.put(exc)

    threading.Thread(target=fetch, name="trino-pages", daemon=True).start()
    batch: list[list[Any]] = []
    while (page := pages.get()) is not None:
        if isinstance(page, BaseException):
            raise page
        batch.extend(page)
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch
