"""`lakehouse query` and the formats results are printed in."""

from __future__ import annotations

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
@click.option(
    "--native",
    is_flag=True,
    help="Send the text to the engine unchanged, in its own dialect (no translation).",
)
@click.pass_context
@friendly_errors
def query(
    ctx: click.Context, sql: str, engine: str, fmt: str, as_of: str | None, native: bool
) -> None:
    """Run SQL over the lake's tables (DuckDB's dialect, translated for each engine)."""
    with lake_of(settings_of(ctx)) as lake:
        result = lake.sql(sql, engine=engine, as_of=as_of, native=native)
    print_arrow(result, fmt)


def print_arrow(result: pa.Table, fmt: str) -> None:
    """Write ``result`` to stdout as ``table``, ``csv`` or ``json`` (see engines.output)."""
    from lakehouse.engines import output

    if fmt == "csv":
        sys.stdout.write(output.to_csv(result))
    elif fmt == "json":
        sys.stdout.write(output.to_json(result))
    else:
        table = RichTable(*result.column_names)
        for column in table.columns:
            column.overflow = "fold"
        for row in output.table_rows(result):
            table.add_row(*row)
        out.print(table)
        out.print(f"{result.num_rows} row(s)")
