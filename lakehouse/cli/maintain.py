"""`lakehouse optimize`, `expire-snapshots`, `remove-orphan-files` and `maintenance`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from lakehouse.cli.common import err, friendly_errors, lake_of, out, settings_of
from lakehouse.cli.display import print_table

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.lake.maintenance import MaintenanceReport

# Exit code of a command whose commit kept conflicting with other writers: nothing
# changed, try again later (an error is 1).
EXIT_SKIPPED = 2


def _show(report: MaintenanceReport, as_json: bool) -> None:
    """The report on stdout (JSON, or one readable block); exit 2 when skipped."""
    from lakehouse.lake.maintenance import one_line

    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        out.print(f"{report.action} {report.table}: {one_line(report)}",
                  soft_wrap=True, markup=False, highlight=False)  # fmt: skip
        for problem in report.details.get("not_deleted", []):
            err.print(f"Note: not deleted (left for the next run): {problem}", markup=False)
    if report.skipped:
        sys.exit(EXIT_SKIPPED)


@click.command()
@click.argument("table")
@click.option("--target-file-size", metavar="SIZE",
              help="Compact files under this size into files of about it, e.g. 128MB "
              "(default: the table's write.target-file-size-bytes, else 512MB).")  # fmt: skip
@click.option("--where", metavar="PREDICATE",
              help="Only partitions matching this predicate on partition columns, e.g. "
              "\"dt >= DATE '2026-11-01'\".")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
@friendly_errors
def optimize(ctx: click.Context, table: str, target_file_size: str | None, where: str | None,
             as_json: bool) -> None:  # fmt: skip
    """Compact TABLE's small data files (bin-packing; sorted by the table's sort order
    when it has one) on Trino. Rows do not change. Exit 2: skipped after conflicts."""
    with lake_of(settings_of(ctx)) as lake:
        _show(lake.optimize(table, target_file_size=target_file_size, where=where), as_json)


@click.command("expire-snapshots")
@click.argument("table")
@click.option("--older-than", default="5d", show_default=True, metavar="AGE",
              help="Expire snapshots older than this: 90m, 36h, 7d.")  # fmt: skip
@click.option("--retain-last", default=1, show_default=True, type=int, metavar="N",
              help="Keep at least the newest N snapshots whatever their age.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
@friendly_errors
def expire_snapshots(ctx: click.Context, table: str, older_than: str, retain_last: int,
                     as_json: bool) -> None:  # fmt: skip
    """Expire TABLE's old snapshots and delete the files only they reached
    (time travel to them ends). Exit 2: skipped after conflicts."""
    with lake_of(settings_of(ctx)) as lake:
        _show(lake.expire_snapshots(table, older_than=older_than, retain_last=retain_last), as_json)


@click.command("remove-orphan-files")
@click.argument("table")
@click.option("--older-than", default="3d", show_default=True, metavar="AGE",
              help="Only files at least this old (not under maintenance_orphan_floor_seconds).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
@friendly_errors
def remove_orphan_files(ctx: click.Context, table: str, older_than: str, as_json: bool) -> None:
    """Delete files under TABLE's location that no snapshot references."""
    with lake_of(settings_of(ctx)) as lake:
        _show(lake.remove_orphan_files(table, older_than=older_than), as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def maintenance(ctx: click.Context, as_json: bool) -> None:
    """The [maintenance] policies of lakehouse.toml and the last run of each job."""
    from lakehouse.lake import maintenance_policy as policies

    settings = settings_of(ctx)
    entries = policies.declared()
    runs = policies.last_runs(settings)
    if as_json:
        shown = {
            scope: policies.parse_policy(scope, keys).__dict__ for scope, keys in entries.items()
        }
        click.echo(json.dumps({"policies": shown, "last_runs": runs}, indent=2, default=str))
        return
    if not entries:
        err.print("No [maintenance] policies in lakehouse.toml (see README: Table maintenance).")
    for scope, keys in entries.items():
        jobs = policies.parse_policy(scope, keys).jobs()
        out.print(f"policy {scope}: {', '.join(jobs) or 'no job on'}", markup=False)
    rows = last_run_rows(settings)
    if rows:
        print_table(["table", "job", "finished", "result"], rows)


def last_run_rows(settings: Settings) -> list[list[str]]:
    """[table, job, 'N min ago', result] of every recorded run, newest first."""
    from lakehouse.lake.maintenance_policy import recorded_runs

    return [[run.table, run.job, run.ago, ("" if run.ok else "FAILED ") + run.summary]
            for run in recorded_runs(settings)]  # fmt: skip


COMMANDS: tuple[Any, ...] = (optimize, expire_snapshots, remove_orphan_files, maintenance)


def print_last_runs(settings: Settings, limit: int = 10) -> None:
    """`lakehouse status`'s section: the newest ``limit`` maintenance runs, if any."""
    from lakehouse.scheduler import step_errors

    for step, error in step_errors(settings).items():
        out.print(f"\nScheduler: its {step} step failed in its last tick: {error}",
                  soft_wrap=True, markup=False, highlight=False)  # fmt: skip
    rows = last_run_rows(settings)
    if not rows:
        return
    out.print("\nMaintenance (last runs; `lakehouse maintenance` lists all):")
    for table, job, ago, result in rows[:limit]:
        out.print(f"  {table}  {job}  {ago}  {result}", soft_wrap=True, markup=False,
                  highlight=False)  # fmt: skip
