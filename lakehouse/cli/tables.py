"""`lakehouse ingest`, `tables`, `describe` and `history`."""

from __future__ import annotations

import json

import click
from rich.table import Table as RichTable
from rich.text import Text

from lakehouse.cli.common import csv_list, err, friendly_errors, lake_of, out, settings_of


@click.command()
@click.argument("source")
@click.option("--table", "table_name", required=True, help="Target table, namespace.table.")
@click.option(
    "--mode",
    type=click.Choice(["append", "overwrite", "upsert"]),
    default="append",
    show_default=True,
)
@click.option("--key", help="Comma-separated key columns (upsert only).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "parquet"]),
    help="Default: from the extension.",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="COL=TYPE",
    help="Column type, e.g. amount=decimal(12,2) (repeatable); wins over inference.",
)
@click.option(
    "--schema",
    "schema",
    type=click.Path(dir_okay=False),
    help='JSON or TOML file of column to type, e.g. {"id": "long"}.',
)
@click.option("--delimiter", help="CSV delimiter (default: detected among , ; TAB |).")
@click.option("--quote", default='"', show_default=True, help="CSV quote character.")
@click.option(
    "--null",
    "nulls",
    multiple=True,
    metavar="TEXT",
    help="Extra CSV text that means NULL, e.g. NA (repeatable; empty cells always do).",
)
@click.option("--date-format", help="strptime format of CSV/JSON dates, e.g. %m/%d/%Y.")
@click.option("--timestamp-format", help="strptime format of timestamps, e.g. '%d.%m.%Y %H:%M'.")
@click.option(
    "--encoding", default="utf-8", show_default=True, help="Text encoding of CSV/JSON files."
)
@click.pass_context
@friendly_errors
def ingest(ctx: click.Context, source: str, table_name: str, mode: str, key: str | None,
           fmt: str | None, types: tuple[str, ...], schema: str | None, delimiter: str | None,
           quote: str, nulls: tuple[str, ...], date_format: str | None,
           timestamp_format: str | None, encoding: str) -> None:  # fmt: skip
    """Load a file, directory or s3:// URI into an Iceberg table in one commit."""
    from lakehouse.lake.column_types import parse_type_flags

    with lake_of(settings_of(ctx)) as lake:
        result = lake.ingest(
            source, table_name, mode=mode, key=csv_list(key), format=fmt,
            types=parse_type_flags(types), schema=schema, delimiter=_unescape(delimiter),
            quote=quote, nulls=nulls, date_format=date_format, timestamp_format=timestamp_format,
            encoding=encoding,
        )  # fmt: skip
    for notice in result.notices:
        err.print(f"Note: {notice}.", markup=False, highlight=False, soft_wrap=True)
    verb = "created" if result.created else "updated"
    extra = f", new columns: {', '.join(result.added_columns)}" if result.added_columns else ""
    if result.widened_columns:
        extra += f", widened columns: {', '.join(result.widened_columns)}"
    err.print(
        f"{verb} {result.table}: {result.mode} of {result.rows:,} rows, "
        f"snapshot {result.snapshot_id}{extra}",
        markup=False, highlight=False,
    )  # fmt: skip


def _unescape(delimiter: str | None) -> str | None:
    """``\\t`` or ``tab`` typed on a command line means a tab."""
    return "\t" if delimiter in ("\\t", "tab", "TAB") else delimiter


@click.command()
@click.argument("namespace", required=False)
@click.pass_context
@friendly_errors
def tables(ctx: click.Context, namespace: str | None) -> None:
    """List tables (of one namespace, or all)."""
    for name in lake_of(settings_of(ctx)).tables(namespace):
        click.echo(name)


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def describe(ctx: click.Context, name: str, as_json: bool) -> None:
    """Schema, partitioning, properties, location and row count of a table."""
    info = lake_of(settings_of(ctx)).describe(name)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    out.print(Text.assemble((info["name"], "bold"),
        f"  rows: {_rows(info['row_count'], info['row_count_method'])}  location: {info['location']}"))  # fmt: skip
    schema = RichTable("id", "column", "type", "required")
    for field in info["schema"]:
        schema.add_row(str(field["id"]), field["name"], field["type"], str(field["required"]))
    out.print(schema)
    out.print(f"partitioning: {', '.join(info['partitioning']) or 'none'}")
    out.print(f"snapshot: {info['current_snapshot_id']}  format version: {info['format_version']}")
    for key, value in sorted(info["properties"].items()):
        out.print(f"  {key} = {value}")


@click.command()
@click.argument("name")
@click.pass_context
@friendly_errors
def history(ctx: click.Context, name: str) -> None:
    """Snapshots of a table, oldest first (use their ids with query --as-of)."""
    table = RichTable("snapshot_id", "committed_at (UTC)", "operation", "added", "total rows")
    for snap in lake_of(settings_of(ctx)).history(name):
        table.add_row(str(snap.snapshot_id), snap.committed_at.isoformat(), snap.operation,
                      f"{snap.added_records:,}", _rows(snap.total_records, snap.count_method))  # fmt: skip
    out.print(table)
    out.print("total rows: what a reader sees, delete files applied (* counted from the files)")


def _rows(rows: int | None, method: str) -> str:
    """A row count, marked when it was counted rather than read from the summary."""
    from lakehouse.lake.counts import SUMMARY  # here, not at start-up: it imports pyiceberg

    if rows is None:
        return method
    return f"{rows:,}" if method == SUMMARY else f"{rows:,}*"
