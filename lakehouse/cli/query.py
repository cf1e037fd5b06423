"""`lakehouse query` and the formats results are printed in."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from rich.table import Table as RichTable

from lakehouse.cli.common import friendly_errors, lake_of, out, settings_of

if TYPE_CHECKING:
    import pyarrow as pa


@click.command()
@click.argument("sql")
@click.option(
    "--engine", type=click.Choice(["duckdb", "trino", "spark"]), default="duckdb", show_default=True
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--as-of", help="Snapshot id or timestamp (ISO 8601, UTC if no zone) to read.")
@click.pass_context
@friendly_errors
def query(ctx: click.Context, sql: str, engine: str, fmt: str, as_of: str | None) -> None:
    """Run SQL over the lake's tables (plain namespace.table names)."""
    with lake_of(settings_of(ctx)) as lake:
        result = lake.sql(sql, engine=engine, as_of=as_of)
    print_arrow(result, fmt)


def print_arrow(result: pa.Table, fmt: str) -> None:
    if fmt == "csv":
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        sink = pa.BufferOutputStream()
        pa_csv.write_csv(result, sink)
        sys.stdout.write(sink.getvalue().to_pybytes().decode())
    elif fmt == "json":
        click.echo(json.dumps(result.to_pylist(), default=str, indent=2))
    else:
        table = RichTable(*result.column_names)
        for row in result.to_pylist():
            table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
        out.print(table)
        out.print(f"{result.num_rows} row(s)")
