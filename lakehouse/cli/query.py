"""`lakehouse query` and the formats results are printed in."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

import click
from rich.table import Table as RichTable

from lakehouse.cli.common import friendly_errors, lake_of, out, settings_of
from lakehouse.errors import QueryError

if TYPE_CHECKING:
    import pyarrow as pa


@click.command()
@click.argument("sql", required=False)
@click.option(
    "-f",
    "--file",
    "script",
    type=click.File("r"),
    help="Run every statement in FILE ('-': stdin) in one process, printing each result in turn.",
)
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
    ctx: click.Context,
    sql: str | None,
    script: TextIO | None,
    engine: str,
    fmt: str,
    as_of: str | None,
    native: bool,
) -> None:
    """Run SQL over the lake's tables (DuckDB's dialect, translated for each engine).

    With -f, a file of statements runs in one process, paying start-up once.
    """
    if script is not None:
        statements = script_statements(script.read(), sql)
    elif sql is not None:
        statements = [sql]
    else:
        raise QueryError("lakehouse", "", "no SQL given",
                         hint='lakehouse query "SELECT ...", or lakehouse query -f FILE')  # fmt: skip
    with lake_of(settings_of(ctx)) as lake:
        for statement in statements:
            print_arrow(lake.sql(statement, engine=engine, as_of=as_of, native=native), fmt)


def script_statements(text: str, sql: str | None) -> list[str]:
    """The statements of a -f script, split by DuckDB's parser (the query language's)."""
    import duckdb

    if sql is not None:
        raise QueryError("lakehouse", sql, "give SQL or -f FILE, not both",
                         hint="Put the statement into the file.")  # fmt: skip
    try:
        statements = [statement.query.strip() for statement in duckdb.extract_statements(text)]
    except duckdb.Error as exc:
        raise QueryError("duckdb", text, f"cannot split the script into statements: {exc}",
                         hint="Scripts are written in DuckDB's dialect; "
                         "run a native statement on its own with --native.") from exc  # fmt: skip
    if not statements:
        raise QueryError("lakehouse", text, "the script holds no statement",
                         hint="Separate statements with ';'.")  # fmt: skip
    return statements


def print_arrow(result: pa.Table, fmt: str) -> None:
    """Write ``result`` to stdout as ``table``, ``csv`` or ``json`` (see engines.output)."""
    from lakehouse.engines import output

    if fmt == "csv":
        sys.stdout.write(output.to_csv(result))
    elif fmt == "json":
        sys.stdout.write(output.to_json(result))
    else:
        out.print(rich_table(result))
        out.print(f"{result.num_rows} row(s)")


def rich_table(result: pa.Table) -> RichTable:
    """``result`` as a rich table; headers and cells are plain text, never markup."""
    from rich.text import Text

    from lakehouse.engines import output

    table = RichTable()
    for name in result.column_names:  # a repeated name is a column of its own
        table.add_column(Text(name), overflow="fold")
    for row in output.table_rows(result):
        table.add_row(*(Text(cell) for cell in row))
    return table
