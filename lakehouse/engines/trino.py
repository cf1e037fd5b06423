"""Trino as an engine: DB-API connections with ``lake`` as the default catalog.

Trino has no server-side default catalog, so every session lakehouse opens sets
catalog ``lake`` and schema ``default``; plain ``namespace.table`` names then
resolve in the lake, exactly as in DuckDB and Spark.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import trino
from trino.dbapi import Connection

from lakehouse.config import Settings
from lakehouse.errors import QueryError
from lakehouse.services.catalog import DEFAULT_NAMESPACE

ENGINE = "trino"
USER = "lakehouse"


class TrinoEngine:
    """Runs SQL on the lake house's Trino coordinator."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def connect(self, schema: str = DEFAULT_NAMESPACE, **options: Any) -> Connection:
        """A DB-API connection from the ``trino`` client, catalog ``lake``."""
        s = self.settings
        return trino.dbapi.connect(
            host=s.client_host, port=s.trino_port, user=USER,
            catalog=s.catalog_name, schema=schema, **options,
        )  # fmt: skip

    def sql(self, query: str, namespace: str | None = None) -> pa.Table:
        """Run ``query``; the result as Arrow (column names from Trino)."""
        connection = self.connect(schema=namespace or DEFAULT_NAMESPACE)
        try:
            cursor = connection.cursor()
            cursor.execute(query)
            rows = cursor.fetchall()
            names = [column[0] for column in cursor.description or []]
        except trino.exceptions.TrinoUserError as exc:
            raise QueryError(
                ENGINE, query, f"{exc.error_name}: {exc.message}", hint=self._hint(exc)
            ) from exc
        except (trino.exceptions.TrinoQueryError, trino.exceptions.TrinoExternalError) as exc:
            raise QueryError(ENGINE, query, f"{exc.error_name}: {exc.message}",
                             hint="`lakehouse status` and `lakehouse logs trino` show the nodes.") from exc  # fmt: skip
        except (trino.exceptions.HttpError, OSError) as exc:
            raise QueryError(ENGINE, query, f"cannot reach Trino at {self.settings.trino_uri}: {exc}",
                             hint="Start it with `lakehouse up --services trino`.") from exc  # fmt: skip
        finally:
            connection.close()
        return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows]) if rows else \
            pa.table({name: pa.array([], pa.null()) for name in names})  # fmt: skip

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
