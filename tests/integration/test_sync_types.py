"""Every row of the documented type table (lakehouse.sync.typedocs) on the real stack.

One PostgreSQL table holds a column per type, its rows the table's edge values;
a second holds one row per value that must become a dead letter. Both are synced
to Iceberg and to OpenSearch by the snapshot, then again through streamed
changes (inserts and updates after the snapshot). Each value read back from the
target is checked by PostgreSQL itself: cast back to the column's type, its text
must equal the source's text.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.deadletters import TABLE as DEAD_LETTERS
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.opensearch_mapping import decoded
from lakehouse.sync.opensearch_target import scroll_hits
from lakehouse.sync.pgtypes import arrow_type
from lakehouse.sync.status import StatusStore
from lakehouse.sync.typedocs import CASES, TypeCase, iceberg_type
from lakehouse.sync.verify import verify
from lakehouse.testing.lake import unique_name
from lakehouse.testing.postgres import create_database, drop_database
from tests.integration.conftest import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
]

STREAMED_ID_OFFSET = 1000
EXACT_FLOATS = "-c extra_float_digits=1"

COLUMNS = [(f"c{i}", case.sql_type) for i, case in enumerate(CASES)]
ROWS = max(len(case.kept) for case in CASES)


@dataclass
class Synced:
    dsn: str
    to_lake: Integration
    to_search: Integration
    passes: list[tuple[Any, Any]]


def _table_sql(name: str) -> str:
    columns = ", ".join(f"{column} {kind}" for column, kind in COLUMNS)
    return f"CREATE TABLE {name} (id int PRIMARY KEY, {columns})"


def _insert_rows(conn: psycopg.Connection[Any], offset: int) -> None:
    """The kept values (row i holds each column's i-th value, cycling), an all-NULL
    row, and one row per value OpenSearch cannot store (Iceberg keeps them)."""
    for row in range(ROWS):
        values = ", ".join(case.kept[row % len(case.kept)] for case in CASES)
        conn.execute(f"INSERT INTO typed VALUES ({offset + row}, {values})")
    conn.execute(f"INSERT INTO typed (id) VALUES ({offset + ROWS})")
    row_id = offset + ROWS + 1
    for (column, _), case in zip(COLUMNS, CASES, strict=True):
        for literal in case.refused_by_opensearch:
            conn.execute(f"INSERT INTO typed (id, {column}) VALUES ({row_id}, {literal})")
            row_id += 1
    for (column, _), case in zip(COLUMNS, CASES, strict=True):
        for literal in case.refused:
            conn.execute(f"INSERT INTO refused (id, {column}) VALUES ({row_id}, {literal})")
            row_id += 1


def _refused_count(for_opensearch: bool) -> int:
    count = sum(len(case.refused) for case in CASES)
    return count + (sum(len(c.refused_by_opensearch) for c in CASES) if for_opensearch else 0)


@pytest.fixture(scope="module")
def synced(stack: Settings) -> Iterator[Synced]:
    database = unique_name("sync_types", limit=40).lower()
    create_database(stack, database)
    dsn = stack.postgres_dsn(database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A database whose sessions print floats rounded to 15/6 digits: the sync must
        # read exact text anyway (the test's own sessions ask for exact text, below).
        conn.execute(f"ALTER DATABASE {database} SET extra_float_digits = 0")
        for case in CASES:  # enums and domains, in order (a domain may use an earlier type)
            if case.created:
                conn.execute(case.created)
        conn.execute(_table_sql("typed"))
        conn.execute(_table_sql("refused"))
        _insert_rows(conn, 0)
    store = IntegrationStore(stack)
    common = {"source": "postgres", "tables": ("typed", "refused"), "database": database}
    to_lake = Integration(name=f"{database}-lake", target="iceberg", namespace=database,
                          **common)  # type: ignore[arg-type]  # fmt: skip
    to_search = Integration(name=f"{database}-search", target="opensearch",
                            index_prefix=f"{database}-", **common)  # type: ignore[arg-type]  # fmt: skip
    for integration in (to_lake, to_search):
        store.create(integration)
    synced = Synced(dsn, to_lake, to_search, [])
    try:
        with Lakehouse(stack) as lake:
            synced.passes.append((lake.sync(to_lake.name), lake.sync(to_search.name)))
            with psycopg.connect(dsn, autocommit=True) as conn:
                _insert_rows(conn, STREAMED_ID_OFFSET)
                # Each kept row takes the next row's values: updates of every column.
                names = ", ".join(column for column, _ in COLUMNS)
                conn.execute(
                    f"UPDATE typed SET ({names}) = (SELECT {names} FROM typed AS next "
                    f"WHERE next.id = (typed.id + 1) % {ROWS}) WHERE typed.id < {ROWS}"
                )
            synced.passes.append((lake.sync(to_lake.name), lake.sync(to_search.name)))
        yield synced
    finally:
        for integration in (to_lake, to_search):
            delete_integration(stack, integration.name, drop_targets=True)
        drop_database(stack, database)


def _literal(value: Any, kind: pa.DataType) -> str | None:
    """The text PostgreSQL reads back as ``value`` (from Iceberg or OpenSearch JSON)."""
    if value is None:
        return None
    if pa.types.is_binary(kind):
        raw = base64.b64decode(value) if isinstance(value, str) else value
        return "\\x" + raw.hex()
    if isinstance(value, float):
        names = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
        return names.get(repr(value), repr(value))
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _assert_as_in_postgres(dsn: str, table: str, rows: dict[int, dict[str, Any]]) -> None:
    kinds = {
        column: arrow_type(*_oid(case)) for (column, _), case in zip(COLUMNS, CASES, strict=True)
    }
    checks = ", ".join(
        f"{column}::text IS NOT DISTINCT FROM CAST(%s AS {kind})::text" for column, kind in COLUMNS
    )
    with psycopg.connect(dsn, options=EXACT_FLOATS) as conn:
        for row_id, row in rows.items():
            params = [_literal(row.get(column), kinds[column]) for column, _ in COLUMNS]
            same = conn.execute(f"SELECT {checks} FROM {table} WHERE id = %s",
                                [*params, row_id]).fetchone()  # fmt: skip
            assert same is not None, f"row {row_id} is not in the source"
            wrong = [
                f"{c} ({k}): {p!r}"
                for (c, k), p, ok in zip(COLUMNS, params, same, strict=True)
                if not ok
            ]
            assert not wrong, f"{table} row {row_id} changed: {wrong}"


def _oid(case: TypeCase) -> tuple[int, int]:
    return case.type_oid, case.type_modifier


def _source_ids(dsn: str, table: str) -> set[int]:
    with psycopg.connect(dsn, options=EXACT_FLOATS) as conn:
        return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}


def _opensearch_only_ids(dsn: str) -> set[int]:
    literals_columns = [c for (c, _), case in zip(COLUMNS, CASES, strict=True)
                        if case.refused_by_opensearch]  # fmt: skip
    where = " OR ".join(f"{c} IS NOT NULL AND {c}::text IN ('NaN', 'Infinity', '-Infinity')"
                        for c in literals_columns)  # fmt: skip
    with psycopg.connect(dsn, options=EXACT_FLOATS) as conn:
        return {row[0] for row in conn.execute(f"SELECT id FROM typed WHERE {where}")}


def test_every_dead_letter_is_counted_by_the_snapshot_and_the_stream(
    stack: Settings, synced: Synced
) -> None:
    (lake_snapshot, search_snapshot), (lake_stream, search_stream) = synced.passes
    for integration, refused in ((synced.to_lake, _refused_count(for_opensearch=False)),
                                 (synced.to_search, _refused_count(for_opensearch=True))):  # fmt: skip
        # Snapshot rows and streamed rows are distinct letters, each counted once however
        # many passes, retries and replays (of the snapshot too) it took.
        assert StatusStore(stack).read(integration.name).dead_letters == 2 * refused
    # A call reports what was applied while it ran; with the sync service up, part of
    # it may have been applied before the call (never counted twice, though).
    assert lake_snapshot.dead_letters + lake_stream.dead_letters <= 2 * _refused_count(False)
    assert search_snapshot.dead_letters + search_stream.dead_letters <= 2 * _refused_count(True)
    assert lake_stream.dead_letters <= _refused_count(for_opensearch=False)
    assert search_stream.dead_letters <= _refused_count(for_opensearch=True)


def test_iceberg_holds_every_value_unchanged(stack: Settings, synced: Synced) -> None:
    catalog = open_catalog(stack)
    table = catalog.load_table(synced.to_lake.iceberg_target("typed", stack))
    documented = {f"c{i}": iceberg_type(arrow_type(*_oid(case))) for i, case in enumerate(CASES)}
    held = {column: str(table.schema().find_field(column).field_type) for column in documented}
    assert held == documented  # the Iceberg column of docs/zero-etl-types.md
    rows = {row["id"]: row for row in table.scan().to_arrow().to_pylist()}
    assert set(rows) == _source_ids(synced.dsn, "typed")
    _assert_as_in_postgres(synced.dsn, "typed", rows)
    refused = catalog.load_table(synced.to_lake.iceberg_target("refused", stack))
    assert refused.scan().to_arrow().num_rows == 0


def test_opensearch_holds_every_value_unchanged(stack: Settings, synced: Synced,
                                                opensearch: Any) -> None:  # fmt: skip
    index = synced.to_search.index_name("typed", stack)
    opensearch.indices.refresh(index=index)
    rows = {int(hit["_id"]): decoded(hit["_source"]) for hit in scroll_hits(opensearch, index, {})}
    assert set(rows) == _source_ids(synced.dsn, "typed") - _opensearch_only_ids(synced.dsn)
    _assert_as_in_postgres(synced.dsn, "typed", rows)


def test_dead_letters_name_the_column_and_the_value(stack: Settings, synced: Synced) -> None:
    letters = open_catalog(stack).load_table(DEAD_LETTERS).scan().to_arrow().to_pylist()
    ours = [d for d in letters if d["integration"] == synced.to_lake.name]
    assert len(ours) == 2 * _refused_count(for_opensearch=False)  # snapshot and stream rows
    with psycopg.connect(synced.dsn, options=EXACT_FLOATS) as conn:
        for letter in ours:
            row_id = json.loads(letter["row_key"])["id"]
            values = conn.execute("SELECT to_jsonb(r) FROM refused r WHERE id = %s", (int(row_id),))
            (source,) = values.fetchone()  # type: ignore[misc]
            ((column, _),) = [(k, v) for k, v in source.items() if k != "id" and v is not None]
            text = conn.execute(f"SELECT {column}::text FROM refused WHERE id = %s",
                                (int(row_id),)).fetchone()[0]  # type: ignore[index]  # fmt: skip
            assert f"column {column}" in letter["reason"] and repr(text) in letter["reason"]
            case = CASES[int(column.removeprefix("c"))]
            if case.created.startswith("CREATE DOMAIN"):
                assert f"column {column} (domain {case.sql_type}):" in letter["reason"]


def test_verify_finds_both_targets_equal_to_the_source(stack: Settings, synced: Synced) -> None:
    for integration in (synced.to_lake, synced.to_search):
        reports = {report.table: report for report in verify(stack, integration)}
        assert all(report.ok for report in reports.values()), reports
        assert reports["refused"].source_rows == 0
        assert len(reports["refused"].rejected) == 2 * _refused_count(for_opensearch=False)
    search = {report.table: report for report in verify(stack, synced.to_search)}
    assert len(search["typed"].rejected) == len(_opensearch_only_ids(synced.dsn))


def test_verify_reports_a_changed_value_with_its_key_and_column(
    stack: Settings, synced: Synced, opensearch: Any
) -> None:
    index = synced.to_search.index_name("typed", stack)
    original = opensearch.get(index=index, id="1")["_source"]
    real_column = next(
        c for (c, _), case in zip(COLUMNS, CASES, strict=True) if case.sql_type == "real"
    )
    # A double 1.1 in a real column: what a conversion that skipped float32 would store.
    altered = {**original, real_column: 1.1}
    opensearch.index(index=index, id="1", body=altered, params={"refresh": "true"})
    try:
        report = next(r for r in verify(stack, synced.to_search) if r.table == "typed")
        assert report.different == ["1"]
        assert report.differing_columns == {"1": [real_column]}
    finally:
        opensearch.index(index=index, id="1", body=original, params={"refresh": "true"})


def test_sync_verify_names_differing_keys_columns_missing_and_extra(
    stack: Settings, synced: Synced, opensearch: Any
) -> None:
    name, index = synced.to_search.name, synced.to_search.index_name("typed", stack)
    equal = run_cli("sync", "verify", name)
    assert "typed -> " in equal.stdout and "equal" in equal.stdout
    original = opensearch.get(index=index, id="1")["_source"]
    real_column = next(
        c for (c, _), case in zip(COLUMNS, CASES, strict=True) if case.sql_type == "real"
    )
    second = opensearch.get(index=index, id="2")["_source"]
    opensearch.index(index=index, id="1", body={**original, real_column: 1.1})
    opensearch.index(index=index, id="999999", body={"id": 999999})
    opensearch.delete(index=index, id="2", params={"refresh": "true"})
    try:
        shown = run_cli("sync", "verify", name, check=False)
        assert shown.returncode == 1, shown.stdout + shown.stderr
        assert "1 missing, 1 extra, 1 different" in shown.stdout
        assert "missing: 2\n" in shown.stdout and "extra: 999999\n" in shown.stdout
        assert f"key 1: {real_column} differ" in shown.stdout
        as_json = run_cli("sync", "verify", name, "--json", check=False)
        assert as_json.returncode == 1
        typed = next(r for r in json.loads(as_json.stdout) if r["table"] == "typed")
        assert (typed["ok"], typed["missing"], typed["extra"]) == (False, ["2"], ["999999"])
        assert typed["differing_columns"] == {"1": [real_column]}
    finally:
        opensearch.index(index=index, id="1", body=original)
        opensearch.index(index=index, id="2", body=second)
        opensearch.delete(index=index, id="999999", params={"refresh": "true"})
    assert run_cli("sync", "verify", name, "--json").returncode == 0


def test_verify_of_a_missing_target_is_one_clear_error(stack: Settings, synced: Synced) -> None:
    from lakehouse.errors import SyncError

    elsewhere = synced.to_search.model_copy(update={"index_prefix": "never-created-"})
    with pytest.raises(SyncError, match="does not exist") as raised:
        verify(stack, elsewhere)
    assert raised.value.hint
    nowhere = synced.to_lake.model_copy(update={"namespace": "never_created_ns"})
    with pytest.raises(SyncError, match="does not exist"):
        verify(stack, nowhere)


def test_a_domain_column_keeps_its_base_type_through_alter_domain_and_alter_column(
    stack: Settings, synced: Synced
) -> None:
    """ALTER DOMAIN changes no column type; ALTER COLUMN ... TYPE from a domain follows
    the schema-change rules of its base type (the same type: nothing; wider: promoted)."""
    table_name = "ledger"
    with psycopg.connect(synced.dsn, autocommit=True) as conn:
        conn.execute("CREATE DOMAIN quantity AS integer")
        conn.execute("CREATE DOMAIN amount AS numeric(12,2)")
        conn.execute("CREATE DOMAIN fee AS amount CHECK (VALUE >= 0)")
        conn.execute("CREATE DOMAIN entry AS bigint")  # the key's type: a domain too
        conn.execute(f"CREATE TABLE {table_name} (id entry PRIMARY KEY, qty quantity, paid fee)")
        conn.execute(f"INSERT INTO {table_name} VALUES (1, -5, 12.34), (9, 1, 1)")
    integration = Integration(name=f"{synced.to_lake.name}-ledger", source="postgres",
                              target="iceberg", tables=(table_name,),
                              database=synced.to_lake.database,
                              namespace=synced.to_lake.namespace)  # type: ignore[arg-type]  # fmt: skip
    IntegrationStore(stack).create(integration)
    catalog = open_catalog(stack)
    target = integration.iceberg_target(table_name, stack)

    def synced_types(*statements: str) -> dict[str, str]:
        with psycopg.connect(synced.dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        with Lakehouse(stack) as lake:
            assert lake.sync(integration.name).dead_letters == 0
        schema = catalog.load_table(target).schema()
        return {c: str(schema.find_field(c).field_type) for c in ("id", "qty", "paid")}

    try:
        assert synced_types() == {"id": "long", "qty": "int", "paid": "decimal(12, 2)"}
        altered = synced_types(
            "ALTER DOMAIN quantity ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID",
            "ALTER DOMAIN fee RENAME TO charge",
            f"INSERT INTO {table_name} VALUES (2, 2147483647, 9999999999.99)",
            f"DELETE FROM {table_name} WHERE id = 9",  # by a key of a domain type
            f"ALTER TABLE {table_name} ADD COLUMN tip amount",  # first seen in the stream
            f"INSERT INTO {table_name} VALUES (5, 1, 0, -0.01)",
        )
        assert altered == {"id": "long", "qty": "int", "paid": "decimal(12, 2)"}
        tip = catalog.load_table(target).schema().find_field("tip").field_type
        assert str(tip) == "decimal(12, 2)"
        widened = synced_types(
            f"ALTER TABLE {table_name} ALTER COLUMN qty TYPE integer",
            f"ALTER TABLE {table_name} ALTER COLUMN paid TYPE numeric(14,2)",
            f"INSERT INTO {table_name} VALUES (3, 7, 999999999999.99)",
        )
        assert widened == {"id": "long", "qty": "int", "paid": "decimal(14, 2)"}
        longer = synced_types(f"ALTER TABLE {table_name} ALTER COLUMN qty TYPE bigint",
                              f"INSERT INTO {table_name} VALUES (4, 2199023255552, 0)")  # fmt: skip
        assert longer == {"id": "long", "qty": "long", "paid": "decimal(14, 2)"}
        (report,) = verify(stack, integration)
        assert report.ok and report.source_rows == 5, report
    finally:
        delete_integration(stack, integration.name, drop_targets=True)
