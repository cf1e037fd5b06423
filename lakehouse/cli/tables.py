"""`lakehouse ingest`, `tables`, `describe` and `history`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from lakehouse.cli.common import csv_list, err, friendly_errors, lake_of, out, settings_of
from lakehouse.cli.display import print_table

if TYPE_CHECKING:
    from rich.text import Text

    from lakehouse.lake.catalog import SnapshotInfo


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
@click.option(
    "--as", "principal", metavar="PRINCIPAL",
    help="Write as PRINCIPAL: with governance on it needs INSERT (DELETE too to overwrite "
    "or upsert, CREATE_TABLE for a new table); default: LAKEHOUSE_PRINCIPAL, else the admin.",
)  # fmt: skip
@click.pass_context
@friendly_errors
def ingest(ctx: click.Context, source: str, table_name: str, mode: str, key: str | None,
           fmt: str | None, types: tuple[str, ...], schema: str | None, delimiter: str | None,
           quote: str, nulls: tuple[str, ...], date_format: str | None,
           timestamp_format: str | None, encoding: str, principal: str | None) -> None:  # fmt: skip
    """Load a file, directory or s3:// URI into an Iceberg table in one commit."""
    from lakehouse.lake.column_types import parse_type_flags

    with lake_of(settings_of(ctx)) as lake:
        result = lake.ingest(
            source, table_name, mode=mode, key=csv_list(key), format=fmt,
            types=parse_type_flags(types), schema=schema, delimiter=_unescape(delimiter),
            quote=quote, nulls=nulls, date_format=date_format, timestamp_format=timestamp_format,
            encoding=encoding, principal=principal,
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
@click.option("--json", "as_json", is_flag=True, help="A JSON array of names.")
@click.pass_context
@friendly_errors
def tables(ctx: click.Context, namespace: str | None, as_json: bool) -> None:
    """List tables (of one namespace, or all), one namespace.table per line."""
    names = lake_of(settings_of(ctx)).tables(namespace)
    if as_json:
        click.echo(json.dumps(names, indent=2, ensure_ascii=False))
        return
    for name in names:
        click.echo(name)


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def describe(ctx: click.Context, name: str, as_json: bool) -> None:
    """Schema, partitioning, properties, location and row count of a table."""
    from rich.text import Text

    info = lake_of(settings_of(ctx)).describe(name)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str, ensure_ascii=False))
        return
    rows = _rows(info["row_count"], info["row_count_method"])
    _line(Text.assemble((info["name"], "bold"), f"  rows: {rows}  location: {info['location']}"))
    print_table(["id", "column", "type", "required"],
                [[str(f["id"]), f["name"], f["type"], "yes" if f["required"] else "no"]
                 for f in info["schema"]])  # fmt: skip
    _line(f"partitioning: {', '.join(info['partitioning']) or 'none'}")
    _line(f"snapshot: {info['current_snapshot_id']}  format version: {info['format_version']}")
    for key, value in sorted(info["properties"].items()):
        _line(f"  {key} = {value}")


def _line(text: str | Text) -> None:
    """One line, never wrapped or cut by rich (the terminal wraps it if it must)."""
    out.print(text, soft_wrap=True)


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of snapshots, oldest first.")
@click.pass_context
@friendly_errors
def history(ctx: click.Context, name: str, as_json: bool) -> None:
    """Snapshots of a table, oldest first (use their ids with query --as-of)."""
    snapshots = lake_of(settings_of(ctx)).history(name)
    if as_json:
        click.echo(json.dumps([_snapshot_json(s) for s in snapshots], indent=2))
        return
    print_table(["snapshot_id", "committed_at (UTC)", "operation", "added", "total rows"],
                [[str(s.snapshot_id), s.committed_at.isoformat(), s.operation,
                  "hidden" if s.added_records is None else f"{s.added_records:,}",
                  _rows(s.total_records, s.count_method)]
                 for s in snapshots])  # fmt: skip
    _line("total rows: what a reader sees, delete files applied (* counted from the files)")
    from lakehouse.governance.table_view import HIDDEN

    if any(s.count_method == HIDDEN for s in snapshots):
        _line(f"rows {HIDDEN}: counts over every row would tell how many are hidden")


def _snapshot_json(snap: SnapshotInfo) -> dict[str, Any]:
    """A snapshot for scripts: ``committed_at`` ISO 8601 in UTC, counts as numbers."""
    return {
        "snapshot_id": snap.snapshot_id, "parent_id": snap.parent_id,
        "committed_at": snap.committed_at.isoformat(), "operation": snap.operation,
        "added_records": snap.added_records, "total_records": snap.total_records,
        "stored_records": snap.stored_records, "count_method": snap.count_method,
    }  # fmt: skip


def _rows(rows: int | None, method: str) -> str:
    """A row count, marked when it was counted rather than read from the summary."""
    from lakehouse.governance.table_view import HIDDEN
    from lakehouse.lake.counts import SUMMARY  # here, not at start-up: it imports pyiceberg

    if rows is None:
        return "hidden" if method == HIDDEN else method
    return f"{rows:,}" if method == SUMMARY else f"{rows:,}*"
