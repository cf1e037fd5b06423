"""`lakehouse sync ...` and `lakehouse simulate ...`: flags and formatting only."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from lakehouse.cli.common import err, friendly_errors, settings_of
from lakehouse.cli.display import print_table
from lakehouse.errors import ConfigError, ServiceUnavailableError

if TYPE_CHECKING:
    from lakehouse.simulate import SimulationStats


@click.group()
def sync() -> None:
    """Zero-ETL integrations: PostgreSQL and Iceberg kept in sync with Iceberg and OpenSearch."""


@sync.command("create")
@click.argument("name")
@click.option("--source", type=click.Choice(["postgres", "iceberg"]), required=True)
@click.option("--target", type=click.Choice(["iceberg", "opensearch"]), required=True)
@click.option("--tables", required=True, help="Comma-separated: PostgreSQL tables, or ns.table.")
@click.option("--key", help="Comma-separated key columns (default: the primary key).")
@click.option("--database", help="PostgreSQL database (postgres sources; default: postgres_db).")
@click.option("--namespace", help="Iceberg namespace (iceberg targets; default: the database).")
@click.option(
    "--index-prefix", help="Index name prefix (opensearch targets; default '<database>-')."
)
@click.option(
    "--batch-seconds", type=float,
    help="How often changes are committed (default: settings' sync_poll_seconds).",
)  # fmt: skip
@click.pass_context
@friendly_errors
def create(ctx: click.Context, name: str, tables: str, key: str | None, **options: Any) -> None:
    """Declare an integration (stored in the lake house's home)."""
    from pydantic import ValidationError

    from lakehouse.sync.admin import create_integration
    from lakehouse.sync.integrations import Integration, validation_hint, validation_sentences

    given = {k: v for k, v in options.items() if v is not None}
    try:
        integration = Integration(
            name=name, tables=_listed(tables, "--tables", "table"),
            key=_listed(key, "--key", "column"), **given,
        )  # fmt: skip
    except ValidationError as exc:
        raise ConfigError(
            f"Invalid integration: {validation_sentences(exc, flags=True)} Nothing was created.",
            hint=validation_hint(exc, "See `lakehouse sync create --help`."),
        ) from None
    if create_integration(_admin_only(ctx, "create"), integration, flags=True):
        click.echo(f"created {name}: {integration.source} -> {integration.target}")
    else:
        click.echo(f"{name} already exists with these settings; nothing changed")


def _listed(value: str | None, option: str, what: str) -> tuple[str, ...]:
    """A comma-separated option's names; ConfigError when it names none (``--key ,``
    meant the primary key) or holds an empty one (``orders,,items``)."""
    if value is None:
        return ()
    names = tuple(name.strip() for name in value.split(","))
    if not any(names):
        raise ConfigError(f"Invalid integration: {option} names no {what}. Nothing was created.",
                          hint=f"Name one or more, comma-separated ({option} a,b)"
                          + (", or leave --key out for the primary key." if option == "--key"
                             else "."))  # fmt: skip
    if not all(names):
        raise ConfigError(
            f"Invalid integration: {option} holds an empty {what} name in {value!r}. "
            "Nothing was created.", hint=f"Name each {what}, comma-separated, with no empty item.",
        )  # fmt: skip
    return names


@sync.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the integrations.")
@click.pass_context
@friendly_errors
def list_integrations(ctx: click.Context, as_json: bool) -> None:
    """The declared integrations: name, route and tables, tab-separated (a governed
    principal sees those whose lake tables it may see, as on the console)."""
    from lakehouse.client import Lakehouse
    from lakehouse.sync.status import governed_integrations

    shown, hidden = governed_integrations(Lakehouse(settings_of(ctx)))
    integrations = sorted(shown.items())
    if as_json:
        click.echo(json.dumps([i.model_dump(mode="json") for _, i in integrations], indent=2))
        return
    for name, i in integrations:
        click.echo(f"{name}\t{_route(i)}\t{','.join(i.tables)}")
    _say_hidden(hidden)


@sync.command("run")
@click.argument("names", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Every declared integration.")
@click.option("--follow", is_flag=True, help="Keep running, applying changes as they commit.")
@click.pass_context
@friendly_errors
def run(ctx: click.Context, names: tuple[str, ...], run_all: bool, follow: bool) -> None:
    """Bring integrations up to date once, or follow them (--follow)."""
    from lakehouse.sync.integrations import IntegrationStore

    settings = _admin_only(ctx, "run")
    store = IntegrationStore(settings)
    if names and run_all:  # `run it --all` ran it only; with --follow, every integration
        raise ConfigError(f"Name integrations ({' '.join(names)}) or pass --all, not both.",
                          hint="Leave out --all to run those named, or the names for all.")  # fmt: skip
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"{', '.join(twice)} is named more than once.",
                          hint="Name each integration once.")  # fmt: skip
    for name in names:
        store.get(name)  # unknown names fail before anything runs
    if follow:
        _follow(settings, list(names) if names and not run_all else None)
        return
    if not names and not run_all:
        raise ConfigError("Name the integrations to run, or pass --all.",
                          hint=f"Known: {', '.join(sorted(store.all())) or 'none'}.")  # fmt: skip
    _run_once(settings, list(names) or sorted(store.all()))


def _run_once(settings: Any, names: list[str]) -> None:
    from lakehouse.client import Lakehouse

    lake = Lakehouse(settings)  # its sync() names a service that is down
    for name in names:
        started = time.monotonic()
        result = lake.sync(name)
        click.echo(
            f"{name}: {result.snapshot_rows:,} snapshot rows, {result.changes:,} changes, "
            f"{result.dead_letters} dead letters in {time.monotonic() - started:.1f} s; "
            f"position {result.position or '-'}"
        )


def _follow(settings: Any, names: list[str] | None) -> None:
    from lakehouse.sync.runner import follow

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    err.print(f"following {', '.join(names) if names else 'every integration'}; Ctrl-C stops")
    follow(settings, names, stop)


@sync.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Per integration: state, position, lag, rows per second, last error (a governed
    principal sees what the console's Zero-ETL page shows it)."""
    from lakehouse.client import Lakehouse
    from lakehouse.sync.status import governed_status_rows

    shown = governed_status_rows(Lakehouse(settings_of(ctx)))
    if as_json:
        click.echo(json.dumps(shown.rows, indent=2))
        return
    headers = ["integration", "route", "state", "position", "lag", "rows/s", "applied", "dead",
               "last error"]  # fmt: skip
    print_table(headers, [_status_cells(r) for r in shown.rows])
    _say_hidden(shown.hidden)


def _admin_only(ctx: click.Context, command: str) -> Any:
    """The settings, when the acting principal may run `sync COMMAND`: integrations
    read and write with the stack's own keys (a governed principal could copy a table
    it may not read into OpenSearch, or drop targets), so with governance on they are
    the admin's. AccessDeniedError (audited) for a governed principal."""
    from lakehouse.client import Lakehouse
    from lakehouse.errors import AccessDeniedError

    settings = settings_of(ctx)
    lake = Lakehouse(settings)
    if not lake.governed():
        return settings
    from lakehouse.governance.audit import record

    why = (f"{lake.principal} may not run `lakehouse sync {command}`: an integration reads "
           "and writes with the stack's own keys, past the policy.")  # fmt: skip
    record(settings, lake.principal, "library", "Zero-ETL", (), (), False, None,
           action=f"SYNC_{command.upper()}", reason=why)  # fmt: skip
    raise AccessDeniedError(lake.principal, f"sync {command}", "Zero-ETL", message=why, hint=(
        "Zero-ETL integrations are the governance admin's: run this as the admin (unset "
        "LAKEHOUSE_PRINCIPAL). `lakehouse sync status` shows you the integrations over "
        "tables you may see."))  # fmt: skip


def _say_hidden(hidden: int) -> None:
    """A line on stderr for the integrations the principal may not see (not named)."""
    if hidden:
        err.print(f"{hidden} integration(s) not shown: they read or write lake tables you may "
                  "not see (`lakehouse grants --principal NAME` lists your grants).")  # fmt: skip


def _status_cells(r: dict[str, Any]) -> list[str]:
    """One `sync status` row as text; the last error whole, never shortened."""
    if r["lag_seconds"] is not None:
        lag = f"{r['lag_seconds']:.1f} s"
    else:  # a failing pass that could not see what waits: unknown, never 0
        lag = "unknown" if r["shown_state"] in ("retrying", "waiting", "failed") else "-"
    return [r["name"], r["route"], r["shown_state"], r["position"] or "-", lag,
            f"{r['rows_per_second']:,.0f}", f"{r['changes_applied']:,}",
            str(r["dead_letters"]), r["last_error"] or "-"]  # fmt: skip


def _route(integration: Any) -> str:
    from lakehouse.sync.status import route

    return route(integration)


@sync.command("verify")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def verify(ctx: click.Context, name: str, as_json: bool) -> None:
    """Compare source and target row for row (key and content hash); exit 1 on a difference.

    Names the first missing, extra and differing keys, each differing key with the
    columns whose values differ.
    """
    from lakehouse.client import Lakehouse

    reports = Lakehouse(_admin_only(ctx, "verify")).verify_sync(
        name
    )  # names a service that is down
    if as_json:
        click.echo(json.dumps([asdict(r) | {"ok": r.ok} for r in reports], indent=2))
    for r in [] if as_json else reports:
        verdict = "equal" if r.ok else (
            f"{len(r.missing)} missing, {len(r.extra)} extra, {len(r.different)} different, "
            f"{r.duplicates} duplicated"
        )  # fmt: skip
        if r.stale:
            verdict += f", {len(r.stale)} stale"
        if r.source_duplicates:  # a key that is not unique: the target keeps one per key
            verdict += f", {r.source_duplicates} source rows repeat a key"
        if r.rejected:
            verdict += f" ({len(r.rejected)} source rows dead-lettered)"
        click.echo(
            f"{r.table} -> {r.target}: {r.source_rows:,} / {r.target_rows:,} rows, {verdict}"
        )
        for label, keys in (("missing", r.missing), ("extra", r.extra),
                            ("stale (dead-lettered in the source)", r.stale)):  # fmt: skip
            if keys:
                click.echo(f"  {label}: {_first_keys(keys)}")
        if r.different:
            click.echo(f"  different: {_first_keys(r.different)}")
        for key, columns in r.differing_columns.items():
            click.echo(f"    key {key}: {', '.join(columns) or '(row shape)'} differ")
    sys.exit(0 if all(r.ok for r in reports) else 1)


def _first_keys(keys: list[str], shown: int = 10) -> str:
    return ", ".join(keys[:shown]) + (
        f" ... ({len(keys) - shown} more)" if len(keys) > shown else ""
    )


@sync.command("reset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@friendly_errors
def reset(ctx: click.Context, name: str, yes: bool) -> None:
    """Start an integration over: drop its targets and source position, then snapshot again."""
    from lakehouse.sync.admin import reset_integration

    settings = _admin_only(ctx, "reset")
    if not yes:
        click.confirm(f"Drop the target tables/indices of {name} and sync them again?", abort=True)
    for line in reset_integration(settings, name):
        click.echo(line)


@sync.command("delete")
@click.argument("name")
@click.option("--drop-targets", is_flag=True, help="Drop its target tables / indices too.")
@click.pass_context
@friendly_errors
def delete(ctx: click.Context, name: str, drop_targets: bool) -> None:
    """Remove an integration and all its state (replication slot, publication,
    positions, status); its targets are kept unless --drop-targets."""
    from lakehouse.sync.admin import delete_integration

    for line in delete_integration(_admin_only(ctx, "delete"), name, drop_targets=drop_targets):
        click.echo(line)


@click.group()
def simulate() -> None:
    """Traffic generators for watching the syncs work."""


@simulate.command("shop")
@click.option(
    "--rate", type=float, default=100.0, show_default=True, help="Row changes per second."
)
@click.option("--duration", type=float, help="Seconds to run (default: until Ctrl-C).")
@click.option("--seed", type=int, help="Random seed (default: random).")
@click.pass_context
@friendly_errors
def simulate_shop(
    ctx: click.Context, rate: float, duration: float | None, seed: int | None
) -> None:
    """Write realistic inserts, updates and deletes to the shop database."""
    from lakehouse.simulate import ShopSimulator, SimulationStats

    _check_pace(rate, duration)
    settings = settings_of(ctx)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    err.print(f"simulating shop traffic at {rate:,.0f} changes/s; Ctrl-C stops")
    started = time.monotonic()
    try:
        stats = ShopSimulator(settings.postgres_dsn(), rate, seed=seed).run(
            duration=duration, stop=stop, notice=err.print
        )
    except ServiceUnavailableError:
        # PostgreSQL was down from the start: the summary says nothing was written.
        click.echo(_shop_summary(SimulationStats(0, 0, 0, 0, 0, time.monotonic() - started, 0.0)))
        raise
    click.echo(_shop_summary(stats))
    if stats.gave_up:
        click.echo(f"Error: stopped early: {stats.gave_up}.\nHint: Check `lakehouse status` and "
                   "`lakehouse logs postgres`, then run the simulator again.", err=True)  # fmt: skip
        sys.exit(1)
    sys.exit(0)


def _check_pace(rate: float, duration: float | None) -> None:
    """ConfigError for a rate or duration the simulator cannot keep (0 or nan: a raw
    ValueError; inf: an OverflowError mid-run; a duration of 0 or less ran nothing)."""
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"--rate must be a finite number of changes per second above 0; "
                          f"got {rate:g}.", hint="For example --rate 200.")  # fmt: skip
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ConfigError(f"--duration must be a finite number of seconds above 0; got "
                          f"{duration:g}.", hint="Leave it out to run until Ctrl-C.")  # fmt: skip


def _shop_summary(stats: SimulationStats) -> str:
    return (
        f"{stats.changes:,} changes ({stats.inserts:,} inserts, {stats.updates:,} updates, "
        f"{stats.deletes:,} deletes) in {stats.transactions:,} transactions over "
        f"{stats.elapsed:.1f} s: {stats.achieved_rate:,.0f} changes/s"
    )
