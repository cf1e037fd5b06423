"""Deleting and resetting integrations (what `sync delete` and `sync reset` do).

Both pause the integration first: followers (the sync service, `sync run
--follow`) let go of it within a poll, after their current pass, and this
process then holds its lock while it drops state, so no pass runs meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from filelock import FileLock, Timeout
from psycopg import sql

from lakehouse.config import Settings
from lakehouse.errors import ConfigError, ServiceUnavailableError, SyncError
from lakehouse.sync.generations import GenerationStore
from lakehouse.sync.integrations import Integration, IntegrationStore, slot_prefix
from lakehouse.sync.options import unused_option_refusal
from lakehouse.sync.postgres_keys import check_key, read_table_keys
from lakehouse.sync.status import StatusStore

# How long `sync delete` / `sync reset` wait for a follower to finish its pass.
RELEASE_TIMEOUT_SECONDS = 120.0


def lock_path(settings: Settings, name: str) -> str:
    """The file whose lock one process holds while it runs the integration ``name``."""
    return str(settings.home_dir / "sync" / "locks" / f"{name}.lock")


@contextmanager
def holding(settings: Settings, name: str) -> Iterator[None]:
    """Pause ``name`` and hold its lock: no follower runs a pass inside."""
    generations = GenerationStore(settings)
    with generations.pausing(name):
        lock = FileLock(lock_path(settings, name))
        try:
            lock.acquire(timeout=RELEASE_TIMEOUT_SECONDS)
        except Timeout:
            pid = StatusStore(settings).read(name).pid
            raise SyncError(
                f"{name} is still running a pass in process {pid} after "
                f"{RELEASE_TIMEOUT_SECONDS:.0f} s; nothing was changed.",
                hint="A long snapshot may be running: try again when `lakehouse sync status` "
                "shows it idle, or stop it (`lakehouse down --services sync`).",
            ) from None
        try:
            yield
        finally:
            lock.release()


def drop_source_positions(settings: Settings, integration: Integration,
                          keep: str | None = None) -> list[str]:  # fmt: skip
    """Drop the integration's replication slots and publications of every generation
    (but ``keep``, a slot name) in its database; returns what was dropped."""
    if integration.source != "postgres":
        return []
    pattern = "^" + re.escape(slot_prefix(integration.name)) + "(_[0-9a-f]{8})?$"
    dsn = settings.postgres_dsn(integration.database_name(settings))
    dropped = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        slots = conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = current_database() "
            "AND NOT active AND slot_name ~ %s",
            (pattern,),
        ).fetchall()
        for (slot,) in slots:
            if slot != keep:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                dropped.append(f"dropped replication slot {slot}")
        publications = conn.execute(
            "SELECT pubname FROM pg_publication WHERE pubname ~ %s", (pattern,)
        ).fetchall()
        for (publication,) in publications:
            if publication != keep:
                conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
                dropped.append(f"dropped publication {publication}")
    return dropped


def drop_orphan_positions(settings: Settings, declared: Iterable[Integration]) -> list[str]:
    """Drop the idle replication slots (and their publications) named like an
    integration's (``lakehouse_<name>[_<generation>]``) whose integration is no longer
    declared; returns what was dropped.

    A follower drops its own slot when its integration goes (``retire``), but an
    integration removed from lakehouse.toml while no follower ran left its slot
    behind, and a slot keeps PostgreSQL's WAL for ever. Active slots (another
    process reads them) are never touched.
    """
    prefixes = [slot_prefix(i.name) for i in declared if i.source == "postgres"]

    def orphan(slot: str) -> bool:
        return not any(re.fullmatch(re.escape(p) + "(_[0-9a-f]{8})?", slot) for p in prefixes)

    with psycopg.connect(settings.postgres_dsn(), autocommit=True, connect_timeout=5) as conn:
        slots = conn.execute(
            "SELECT slot_name, database FROM pg_replication_slots "
            "WHERE NOT active AND slot_type = 'logical' AND slot_name LIKE 'lakehouse\\_%'"
        ).fetchall()
    by_database: dict[str, list[str]] = {}
    for slot, database in slots:
        if database and orphan(slot):
            by_database.setdefault(database, []).append(slot)
    dropped = []
    for database, names in by_database.items():
        dsn = settings.postgres_dsn(database)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            for slot in names:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                dropped.append(f"dropped replication slot {slot} (database {database})")
            for (publication,) in conn.execute(
                "SELECT pubname FROM pg_publication WHERE pubname = ANY(%s)", (names,)
            ).fetchall():
                conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
                dropped.append(f"dropped publication {publication} (database {database})")
    return dropped


def _could_not(what: str, exc: Exception) -> str:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return f"could not {what}: {reason}"


def _drop_source_positions_reporting(settings: Settings, integration: Integration) -> list[str]:
    """drop_source_positions, a failure said in a line (lakehouse's own state goes anyway)."""
    try:
        return drop_source_positions(settings, integration)
    except (psycopg.Error, OSError) as exc:
        slots = slot_prefix(integration.name) + "_*"
        return [_could_not(
            f"drop replication slots / publications {slots} in database "
            f"{integration.database_name(settings)} (if any, they hold WAL until dropped: "
            "SELECT pg_drop_replication_slot(name))", exc,
        )]  # fmt: skip


def _drop_targets(settings: Settings, integration: Integration) -> list[str]:
    from lakehouse.sync.runner import build_pipeline

    pipeline = build_pipeline(settings, integration)
    writer = pipeline.writer
    dropped = []
    try:
        for table in integration.tables:
            writer.drop(table)
            dropped.append(f"dropped {integration.target} {writer.target_name(table)}")
    finally:
        pipeline.close()
    return dropped


def _targets(settings: Settings, integration: Integration) -> list[str]:
    if integration.target == "iceberg":
        return [integration.iceberg_target(t, settings) for t in integration.tables]
    return [integration.index_name(t, settings) for t in integration.tables]


def reset_integration(settings: Settings, name: str) -> list[str]:
    """Drop targets and source positions and renew the generation: the next pass (the
    sync service's within a poll) snapshots everything again."""
    integration = IntegrationStore(settings).get(name)
    with holding(settings, name):
        lines = _drop_targets(settings, integration)
        lines += drop_source_positions(settings, integration)
        StatusStore(settings).remove(name)
        GenerationStore(settings).renew(name)
    return [*lines, f"{name} will snapshot again on its next run"]


def delete_integration(settings: Settings, name: str, drop_targets: bool = False) -> list[str]:
    """Forget an integration and all its state: slots, publications, positions, status,
    lock. Its targets stay unless ``drop_targets``; the lines say which.

    An integration declared in lakehouse.toml is refused (ConfigError), with nothing
    changed: it is deleted by removing it there (a follower then drops its state).
    """
    store = IntegrationStore(settings)
    if store.declared_in_config_file(name):
        raise ConfigError(
            f"'{name}' is declared in lakehouse.toml; nothing was deleted.",
            hint=f"Remove [sync.{name}] from lakehouse.toml: the sync service (or `lakehouse "
            "sync run --follow`) then drops its replication slot and positions within a poll.",
        )
    integration = store.get(name, checked=False)
    with holding(settings, name):
        lines = []
        if drop_targets:
            try:
                lines += _drop_targets(settings, integration)
            except Exception as exc:  # a server down: its own state still goes
                lines.append(
                    _could_not(
                        f"drop the targets {', '.join(_targets(settings, integration))}", exc
                    )
                )
        lines += _drop_source_positions_reporting(settings, integration)
        store.remove(name)
        GenerationStore(settings).forget(name)
        StatusStore(settings).remove(name)
        (settings.home_dir / "sync" / "locks" / f"{name}.lock").unlink(missing_ok=True)
    if not drop_targets:
        kept = ", ".join(_targets(settings, integration))
        lines.append(f"kept {integration.target} {kept} (--drop-targets drops them)")
    return [*lines, f"deleted {name}"]


def create_integration(settings: Settings, integration: Integration,
                       flags: bool = False) -> bool:  # fmt: skip
    """Store a new integration once its source shows it can work: every table exists
    and has a key (its primary key / identifier fields, or the declared key columns).
    Returns False, storing nothing, when it exists already with the same settings.

    A source that does not answer is a ServiceUnavailableError and nothing is stored:
    an unchecked integration would fail later, after its replication slot held WAL.
    Raises ConfigError (nothing stored, no server asked) for an option the route does
    not use (named as a CLI option with ``flags``), a name taken by an integration with
    other settings, a target another integration (or another of its tables) writes, or
    an index name OpenSearch refuses; and, after asking the source, for a table, key or
    database that is not there.
    """
    if refusal := unused_option_refusal(integration, flags):
        raise ConfigError(f"{refusal[0]} Nothing was created.", hint=refusal[1])
    store = IntegrationStore(settings)
    try:
        created = store.refuse_conflicts(integration)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} Nothing was created.", hint=exc.hint) from None
    if created.get(integration.name) == integration:
        return False
    if integration.source == "postgres":
        _check_postgres_source(settings, integration)
    else:
        _check_iceberg_source(settings, integration)
    store.create(integration)
    return True


def _check_postgres_source(settings: Settings, integration: Integration) -> None:
    database = integration.database_name(settings)
    try:
        conn = psycopg.connect(settings.postgres_dsn(database), connect_timeout=5)
    except psycopg.OperationalError as exc:
        if f'database "{database}" does not exist' in str(exc):
            raise ConfigError(
                f"PostgreSQL has no database {database}; nothing was created.",
                hint="Pass --database with an existing database (psql's \\l lists them).",
            ) from None
        raise ServiceUnavailableError(
            "postgres",
            f"{settings.client_host}:{settings.postgres_port}",
            f"checking {integration.name} against its source (nothing was created)",
            " ".join(str(exc).split()),
        ) from None
    with conn:
        for table in integration.tables:
            schema, name = integration.source_table(table)
            keys = read_table_keys(conn, schema, name)
            if keys is None:
                raise ConfigError(
                    f"Table {schema}.{name} does not exist in database {database}; "
                    "nothing was created.",
                    hint="Fix --tables (psql's \\dt lists the tables) or --database.",
                )
            _check_key(integration, keys.table, list(keys.not_null), list(keys.primary_key))
            try:
                check_key(keys, integration.key or keys.primary_key)
            except ConfigError as exc:
                raise ConfigError(f"{exc.message} Nothing was created.", hint=exc.hint) from None


def _check_iceberg_source(settings: Settings, integration: Integration) -> None:
    from pyiceberg.exceptions import NoSuchTableError

    from lakehouse.lake.catalog import open_catalog

    catalog = open_catalog(settings)  # ServiceUnavailableError when it does not answer
    for table in integration.tables:
        try:
            schema = catalog.load_table(table).schema()
        except NoSuchTableError:
            raise ConfigError(
                f"Iceberg table {table} does not exist; nothing was created.",
                hint="Fix --tables (`lakehouse tables` lists them).",
            ) from None
        names = [f.name for f in schema.fields]
        identifiers = [schema.find_column_name(i) or "" for i in schema.identifier_field_ids]
        _check_key(integration, table, names, identifiers)


def _check_key(integration: Integration, table: str, columns: list[str],
               primary_key: list[str]) -> None:  # fmt: skip
    if missing := [k for k in integration.key if k not in columns]:
        raise ConfigError(
            f"Table {table} has no column {', '.join(missing)} (the --key); nothing was created.",
            hint=f"Its columns: {', '.join(columns)}.",
        )
    if not integration.key and not primary_key:
        raise ConfigError(
            f"Table {table} has no primary key, so its changes cannot be matched to target "
            "rows; nothing was created.",
            hint="Add a primary key (or Iceberg identifier fields), or pass --key with "
            "columns that identify a row.",
        )
