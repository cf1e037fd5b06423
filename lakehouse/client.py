"""``lakehouse.connect()``: the library's entry point to a running lake house."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    # Type-only here. pyiceberg, minio and the ingest path are imported where
    # used, so a DuckDB query from the CLI does not pay ~0.6 s for them.
    from collections.abc import Sequence
    from pathlib import Path

    import duckdb
    import psycopg
    from duckdb import DuckDBPyConnection
    from minio import Minio
    from opensearchpy import OpenSearch
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.table import Table
    from pyspark.sql import SparkSession
    from trino.dbapi import Connection as TrinoConnection

    from lakehouse.crawl import CrawlReport
    from lakehouse.engines.spark import SparkEngine
    from lakehouse.governance.rewrite import Governance
    from lakehouse.lake import catalog as cat
    from lakehouse.lake.ingest import IngestResult, TypeSpec
    from lakehouse.lake.maintenance import MaintenanceReport
    from lakehouse.ml import MachineLearning
    from lakehouse.sync.integrations import Integration
    from lakehouse.sync.postgres_pipeline import PassResult
    from lakehouse.sync.verify import TableReport

from lakehouse.config import DEFAULT_NAMESPACE, Settings, load_settings
from lakehouse.engines.base import ENGINE_NAMES, Engine, create_engine
from lakehouse.engines.duckdb import DuckDBEngine
from lakehouse.env import environment
from lakehouse.errors import LakehouseError, QueryError, SnapshotNotFoundError, TableNotFoundError
from lakehouse.outages import POSTGRES_CONNECT_SECONDS, guarded, reported_outages

ENGINES = ENGINE_NAMES


def parse_as_of(value: str | int | datetime) -> int | datetime:
    """A snapshot id (all digits) or a timestamp (ISO 8601; naive means UTC)."""
    if isinstance(value, datetime | int):
        return (
            value if not isinstance(value, datetime) or value.tzinfo else value.replace(tzinfo=UTC)
        )
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise LakehouseError(
            f"--as-of '{value}' is neither a snapshot id nor a timestamp.",
            hint="Use a snapshot id from `lakehouse history`, or e.g. 2026-11-27T10:00:00.",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Lakehouse:
    """A connection to one lake house: catalog, S3 and SQL engines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._duckdb: DuckDBEngine | None = None
        self._spark: SparkEngine | None = None
        self._engines: dict[str, Engine] = {}

    @property
    def catalog(self) -> RestCatalog:
        """pyiceberg's RestCatalog for the lake.

        Raises AccessDeniedError for a governed principal (it reads and writes every
        table unchecked)."""
        self._refuse_raw_handle("catalog")
        return self._lake_catalog

    @cached_property
    @guarded("opening the catalog", ("catalog",))
    def _lake_catalog(self) -> RestCatalog:
        from lakehouse.lake import catalog as cat

        return cat.open_catalog(self.settings)

    @property
    def s3(self) -> Minio:
        """A MinIO SDK client for the lake's S3 endpoint, with the stack's own keys.

        Raises AccessDeniedError for a governed principal: its S3 credentials come
        from ``lakehouse env --as`` (vended for its grants)."""
        self._refuse_raw_handle("S3", hint=(
            "Use the credentials `lakehouse env --as PRINCIPAL` exports, which carry its grants; "
            "the stack's own S3 keys are for the governance admin."))  # fmt: skip
        return self._stack_s3

    @cached_property
    def _stack_s3(self) -> Minio:
        from lakehouse.services.s3 import s3_client

        s = self.settings
        return s3_client(s.s3_endpoint, s.access_key, s.secret_key, s.region)

    @property
    def principal(self) -> str:
        """Who this connection's calls run as: the ``principal`` setting
        (LAKEHOUSE_PRINCIPAL, ``lakehouse env --as``), else the governance admin."""
        return self.settings.acting_principal()

    def governed(self, principal: str | None = None) -> bool:
        """Whether ``principal`` (default: :attr:`principal`) is held to the policy:
        governance is on and it is neither the admin nor in the admin role."""
        if not self.settings.governance_enabled:
            return False
        from lakehouse.governance.store import load_policy

        who = principal or self.principal
        return not load_policy(self.settings).is_admin(who, self.settings.governance_admin)

    def _refuse_raw_handle(self, what: str, hint: str | None = None) -> None:
        """Raw handles (engines, catalog, tables, S3) bypass the policy: the admin's only.

        The refusal is audited."""
        if self.governed():
            from lakehouse.errors import AccessDeniedError
            from lakehouse.governance.audit import record

            permission = f"a raw {what} handle (it bypasses the policy)"
            record(self.settings, self.principal, "library", "the lake", (), (), False, None,
                   action="RAW_HANDLE", reason=permission)  # fmt: skip
            raise AccessDeniedError(
                self.principal, permission, "the lake",
                hint=hint or "Query through lake.sql(...) or `lakehouse query`, which apply "
                "the policy; raw handles are for the governance admin.",
            )  # fmt: skip

    def duckdb(self, namespace: str = DEFAULT_NAMESPACE) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the lake attached; ``namespace`` is the default schema.

        Raises AccessDeniedError for a governed principal (the handle is ungoverned).
        """
        self._refuse_raw_handle("DuckDB")
        return self._duckdb_connection(namespace)

    @guarded("opening DuckDB", ("catalog",))
    def _duckdb_connection(self, namespace: str) -> DuckDBPyConnection:
        engine = self._duckdb_engine()
        engine.use(namespace)
        return engine.connection

    @guarded("connecting to Trino", ("trino",))
    def trino(self, schema: str = DEFAULT_NAMESPACE) -> TrinoConnection:
        """A DB-API connection (the ``trino`` client) with catalog ``lake``, as
        :attr:`principal`: with governance on Trino applies the policy to that user, so
        this handle is not refused like the others."""
        from lakehouse.engines.trino import TrinoEngine

        return TrinoEngine(self.settings).connect(schema=schema)

    def spark(self) -> SparkSession:
        """A Spark Connect session to the lake house's server; ``lake`` is the default catalog.

        Raises AccessDeniedError for a governed principal (the session is ungoverned).
        """
        self._refuse_raw_handle("Spark")
        return self._spark_session()

    @guarded("connecting to Spark", ("spark",))
    def _spark_session(self) -> SparkSession:
        return self._spark_engine().session()

    @guarded("connecting to OpenSearch", ("opensearch",))
    def opensearch(self) -> OpenSearch:
        """An opensearch-py client for the lake's OpenSearch node."""
        from lakehouse.services.opensearch import OpenSearchService

        return OpenSearchService(self.settings).client()

    def postgres(
        self, database: str | None = None, autocommit: bool = False
    ) -> psycopg.Connection[tuple[Any, ...]]:
        """A psycopg connection to the lake's PostgreSQL (the ``shop`` database by default)."""
        import psycopg

        with reported_outages(self.settings, "connecting to PostgreSQL", ("postgres",)):
            return psycopg.connect(
                self.settings.postgres_dsn(database),
                autocommit=autocommit,
                connect_timeout=POSTGRES_CONNECT_SECONDS,
            )

    def sync(self, name: str) -> PassResult:
        """Bring the Zero-ETL integration ``name`` up to date once (what `sync run` does).

        Raises ServiceUnavailableError naming a service the integration needs that is
        down; AccessDeniedError for a governed principal (a sync writes with the
        stack's own keys, so it is the admin's).
        """
        self._refuse_raw_handle("sync", hint="Sync runs are the governance admin's: "
                                "unset LAKEHOUSE_PRINCIPAL (or run as the admin).")  # fmt: skip
        from lakehouse.sync.integrations import IntegrationStore
        from lakehouse.sync.runner import catch_up

        integration = IntegrationStore(self.settings).get(name)
        with reported_outages(self.settings, f"sync run {name}", _sync_services(integration)):
            return catch_up(self.settings, integration)

    def verify_sync(self, name: str) -> list[TableReport]:
        """Compare an integration's source and target row for row (key and content hash).

        AccessDeniedError for a governed principal: the report names source keys and
        values the policy may hide from it."""
        self._refuse_raw_handle("sync verify", hint="Sync checks are the governance admin's: "
                                "unset LAKEHOUSE_PRINCIPAL (or run as the admin).")  # fmt: skip
        from lakehouse.sync.integrations import IntegrationStore
        from lakehouse.sync.verify import verify

        integration = IntegrationStore(self.settings).get(name)
        with reported_outages(self.settings, f"sync verify {name}", _sync_services(integration)):
            return verify(self.settings, integration)

    def _spark_engine(self) -> SparkEngine:
        from lakehouse.engines.spark import SparkEngine

        if self._spark is None:
            self._spark = SparkEngine(self.settings)
        return self._spark

    def reset_duckdb(self) -> None:
        """Point an open DuckDB connection back at the default namespace."""
        if self._duckdb is not None:
            self._duckdb.use(DEFAULT_NAMESPACE)

    def _duckdb_engine(self) -> DuckDBEngine:
        if self._duckdb is None:
            self._duckdb = DuckDBEngine(self.settings)
        return self._duckdb

    def engine(self, name: str) -> Engine:
        """The engine ``name`` (one per connection, opened on first use).

        Raises AccessDeniedError for a governed principal, except for Trino (which
        runs as :attr:`principal` under its policy rules): the others bypass the rewrite.
        """
        if name != "trino":
            self._refuse_raw_handle(f"{name} engine")
        return self._engine(name)

    def _engine(self, name: str) -> Engine:
        if name == "duckdb":
            return self._duckdb_engine()
        if name == "spark":
            return self._spark_engine()
        if name not in self._engines:
            self._engines[name] = create_engine(name, self.settings)
        return self._engines[name]

    def sql(
        self,
        query: str,
        engine: str = "duckdb",
        as_of: str | int | datetime | None = None,
        namespace: str | None = None,
        native: bool = False,
        principal: str | None = None,
    ) -> pa.Table:
        """Run SQL on an engine and return Arrow.

        ``query`` is written in DuckDB's dialect and translated for ``engine``,
        so every engine gives the same rows, schema and headers; ``native=True``
        sends the text unchanged (and cannot be combined with ``as_of``).
        ``as_of`` reads older snapshots; ``namespace`` is where unqualified table
        names resolve (by default only ``namespace.table`` names are meant).
        ``principal`` (default :attr:`principal`) is who asks: with governance on,
        a principal other than the admin reads each table through its governed
        projection (``lakehouse.governance.rewrite``), and its writes need their
        permission. Raises ``QueryError`` (or ``ConfigError`` for an unknown
        engine), ``AccessDeniedError`` (nothing ran).
        """
        services = ("catalog", "s3", *([engine] if engine in ("trino", "spark") else []))
        with reported_outages(self.settings, f"the {engine} query", services):
            return self._sql(query, engine, as_of, namespace, native, principal)

    def _sql(
        self, query: str, engine: str, as_of: str | int | datetime | None,
        namespace: str | None, native: bool, principal: str | None = None,
    ) -> pa.Table:  # fmt: skip
        governance = self._governance(query, engine, namespace, native, principal)
        runner = self._engine(engine)
        run = partial(runner.sql, namespace=namespace)
        if engine == "trino":  # Trino applies the policy itself, to its user
            run = partial(runner.sql, namespace=namespace, principal=principal)  # type: ignore[call-arg]
        if native:
            if as_of is not None:
                raise LakehouseError(
                    "--as-of needs the query language; native text is sent unchanged.",
                    hint="Drop --native, or pin the snapshot in the engine's own syntax.",
                )
            return run(query)
        if engine == "duckdb" and as_of is None and governance is None:
            return run(query)  # the query language is DuckDB's own
        from lakehouse.engines.translate import parse, referenced_tables, translate

        tables = governance.tables if governance else referenced_tables(parse(query, engine))
        try:
            snapshots = self._snapshots(tables, as_of) if as_of is not None else None
        except LakehouseError:  # names a table: one the principal may not see is refused first
            if governance is not None:
                governance.field_ids = {}
                self._decide(governance, self._lake_schema(tables, {}, governance.field_ids))
            raise
        field_ids: dict[str, dict[str, int]] = {}  # the policy is bound to field ids
        schema = self._lake_schema(tables, snapshots or {}, field_ids)
        if governance is not None:
            governance.field_ids = field_ids
            if snapshots:  # an old snapshot's columns the table no longer has stay hidden
                now = self._lake_schema(tables, {})
                governance.current_columns = {n: tuple(c) for n, c in now.items()}
            schema = self._decide(governance, schema)
        elif engine == "trino" and self.governed(principal):
            from lakehouse.governance.rewrite import visible_schema

            schema = visible_schema(self.settings, principal or self.principal, schema, field_ids)
        try:
            sql = translate(query, engine, snapshots, schema, governance).sql
            return run(sql)
        except QueryError as exc:
            denied = governance.explain(exc) if governance is not None else None
            if denied is not None:
                raise denied from exc
            if exc.hint and "SQL syntax" in exc.hint:  # the engine's hint names its own dialect
                exc.hint = (
                    f"The text is DuckDB's dialect, translated for {engine}; pass native=True "
                    f"(CLI: --native) to write {engine}'s own dialect instead."
                )
            if governance is not None:  # the engine saw the rewritten text: show the original
                raise governance.original_error(exc) from None
            raise

    def _governance(
        self, query: str, engine: str, namespace: str | None, native: bool, principal: str | None
    ) -> Governance | None:
        """The statement's governance when ``principal`` is held to the policy, else None.

        None on Trino, which applies its own rules to its user. Raises
        AccessDeniedError for native text of a governed principal.
        """
        who = principal or self.principal
        if not self.governed(who):
            return None
        from lakehouse.errors import AccessDeniedError
        from lakehouse.governance.rewrite import ADMIN_HINT, Governance

        if engine == "trino":
            return None  # Trino's own rules (lakehouse.governance.trino_rules) govern its user
        governance = Governance(who, engine, query, namespace or DEFAULT_NAMESPACE,
                                self.settings.catalog_name, settings=self.settings)  # fmt: skip
        if native:
            raise governance.denied(AccessDeniedError(
                who, "native text (it cannot be rewritten)", "the lake", hint=ADMIN_HINT))  # fmt: skip
        governance.plan()
        return governance

    def _decide(
        self, governance: Governance, schema: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, str]]:
        """The principal's access to each table (each decision audited); its visible schema."""
        from lakehouse.governance.rewrite import decide

        return decide(governance, self.settings, schema)

    def _lake_schema(
        self, names: tuple[str, ...], snapshots: dict[str, int],
        field_ids: dict[str, dict[str, int]] | None = None,
    ) -> dict[str, dict[str, str]]:  # fmt: skip
        """'ns.table' -> {column: DuckDB type} (as of its pinned snapshot), for the translation step.

        Names that are not lake tables (``information_schema.tables``) are left out.
        ``field_ids`` (given) receives each table's {column: Iceberg field id} too.
        """
        from lakehouse.engines.semantics import table_columns
        from lakehouse.errors import TableNotFoundError

        schema = {}
        for name in names:
            try:
                table = self._table(name)
            except TableNotFoundError:
                continue
            snapshot = table.snapshot_by_id(snapshots[name]) if name in snapshots else None
            pinned = snapshot.schema_id if snapshot else None
            fields = table.schemas().get(pinned) if pinned is not None else None
            schema[name] = table_columns((fields or table.schema()).fields)
            if field_ids is not None:
                field_ids[name] = {f.name: f.field_id for f in (fields or table.schema()).fields}
        return schema

    def _snapshots(self, names: tuple[str, ...], as_of: str | int | datetime) -> dict[str, int]:
        point = parse_as_of(as_of)
        if not names:
            raise LakehouseError("--as-of needs a query that reads at least one namespace.table.")
        chosen = {}
        for name in names:
            table = self._table(name)
            if isinstance(point, int):
                if table.snapshot_by_id(point) is None:
                    raise SnapshotNotFoundError(
                        f"Snapshot {point} is not a snapshot of {name}.",
                        hint=f"See `lakehouse history {name}`; use a timestamp to travel several tables.",
                    )
                chosen[name] = point
            else:
                from lakehouse.lake import catalog as cat

                chosen[name] = cat.snapshot_as_of(table, point)
        return chosen

    @cached_property
    def ml(self) -> MachineLearning:
        """Training, model registry and endpoints (lakehouse.ml)."""
        from lakehouse.ml import MachineLearning

        return MachineLearning(self)

    def table(self, name: str) -> Table:
        """The pyiceberg Table ``ns.table``.

        Raises AccessDeniedError for a governed principal (its scans ignore the policy).
        """
        self._refuse_raw_handle("table")
        return self._table(name)

    @guarded("loading table {name}")
    def _table(self, name: str) -> Table:
        from lakehouse.lake import catalog as cat

        return cat.load_table(self._lake_catalog, name, shown=self._shown_tables)

    def _shown_tables(self, names: list[str]) -> list[str]:
        """``names`` cut to the tables :attr:`principal` may see (for error hints)."""
        if not self.governed():
            return names
        from lakehouse.governance.visibility import listed_tables

        return listed_tables(self.settings, self.principal, names,
                             lambda name: {f.name: f.field_id for f in self._table(name).schema().fields})  # fmt: skip

    @guarded("listing tables", ("catalog",))
    def tables(self, namespace: str | None = None) -> list[str]:
        """'ns.table' names (of ``namespace``, or all); a governed principal gets only
        the tables it may DESCRIBE or SELECT from (lakehouse.governance.visibility),
        and none (no error) for a namespace that does not exist."""
        from lakehouse.lake import catalog as cat

        if not self.governed():
            return cat.list_tables(self._lake_catalog, namespace)
        try:
            names = cat.list_tables(self._lake_catalog, namespace)
        except TableNotFoundError:  # a missing namespace answers as one it sees nothing of:
            names = []  # "does not exist" would tell the hidden ones apart
        return self._shown_tables(names)

    @guarded("describe {name}")
    def describe(self, name: str) -> dict[str, Any]:
        """Schema, properties and current snapshot of ``name``; a governed principal
        sees only the columns the policy shows it (AccessDeniedError: none), and no
        row count behind a row filter (lakehouse.governance.table_view)."""
        from lakehouse.lake import catalog as cat

        table = self._table(name)
        described = cat.describe(table)
        if self.governed():
            from lakehouse.governance.table_view import governed_description

            described = governed_description(self.settings, self.principal, table, described)
        return described

    @guarded("history of {name}")
    def history(self, name: str) -> list[cat.SnapshotInfo]:
        """Snapshots of ``name``, oldest first. AccessDeniedError for a governed
        principal that may neither DESCRIBE nor SELECT it."""
        from lakehouse.lake import catalog as cat

        table = self._table(name)
        if self.governed():
            from lakehouse.governance.table_view import stored_counts_visible, without_counts
            from lakehouse.governance.visibility import described_columns

            ids = {f.name: f.field_id for f in table.schema().fields}
            described_columns(self.settings, self.principal, name, ids, action="HISTORY")
            if not stored_counts_visible(self.settings, self.principal, name, ids):
                return without_counts(cat.history(table))  # counts of hidden rows
        return cat.history(table)

    @guarded("ingest of {source} into {table}")
    def ingest(self, source: str | pa.Table, table: str, mode: str = "append",
               key: list[str] | None = None, format: str | None = None, *,
               types: TypeSpec | None = None, schema: str | Path | TypeSpec | None = None,
               delimiter: str | None = None, quote: str = '"', nulls: Sequence[str] = (),
               date_format: str | None = None,
               timestamp_format: str | None = None,
               encoding: str = "utf-8", principal: str | None = None) -> IngestResult:  # fmt: skip
        """Load a file, directory, s3:// URI or Arrow table into ``table`` in one commit.

        ``types`` ({column: "decimal(12,2)"}) and ``schema`` (a JSON/TOML file or a
        mapping of column to type name) win over inference; the other keywords are
        the CSV options of ``lakehouse ingest``. ``principal`` (default
        :attr:`principal`) needs INSERT (and DELETE to overwrite or upsert; CREATE_TABLE
        on the namespace for a new table) when governance holds it to the policy.
        Raises IngestError or AccessDeniedError, changing nothing.
        """
        from lakehouse.lake.ingest import Ingestor, ReadOptions

        self._check_write(principal, source, table, mode, key)
        options = ReadOptions(format, delimiter, quote, tuple(nulls), date_format, timestamp_format,
                              encoding=encoding)  # fmt: skip
        return Ingestor(self._lake_catalog, self.settings).ingest(
            source, table, mode, key, options=options, types=types, schema=schema
        )

    @guarded("crawl of {path}", ("catalog", "s3"))
    def crawl(self, path: str | None = None, namespace: str | None = None,
              name: str | None = None) -> CrawlReport:  # fmt: skip
        """Register what lies under ``path`` (s3://BUCKET/PREFIX) as tables of ``namespace``
        (default: the bucket's name): see :mod:`lakehouse.crawl`. ``name`` picks a crawler
        declared in lakehouse.toml, or names this one. Files that cannot be added are in
        the report's ``failures``; raises CrawlError when the crawl cannot start, and
        AccessDeniedError for a governed principal (a crawl writes with the stack's keys).
        """
        self._refuse_raw_handle("crawler", hint="Crawls are the governance admin's: unset "
                                "LAKEHOUSE_PRINCIPAL (or run as the admin).")  # fmt: skip
        from lakehouse.crawl import crawl

        return crawl(self.settings, path, namespace, name)

    def _check_write(self, principal: str | None, source: str | pa.Table, table: str,
                     mode: str, key: list[str] | None) -> None:  # fmt: skip
        """Refuse (audited) a write the policy does not allow ``principal``; audit one it does."""
        who = self.settings.acting_principal(principal)
        if not self.governed(who):
            return
        from lakehouse.governance.writes import check_ingest, check_source

        check_source(self.settings, who, source)
        check_ingest(self.settings, self._lake_catalog, who, table, mode, key)

    @guarded("optimize {table}", ("catalog", "s3", "trino"))
    def optimize(self, table: str, target_file_size: str | int | None = None,
                 where: str | None = None) -> MaintenanceReport:  # fmt: skip
        """Compact ``table``'s small data files on Trino (lakehouse.lake.maintenance);
        ``target_file_size`` like '128MB'; ``where`` a predicate on partition columns."""
        from lakehouse.lake import maintenance

        return maintenance.optimize(self, table, target_file_size, where)

    @guarded("expire-snapshots {table}", ("catalog", "s3"))
    def expire_snapshots(self, table: str, older_than: str | timedelta = timedelta(days=5),
                         retain_last: int = 1) -> MaintenanceReport:  # fmt: skip
        """Expire snapshots older than ``older_than`` ('7d', '36h') but the newest
        ``retain_last``, deleting the files only they reached (lakehouse.lake.maintenance)."""
        from lakehouse.lake import maintenance

        return maintenance.expire_snapshots(self, table, older_than, retain_last)

    @guarded("remove-orphan-files {table}", ("catalog", "s3"))
    def remove_orphan_files(self, table: str,
                            older_than: str | timedelta = timedelta(days=3)) -> MaintenanceReport:  # fmt: skip
        """Delete files no snapshot references, older than ``older_than`` (not under the
        ``maintenance_orphan_floor_seconds`` setting) (lakehouse.lake.maintenance)."""
        from lakehouse.lake import maintenance

        return maintenance.remove_orphan_files(self, table, older_than)

    def env(self) -> dict[str, str]:
        return environment(self.settings)

    def close(self) -> None:
        for opened in self._engines.values():
            opened.close()
        self._engines.clear()
        if self._spark is not None:
            self._spark.close()
            self._spark = None
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sync_services(integration: Integration) -> tuple[str, ...]:
    """The services an integration reads and writes, source first."""
    ends = (integration.source, integration.target)
    return tuple(
        dict.fromkeys(
            s for end in ends for s in (("catalog", "s3") if end == "iceberg" else (end,))
        )
    )


def connect(settings: Settings | None = None, **overrides: Any) -> Lakehouse:
    """Connect to the lake house described by settings (env, lakehouse.toml, defaults)."""
    return Lakehouse(settings or load_settings(**overrides))
