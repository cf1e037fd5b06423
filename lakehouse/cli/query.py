"""`lakehouse query` and the formats results are printed in."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

import click

from lakehouse.cli.common import friendly_errors, lake_of, out, settings_of
from lakehouse.errors import ConfigError, QueryError

if TYPE_CHECKING:
    import pyarrow as pa


@click.command()
@click.argument("sql", required=False)
@click.option(
    "-f",
    "--file",
    "script",
    type=click.File("r"),
    help="Run every statement in FILE ('-': stdin) in one process, printing each result in "
    "turn; with --format json, one JSON array of {statement, columns, rows} objects; "
    "--format csv takes one statement only.",
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
@click.option(
    "--as",
    "principal",
    metavar="PRINCIPAL",
    help="Run as PRINCIPAL: with governance on, its grants, row filters and masks apply "
    "(default: LAKEHOUSE_PRINCIPAL, else the governance admin).",
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
    principal: str | None,
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
    if script is not None and fmt == "csv" and len(statements) > 1:
        raise ConfigError(f"--format csv prints one table, and the script holds "
                          f"{len(statements)} statements; nothing was run.",
                          hint="Use --format json (one JSON array of results) for a script, "
                          "or run each statement on its own with --format csv.")  # fmt: skip
    from lakehouse.engines.history import run_recorded

    with lake_of(settings_of(ctx)) as lake:
        results = (
            (
                statement,
                run_recorded(
                    lake, statement, engine, as_of=as_of, native=native, principal=principal
                ),
            )
            for statement in statements
        )
        if script is not None and fmt == "json":
            print_json_results(results)
        else:
            for _, result in results:
                print_arrow(result, fmt)


def print_json_results(results: Iterable[tuple[str, pa.Table]]) -> None:
    """A script's results as ONE JSON array of ``{"statement", "columns", "rows"}`` objects.

    Each result is written as soon as it is known; if a statement fails the
    array is left open (not valid JSON) and the command exits 1.
    """
    from lakehouse.engines import output

    sys.stdout.write("[")
    for number, (statement, result) in enumerate(results):
        sys.stdout.write(
            ("," if number else "") + "\n  " + output.to_json_result(statement, result)
        )
        sys.stdout.flush()
    sys.stdout.write("\n]\n")


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
    """Write ``result`` to stdout as ``table``, ``csv`` or ``json`` (see engines.output).

    A table never cuts a value (see cli.display).
    """
    from lakehouse.cli.display import print_table
    from lakehouse.engines import output

    if fmt == "csv":
        sys.stdout.write(output.to_csv(result))
    elif fmt == "json":
        sys.stdout.write(output.to_json(result))
    else:
        print_table(result.column_names, output.table_rows(result))
        out.print(f"{result.num_rows} row(s)", soft_wrap=True)


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many of the newest queries to show.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the queries, newest first.")
@click.option("--clear", is_flag=True, help="Forget every recorded query (a governed "
              "principal: its own).")  # fmt: skip
@click.option("--as", "principal", metavar="PRINCIPAL",
              help="As PRINCIPAL: with governance on, a principal other than the admin sees "
              "(and clears) only the queries it ran.")  # fmt: skip
@click.pass_context
@friendly_errors
def queries(ctx: click.Context, limit: int, as_json: bool, clear: bool,
            principal: str | None) -> None:  # fmt: skip
    """The query history: what `lakehouse query` and the console ran, newest first.

    Each query's start, principal, engine, seconds, rows (or the error) and its
    text; the newest 500 are kept in the lake house's home.
    """
    import json
    from dataclasses import asdict

    from lakehouse.cli.display import print_table
    from lakehouse.engines.history import QueryHistory, viewer_filter

    settings = settings_of(ctx)
    history = QueryHistory(settings)
    only = viewer_filter(settings, principal)
    if clear:
        out.print(f"forgot {history.clear(only)} queries")
        return
    entries = history.entries(limit, only)
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        out.print(f"no queries recorded yet in {history.path}", soft_wrap=True, markup=False)
        return
    rows = [
        [e.started.strftime("%Y-%m-%d %H:%M:%S"), e.principal or "unknown", e.engine,
         f"{e.seconds:.3f}",
         f"{e.rows:,}" if e.ok and e.rows is not None else "error: " + e.error.splitlines()[0],
         e.text + (" ... (cut)" if e.text_cut else "") + (f" [as of {e.as_of}]" if e.as_of else "")
         + (" [native]" if e.native else "")]
        for e in entries
    ]  # fmt: skip
    print_table(["started", "principal", "engine", "seconds", "rows", "query"], rows)
