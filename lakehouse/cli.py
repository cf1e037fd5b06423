"""The `lakehouse` command: a thin layer of flags and formatting over the library."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table as RichTable

from lakehouse.cli_common import csv_list, friendly_errors, lake_of, settings_of
from lakehouse.cli_sync import simulate, sync
from lakehouse.config import Settings
from lakehouse.env import environment, shell_exports
from lakehouse.runtimes import ServiceStatus, get_runtime

if TYPE_CHECKING:
    import pyarrow as pa


out = Console()
err = Console(stderr=True)


@click.group()
@click.option(
    "--home", type=click.Path(), help="Lake house home (default: .lakehouse, or LAKEHOUSE_HOME)."
)
@click.option("--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="lakehouse-stack")
def main(home: str | None, verbose: bool) -> None:
    """An open-source lake house: S3, an Iceberg REST catalog and SQL engines."""


@main.command()
@click.option("--services", help="Comma-separated subset to start (dependencies are added).")
@click.option(
    "--runtime", type=click.Choice(["local", "docker"]), help="Default: LAKEHOUSE_RUNTIME or local."
)
@click.option(
    "--sample/--no-sample", default=True, help="Load the sample data if the tables are absent."
)
@click.option(
    "--scale", type=float, help="Sample data scale factor (default 1: ~1M clickstream events)."
)
@click.option("--trino-workers", type=int, help="Trino worker nodes besides the coordinator.")
@click.pass_context
@friendly_errors
def up(
    ctx: click.Context,
    services: str | None,
    runtime: str | None,
    sample: bool,
    scale: float | None,
    trino_workers: int | None,
) -> None:
    """Start the lake house (idempotent) and load the sample data."""
    settings = settings_of(ctx, runtime=runtime, sample_scale=scale, trino_workers=trino_workers)
    started = get_runtime(settings).up(csv_list(services))
    names = [svc.name for svc in started]
    if sample:
        _load_samples(settings, names, quiet=True)
    _print_status(get_runtime(settings).status())
    out.print('\nFirst query:  .venv/bin/lakehouse query "SELECT count(*) FROM retail.orders"')
    out.print('Other tools:  eval "$(.venv/bin/lakehouse env)"')


@main.command()
@click.option("--services", help="Comma-separated subset to stop (default: all).")
@click.pass_context
@friendly_errors
def down(ctx: click.Context, services: str | None) -> None:
    """Stop the services; data stays under the home directory."""
    stopped = get_runtime(settings_of(ctx)).down(csv_list(services))
    err.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Service, URL, health, PID and memory of each service."""
    rows = get_runtime(settings_of(ctx)).status()
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        _print_status(rows)
    # Services never started (e.g. after `up --services s3`) are not failures.
    if any(row.pid is not None and not row.healthy for row in rows):
        sys.exit(3)


def _load_samples(settings: Settings, services: list[str], quiet: bool) -> None:
    """The retail sample into the lake, and the shop sample into PostgreSQL."""
    from lakehouse.sample import load_sample, load_shop_sample

    loads = []
    with err.status("Loading sample data..."):
        if {"s3", "catalog"} <= set(services):
            with lake_of(settings) as lake:
                loads += load_sample(lake, scale=settings.sample_scale)
        if "postgres" in services:
            loads += load_shop_sample(settings, scale=settings.sample_scale)
    for load in loads:
        if load.loaded or not quiet:
            state = f"{load.rows:,} rows" if load.loaded else "already present"
            err.print(f"{load.table}: {state}")


def _print_status(rows: list[ServiceStatus]) -> None:
    table = RichTable("service", "url", "healthy", "pid", "memory")
    for row in rows:
        memory = f"{row.memory_mb:.0f} MiB" if row.memory_mb is not None else "-"
        health = "[green]yes[/]" if row.healthy else f"[red]no[/] ({row.detail})"
        table.add_row(row.name, row.url, health, str(row.pid or "-"), memory)
    out.print(table)


@main.command()
@click.argument("name")
@click.option("-n", "--lines", default=100, show_default=True, help="How many lines from the end.")
@click.pass_context
@friendly_errors
def logs(ctx: click.Context, name: str, lines: int) -> None:
    """Show the end of a service's log."""
    click.echo(get_runtime(settings_of(ctx)).logs(name, lines))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON object instead of shell exports.")
@click.pass_context
@friendly_errors
def env(ctx: click.Context, as_json: bool) -> None:
    """Print exports for aws-cli, boto3, pyiceberg and DuckDB: eval "$(lakehouse env)"."""
    variables = environment(settings_of(ctx))
    click.echo(json.dumps(variables, indent=2) if as_json else shell_exports(variables))


@main.command()
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


@main.command()
@click.argument("source")
@click.option("--table", "table_name", required=True, help="Target table, namespace.table.")
@click.option(
    "--mode",
    type=click.Choice(["append", "overwrite", "upsert"]),
    default="append",
    show_default=True,
)
@click.option("--key", help="Comma-separated key columns (required for upsert).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "parquet"]),
    help="Default: from the extension.",
)
@click.pass_context
@friendly_errors
def ingest(
    ctx: click.Context, source: str, table_name: str, mode: str, key: str | None, fmt: str | None
) -> None:
    """Load a file, directory or s3:// URI into an Iceberg table in one commit."""
    with lake_of(settings_of(ctx)) as lake:
        result = lake.ingest(source, table_name, mode=mode, key=csv_list(key), format=fmt)
    verb = "created" if result.created else "updated"
    extra = f", new columns: {', '.join(result.added_columns)}" if result.added_columns else ""
    err.print(
        f"{verb} {result.table}: {result.mode} of {result.rows:,} rows, snapshot {result.snapshot_id}{extra}"
    )


@main.command()
@click.argument("namespace", required=False)
@click.pass_context
@friendly_errors
def tables(ctx: click.Context, namespace: str | None) -> None:
    """List tables (of one namespace, or all)."""
    for name in lake_of(settings_of(ctx)).tables(namespace):
        click.echo(name)


@main.command()
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
    out.print(f"[bold]{info['name']}[/]  rows: {info['row_count']:,}  location: {info['location']}")
    schema = RichTable("id", "column", "type", "required")
    for field in info["schema"]:
        schema.add_row(str(field["id"]), field["name"], field["type"], str(field["required"]))
    out.print(schema)
    out.print(f"partitioning: {', '.join(info['partitioning']) or 'none'}")
    out.print(f"snapshot: {info['current_snapshot_id']}  format version: {info['format_version']}")
    for key, value in sorted(info["properties"].items()):
        out.print(f"  {key} = {value}")


@main.command()
@click.argument("name")
@click.pass_context
@friendly_errors
def history(ctx: click.Context, name: str) -> None:
    """Snapshots of a table, oldest first (use their ids with query --as-of)."""
    table = RichTable("snapshot_id", "committed_at (UTC)", "operation", "added", "total rows")
    for snap in lake_of(settings_of(ctx)).history(name):
        table.add_row(str(snap.snapshot_id), snap.committed_at.isoformat(), snap.operation,
                      f"{snap.added_records:,}", f"{snap.total_records:,}")  # fmt: skip
    out.print(table)


@main.group()
def spark() -> None:
    """Spark steps, the EMR way."""


@spark.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("job", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--quiet", is_flag=True, help="Do not echo the job's output; it is in the log either way."
)
@click.pass_context
@friendly_errors
def submit(ctx: click.Context, job: str, args: tuple[str, ...], quiet: bool) -> None:
    """Run a PySpark job with the lake configured, like an EMR step; exits with its status."""
    from pathlib import Path

    from lakehouse.engines.spark import submit as submit_job

    run = submit_job(settings_of(ctx), Path(job), list(args), echo=not quiet)
    state = "succeeded" if run.exit_code == 0 else f"failed (exit code {run.exit_code})"
    if run.exit_code != 0 and quiet:
        from lakehouse.runtimes.local import tail

        click.echo(tail(run.log, 30), err=True)
    err.print(f"spark job {run.job} {state} in {run.seconds:.1f} s; log: {run.log}")
    sys.exit(run.exit_code)


@main.command(
    "trino-cli", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@friendly_errors
def trino_cli(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Trino's own CLI against the lake house (catalog lake); extra ARGS go to it."""
    import os

    from lakehouse.services.trino import trino_cli_command

    command = trino_cli_command(settings_of(ctx), list(args))
    os.execv(command[0], command)


@main.command()
@click.option(
    "--scale", type=float, help="Sample data scale factor (default: sample_scale setting)."
)
@click.pass_context
@friendly_errors
def init(ctx: click.Context, scale: float | None) -> None:
    """Create the bucket, namespace and shop database, then load the samples (compose's init job)."""
    from lakehouse.services.catalog import CatalogService
    from lakehouse.services.postgres import PostgresService
    from lakehouse.services.s3 import S3Service

    settings = settings_of(ctx, sample_scale=scale)
    S3Service(settings).after_ready()
    CatalogService(settings).after_ready()
    PostgresService(settings).after_ready()
    _load_samples(settings, ["s3", "catalog", "postgres"], quiet=False)


@main.group()
def compose() -> None:
    """The docker runtime's compose.yaml."""


@compose.command()
@click.option("--check", is_flag=True, help="Fail if compose.yaml differs from a fresh rendering.")
@click.option("--output", type=click.Path(), default="compose.yaml", show_default=True)
@click.pass_context
@friendly_errors
def render(ctx: click.Context, check: bool, output: str) -> None:
    """Write compose.yaml (and Trino's compose configs) from the service specs."""
    from pathlib import Path

    from lakehouse.runtimes.compose import write_files

    changed = write_files(settings_of(ctx), Path(output), dry_run=check)
    if check and changed:
        click.echo(
            f"Out of date: {', '.join(map(str, changed))}. Run `lakehouse compose render`.",
            err=True,
        )
        sys.exit(1)
    click.echo("up to date" if not changed else f"wrote {', '.join(map(str, changed))}")


@main.command("load-sample")
@click.option("--scale", type=float, help="Scale factor (default: sample_scale setting).")
@click.option("--force", is_flag=True, help="Overwrite the sample tables even if they exist.")
@click.pass_context
@friendly_errors
def load_sample_command(ctx: click.Context, scale: float | None, force: bool) -> None:
    """Generate and load the deterministic retail sample."""
    from lakehouse.sample import load_sample

    settings = settings_of(ctx, sample_scale=scale)
    with lake_of(settings) as lake:
        for load in load_sample(lake, scale=settings.sample_scale, force=force):
            state = f"{load.rows:,} rows" if load.loaded else "already present"
            click.echo(f"{load.table}: {state}")
    from lakehouse.services.postgres import PostgresService

    if PostgresService(settings).health().ok:
        from lakehouse.sample import load_shop_sample

        for load in load_shop_sample(settings, scale=settings.sample_scale):
            state = f"{load.rows:,} rows" if load.loaded else "already present"
            click.echo(f"{load.table}: {state}")


main.add_command(sync)
main.add_command(simulate)

if __name__ == "__main__":
    main()
