"""`lakehouse up`, `down`, `status`, `logs`, `env`, `init`, `load-sample` and `compose`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from lakehouse.cli.common import (
    csv_list,
    err,
    friendly_errors,
    lake_of,
    out,
    require_stack,
    settings_of,
)

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.runtimes import ServiceStatus


@click.command()
@click.option("--services", help="Comma-separated subset to start (dependencies are added).")
@click.option(
    "--with",
    "with_",
    help="Comma-separated optional services (dashboards, jupyter) to start besides the default ones.",
)
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
@click.option(
    "--governance-demo",
    is_flag=True,
    help="Load the governed demo scenario (lakehouse governance demo).",
)
@click.pass_context
@friendly_errors
def up(
    ctx: click.Context,
    services: str | None,
    with_: str | None,
    runtime: str | None,
    sample: bool,
    scale: float | None,
    trino_workers: int | None,
    governance_demo: bool,
) -> None:
    """Start the lake house (idempotent) and load the sample data."""
    from lakehouse.runtimes import get_runtime

    settings = settings_of(ctx, runtime=runtime, sample_scale=scale, trino_workers=trino_workers)
    err.print(f"home: {settings.home_dir}")
    started = get_runtime(settings).up(_names_to_start(settings, services, with_))
    names = [svc.name for svc in started]
    if sample:
        _load_samples(settings, names, quiet=True)
    from lakehouse.cli.governance import at_up  # the declared policy, the demo, the audit spool

    at_up(settings, names, governance_demo)
    rows = get_runtime(settings).status()
    _print_status(rows)
    _print_pages(settings, rows)
    if sample and {"s3", "catalog"} <= set(names):
        out.print('\nFirst query:  .venv/bin/lakehouse query "SELECT count(*) FROM retail.orders"')
    out.print('Other tools:  eval "$(.venv/bin/lakehouse env)"')


@click.command()
@click.option("--services", help="Comma-separated subset to stop (default: all).")
@click.pass_context
@friendly_errors
def down(ctx: click.Context, services: str | None) -> None:
    """Stop the services; data stays under the home directory."""
    from lakehouse.runtimes import get_runtime

    stopped = get_runtime(settings_of(ctx)).down(csv_list(services))
    err.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Service, URL, health, PID and memory of each service (of the project's stack)."""
    from lakehouse.runtimes import get_runtime

    settings = settings_of(ctx)
    require_stack(settings)
    rows = get_runtime(settings).status()
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        from lakehouse.cli.maintain import print_last_runs

        _print_status(rows)
        _print_pages(settings, rows)
        print_last_runs(settings)
    # Services never started (e.g. after `up --services s3`) are not failures; one
    # started and then killed is.
    if any(row.started and not row.healthy for row in rows):
        sys.exit(3)


def _names_to_start(
    settings: Settings, services: str | None, with_: str | None
) -> list[str] | None:
    """``--services`` as given, else the defaults; ``--with`` adds optional ones."""
    from lakehouse.services import default_service_names

    named, extra = csv_list(services), csv_list(with_) or []
    if not extra:
        return named
    return [*(named or default_service_names(settings)), *extra]


def _load_samples(settings: Settings, services: list[str], quiet: bool) -> None:
    """The retail sample into the lake, and the shop sample into PostgreSQL."""
    from lakehouse.sample import load_landing, load_sample, load_shop_sample

    loads = []
    with err.status("Loading sample data..."):
        if {"s3", "catalog"} <= set(services):
            with lake_of(settings) as lake:
                loads += load_sample(lake, scale=settings.sample_scale)
            loads.append(load_landing(settings))  # raw clickstream in s3://landing, crawled
        if "postgres" in services:
            loads += load_shop_sample(settings, scale=settings.sample_scale)
    for load in loads:
        if load.loaded or not quiet:
            state = f"{load.rows:,} rows" if load.loaded else "already present"
            err.print(f"{load.table}: {state}")


def _print_status(rows: list[ServiceStatus]) -> None:
    from rich.text import Text

    from lakehouse.cli.display import print_table

    cells: list[list[str | Text]] = []
    for row in rows:
        memory = f"{row.memory_mb:.0f} MiB" if row.memory_mb is not None else "-"
        health = (
            Text("yes", "green")
            if row.healthy
            else Text.assemble(("no", "red"), f" ({row.detail})")
        )
        cells.append([row.name, row.url, health, str(row.pid or "-"), memory])
    print_table(["service", "url", "healthy", "pid", "memory"], cells)  # never cuts a URL


def _print_pages(settings: Settings, rows: list[ServiceStatus]) -> None:
    """The web pages (console, dashboards, JupyterLab): URL and sign-in, or the
    command that starts a page that is not running."""
    from lakehouse.services.pages import web_pages

    pages = web_pages(settings, rows)
    if not pages:
        return
    out.print("\nWeb pages:")
    width = max(len(page.label) for page in pages)
    for page in pages:
        if page.running:
            sign_in = f"  ({page.sign_in})" if page.sign_in else ""
            line = f"{page.url}{sign_in}"
        else:
            line = f"not running; start it with `{page.start_command}`"
        out.print(f"  {page.label:<{width}}  {line}", soft_wrap=True, highlight=False, markup=False)


@click.command()
@click.argument("name")
@click.option("-n", "--lines", default=100, show_default=True, help="How many lines from the end.")
@click.pass_context
@friendly_errors
def logs(ctx: click.Context, name: str, lines: int) -> None:
    """Show the end of a service's log.

    That is the service's own rotating log when it keeps one (PostgreSQL, the
    sync worker); start-up output and crashes are in <home>/logs/NAME.log.
    """
    from lakehouse.runtimes import get_runtime

    settings = settings_of(ctx)
    require_stack(settings)
    click.echo(get_runtime(settings).logs(name, lines))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON object instead of shell exports.")
@click.option("--as", "principal", metavar="PRINCIPAL",
              help="Run as PRINCIPAL in that shell (exports LAKEHOUSE_PRINCIPAL; governance).")  # fmt: skip
@click.pass_context
@friendly_errors
def env(ctx: click.Context, as_json: bool, principal: str | None) -> None:
    """Print exports for the lake's tools: eval "$(lakehouse env)".

    Endpoints and credentials for aws-cli, boto3, pyiceberg, Spark and libpq, and
    PATH with this install's tools (lakehouse, aws, pyiceberg) and the bundled
    PostgreSQL clients (psql, pg_dump). LAKEHOUSE_HOME is exported only when
    that home exists; otherwise stderr says where the search looked.
    """
    from lakehouse.env import environment, shell_exports

    settings = settings_of(ctx)
    variables = environment(settings, principal)
    if "LAKEHOUSE_HOME" not in variables:
        from lakehouse.home import home_origin

        given = bool(ctx.find_root().params.get("home"))
        click.echo(
            f"# No lake house at {settings.home_dir} ({home_origin(settings.home_dir, given)}),"
            " so LAKEHOUSE_HOME is not exported. Hint: start one with `lakehouse up`.",
            err=True,
        )
    click.echo(json.dumps(variables, indent=2) if as_json else shell_exports(variables))


@click.command()
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


@click.group()
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


@click.command("load-sample")
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

        for load in load_shop_sample(settings, scale=settings.sample_scale, declare_again=True):
            state = f"{load.rows:,} rows" if load.loaded else "already present"
            click.echo(f"{load.table}: {state}")
