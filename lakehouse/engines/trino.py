"""Trino as an engine: DB-API connections with ``lake`` as the default catalog.

Trino has no server-side default catalog, so every session lakehouse opens sets
catalog ``lake`` and schema ``default``; plain ``namespace.table`` names then
resolve in the lake, exactly as in DuckDB and Spark.
"""

from __future__ import annotations

import time
from typing import Any

import lz4.block
import pyarrow as pa
import trino
import zstandard
from trino.dbapi import Connection, Cursor

from lakehouse.config import Settings
from lakehouse.engines.limits import check_result_size
from lakehouse.engines.trino_arrow import arrow_schema
from lakehouse.engines.trino_results import ENCODING, record_batches
from lakehouse.errors import QueryError
from lakehouse.services.catalog import DEFAULT_NAMESPACE

ENGINE = "trino"
USER = "lakehouse"


class TrinoEngine:
    """Runs SQL on the lake house's Trino coordinator."""

    name = ENGINE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def close(self) -> None:
        """Nothing to release: each query opens and closes its own connection."""

    def connect(self, schema: str = DEFAULT_NAMESPACE, **options: Any) -> Connection:
        """A DB-API connection from the ``trino`` client, catalog ``lake``.

        The session's time zone is UTC, as on every lakehouse engine, unless
        ``timezone=`` says otherwise: the client would otherwise send the
        caller's local zone, and dates cut from zoned timestamps would differ.
        """
        s = self.settings
        options.setdefault("timezone", "UTC")
        return trino.dbapi.connect(
            host=s.client_host, port=s.trino_port, user=USER,
            catalog=s.catalog_name, schema=schema, **options,
        )  # fmt: skip

    def sql(self, query: str, namespace: str | None = None) -> pa.Table:
        """Run ``query`` (Trino dialect); Arrow typed from Trino's declared columns.

        The result comes through Trino's spooling protocol (``ENCODING``
        segments, converted one at a time), or the direct protocol when the
        server has no spooling; a large result costs its Arrow size plus a few
        segments. Raises ``QueryError``, also for a result over
        ``result_max_bytes``.
        """
        connection = self.connect(schema=namespace or DEFAULT_NAMESPACE, encoding=ENCODING,
                                  legacy_primitive_types=True)  # fmt: skip
        try:
            return self._fetch_arrow(connection.cursor("segment"), query)
        except trino.exceptions.TrinoUserError as exc:
            raise QueryError(
                ENGINE, query, f"{exc.error_name}: {exc.message}", hint=self._hint(exc)
            ) from exc
        except (trino.exceptions.TrinoQueryError, trino.exceptions.TrinoExternalError) as exc:
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
