"""The Arrow snapshot and the per-row path agree on a real PostgreSQL's output.

The same table is read both ways: COPY as CSV converted a column at a time
(`lakehouse.sync.arrow_snapshot`), and COPY as text converted a row at a time by
`pgtypes.converter` (the definition of a correct value). The Arrow tables and
the dead letters (row, reason) must be identical, so the fast path cannot drift
from the converter as the converter changes.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse.sync.arrow_snapshot import convert_chunk, raw_rows
from lakehouse.sync.integrations import Integration
from lakehouse.sync.model import rows_to_arrow
from lakehouse.sync.pgtypes import arrow_schema
from lakehouse.sync.postgres_source import PostgresSource, RowRejected

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_postgres]

EDGE_TABLE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE edge (
  id int PRIMARY KEY, b bool, i2 int2, i8 int8, f4 real, f8 double precision,
  n numeric(12,3), n38 numeric(38,0), nu numeric, t text, vc varchar(10), bp char(3),
  u uuid, j json, jb jsonb, d date, ts timestamp, tstz timestamptz, tm time,
  ttz timetz, iv interval, arr int4[], tarr text[], by bytea, m mood, p positive
);
INSERT INTO edge (id) VALUES (0);
INSERT INTO edge VALUES
 (1, true, -32768, -9223372036854775808, 'NaN', 'NaN', 'NaN', -99999999999999999999999999999999999999,
  '1.234567890123456789', '', '', '', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}',
  '{"b": null}', '1969-12-31', '1900-01-01 00:00:00', '1969-07-20 20:17:40+00', '00:00:00',
  '12:00:00+05:30', '1 year 2 mons -3 days 04:05:06.7', '{1,NULL,3}', '{"a,b","c\\"d",NULL}',
  '\\x', 'sad', 1),
 (2, false, 32767, 9223372036854775807, 'Infinity', '-Infinity', '-123456789.123',
  99999999999999999999999999999999999999, '0.0000000004', E'line\\nbreak, "quoted"', 'ünïcode',
  'x', '00000000-0000-0000-0000-000000000000', '[]', '[]', '0001-01-01', '2020-02-29 23:59:59.999999',
  '9999-12-31 23:59:59.999999+00', '23:59:59.999999', '00:00:00-12', '-178000000 years',
  '{}', '{}', '\\xdeadbeef00', 'happy', 2147483647),
 (3, NULL, 0, 0, '-0', '-0', '0.000', 0, '123456789012345678901234567890123456789012',
  'NULL', NULL, NULL, NULL, 'null', '{}', 'infinity', 'infinity', '-infinity', '24:00:00',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, true, 1, 1, '3.4028235e+38', '1.7976931348623157e+308', '1.5', 1, 'NaN', '\\N', NULL,
  NULL, NULL, NULL, NULL, '0044-03-15 BC', '0001-01-01 00:00:00 BC', '294276-12-31 23:59:59+00',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, false, 2, 2, '1.1', '0.1', '-0.001', 2, '1e-20', 'x', NULL, NULL, NULL, NULL, NULL,
  '9999-12-31', '10000-01-01 00:00:00', NULL, '12:30:00.5', NULL, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (6, true, 3, 3, '1e-45', '5e-324', NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL,
  '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO edge (id, f4, f8, n, d, ts, tstz, t)
SELECT g, g / 7.0, g / 3.0, g / 8.0, date '1960-01-01' + g, timestamp '1950-01-01' + g * interval '1 minute',
       timestamptz '2000-01-01 00:00:00+00' + g * interval '1.5 s', repeat('v', g % 50)
FROM generate_series(10, 30000) g;
"""


def _per_row(
    source: PostgresSource, columns: Any
) -> tuple[pa.Table, list[tuple[dict[str, Any], str]]]:
    names = [c.name for c in columns]
    rows, refused = [], []
    for chunk in source.snapshot("public", "edge", columns):
        for values in chunk:
            raw = dict(zip(names, values, strict=True))
            try:
                rows.append(source.convert_row(columns, raw))
            except RowRejected as exc:
                refused.append((raw, str(exc)))
    return rows_to_arrow(rows, arrow_schema(columns)), refused


def _arrow(
    source: PostgresSource, columns: Any
) -> tuple[pa.Table, list[tuple[dict[str, Any], str]]]:
    tables, refused = [], []
    for text in source.snapshot_text("public", "edge", columns, chunk_bytes=64 * 1024):
        chunk = convert_chunk(text, columns)
        tables.append(chunk.rows)
        rows = raw_rows(text, [row for row, _ in chunk.refused])
        refused += [(raw, reason) for raw, (_, reason) in zip(rows, chunk.refused, strict=True)]
    return pa.concat_tables(tables), refused


def _as_text(table: pa.Table) -> list[list[str]]:
    """Every value by repr: -0.0 differs from 0.0, NaN equals NaN."""
    return [[repr(v) for v in column.to_pylist()] for column in table.columns]


def test_the_arrow_snapshot_equals_the_per_row_path(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(EDGE_TABLE)
    database = conninfo_to_dict(postgres_dsn)["dbname"]
    integration = Integration(name=f"arrow-{database[-8:]}", source="postgres", target="iceberg",
                              tables=("edge",), database=database)  # fmt: skip
    source = PostgresSource(postgres_dsn, integration)
    try:
        columns = source.columns("public", "edge")
        fast, fast_refused = _arrow(source, columns)
        slow, slow_refused = _per_row(source, columns)
    finally:
        source.close()
    assert fast.schema == slow.schema
    assert fast.num_rows == slow.num_rows > 29_000
    assert _as_text(fast) == _as_text(slow)
    assert fast_refused == slow_refused
    refused_ids = [raw["id"] for raw, _ in fast_refused]
    assert {"1", "3", "4"} <= set(refused_ids)  # NaN numeric(12,3), infinity dates, BC dates
