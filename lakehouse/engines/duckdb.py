"""DuckDB, the Athena-style engine: in-process, attached to the REST catalog.

Extensions come from the pinned ``duckdb-extension-*`` wheels, because DuckDB
cannot download them offline (loading: :mod:`lakehouse.engines.duckdb_extensions`).
The catalog is attached as ``lake`` and made the default, so plain
``namespace.table`` names work, the same text Trino and Spark accept.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lakehouse.config import DEFAULT_NAMESPACE, Settings, catalog_token_refused
from lakehouse.engines.base import check_one_statement
from lakehouse.engines.duckdb_extensions import (
    EXTENSIONS,
    connect_with_extensions,
    extension_path,
    quote,
)
from lakehouse.engines.missing_files import missing_file_error
from lakehouse.engines.results import conform
from lakehouse.errors import QueryError

ENGINE = "duckdb"
__all__ = ["EXTENSIONS", "DuckDBEngine", "extension_path"]


class DuckDBEngine:
    """One DuckDB connection attached to the lake."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        s = self.settings
        con = connect_with_extensions(s.cache_dir)
        # Trino and Spark answer in UTC; DuckDB would follow the caller's TZ.
        con.execute("SET TimeZone = 'UTC'")
        host = s.s3_endpoint.removeprefix("http://")
        con.execute(
            f"CREATE SECRET lake_s3 (TYPE s3, KEY_ID {quote(s.access_key)}, SECRET {quote(s.secret_key)}, "
            f"ENDPOINT {quote(host)}, URL_STYLE 'path', USE_SSL false, REGION {quote(s.region)})"
        )
        # The catalog requires the stack's bearer token (sent as Authorization: Bearer).
        con.execute(f"CREATE SECRET lake_catalog (TYPE iceberg, TOKEN {quote(s.catalog_token)})")
        try:
            con.execute(
                f"ATTACH {quote(s.warehouse_bucket)} AS {s.catalog_name} "
                f"(TYPE iceberg, ENDPOINT {quote(s.catalog_uri)}, SECRET lake_catalog)"
            )
            con.execute(f"USE {s.catalog_name}.{DEFAULT_NAMESPACE}")
        except duckdb.Error as exc:
            if "Unauthorized_401" in str(exc):
                raise catalog_token_refused(s) from exc
            raise QueryError(
                ENGINE, "ATTACH", f"cannot attach the REST catalog at {s.catalog_uri}: {exc}",
                hint="Start the lake house with `lakehouse up` (check `lakehouse status`).",
            ) from exc  # fmt: skip
        return con

    name = ENGINE

    def sql(self, query: str, namespace: str | None = None) -> pa.Table:
        """Run ``query`` (DuckDB dialect); the result follows the result contract.

        ``namespace`` makes unqualified table names resolve there for this query.
        """
        if namespace is None:
            return self._run(query)
        self.use(namespace)
        try:
            return self._run(query)
        finally:
            self.use(DEFAULT_NAMESPACE)

    def use(self, namespace: str) -> None:
        """Make ``namespace`` of the lake the default for unqualified names."""
        self.connection.execute(f'USE {self.settings.catalog_name}."{namespace}"')

    def _run(self, query: str) -> pa.Table:
        """Run exactly one statement: DuckDB would otherwise run a whole script."""
        try:
            statements = self.connection.extract_statements(query)
            check_one_statement(ENGINE, query, len(statements))
            if statements[0].type == duckdb.StatementType.SELECT:
                # Bound once. A relation binds when it is made and again when it
                # runs, and each bind loads every Iceberg table from the catalog.
                return conform(self.connection.execute(query).to_arrow_table())
            relation = self.connection.sql(query)
            if relation is None:
                return pa.table({})
            return conform(relation.to_arrow_table())
        except duckdb.Error as exc:
            if (missing := missing_file_error(ENGINE, query, str(exc))) is not None:
                raise missing from exc
            raise QueryError(ENGINE, query, str(exc).strip(), hint=self._hint(exc)) from exc

    @staticmethod
    def _hint(exc: duckdb.Error) -> str | None:
        if isinstance(exc, duckdb.CatalogException):
            return "Run `lakehouse tables` to see the tables; names are namespace.table."
        if isinstance(exc, duckdb.ParserException):
            return "Check the SQL syntax (DuckDB dialect)."
        return None

    def close(self) -> None:
        self.connection.close()
