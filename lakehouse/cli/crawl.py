"""`lakehouse crawl`, `lakehouse crawlers` and `lakehouse crawler show`.

``crawl`` exits 0 when every file was handled, 2 when the run was PARTIAL (some
files or tables failed: they are listed, the rest was registered) and 1 when
the crawl could not run at all.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from lakehouse.cli.common import err, friendly_errors, lake_of, out, settings_of
from lakehouse.cli.display import print_table

if TYPE_CHECKING:
    from lakehouse.crawl import CrawlReport
    from lakehouse.crawl.record import RunRow

PARTIAL_EXIT = 2


@click.command("crawl")
@click.argument("path", required=False, metavar="s3://BUCKET/PREFIX")
@click.option("--namespace", help="Namespace of the tables (default: the bucket's name).")
@click.option(
    "--name",
    help="A crawler declared in lakehouse.toml (then PATH may be left out), or the name "
    "this crawl is recorded under (default: from the path).",
)
@click.option("--json", "as_json", is_flag=True, help="The run's report as JSON.")
@click.pass_context
@friendly_errors
def crawl(ctx: click.Context, path: str | None, namespace: str | None, name: str | None,
          as_json: bool) -> None:  # fmt: skip
    """Register what lies under an s3:// prefix as Iceberg tables (only new files).

    One table per dataset folder; key=value folders become partitions; CSV, JSON and
    Parquet files, plain, gzip or zstd. Parquet is registered where it lies."""
    with lake_of(settings_of(ctx)) as lake:
        report = lake.crawl(path, namespace=namespace, name=name)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_report(report)
    if report.state != "SUCCEEDED":
        sys.exit(PARTIAL_EXIT)


def _print_report(report: CrawlReport) -> None:
    err.print(f"crawler {report.crawler}, run {report.run_id}: {report.state} in "
              f"{report.seconds:.1f} s, {report.files_seen:,} files under {report.path}",
              markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    print_table(["table", "created", "files added", "rows added", "new partitions",
                 "schema changes", "deleted at source"],
                [[t.table, "yes" if t.created else "no", f"{t.files_added:,}",
                  f"{t.rows_added:,}", _listed(t.new_partitions), _listed(t.schema_changes),
                  _listed(t.deleted_files)] for t in report.tables])  # fmt: skip
    for table in report.tables:
        for note in table.notes:
            err.print(
                f"Note: {table.table}: {note}.", markup=False, highlight=False, soft_wrap=True
            )
        if table.error:
            err.print(f"Table {table.table} failed: {table.error}", markup=False,
                      highlight=False, soft_wrap=True)  # fmt: skip
    if report.failures:
        err.print(f"{len(report.failures)} file(s) were not added:", markup=False)
        for failure in report.failures:
            err.print(f"  {failure.uri}: {failure.reason}", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip


def _listed(items: list[str], most: int = 3) -> str:
    if not items:
        return ""
    shown = ", ".join(items[:most])
    return shown + (f" (+{len(items) - most} more)" if len(items) > most else "")


@click.command("crawlers")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def crawlers(ctx: click.Context, as_json: bool) -> None:
    """List the crawlers (declared in lakehouse.toml and run ad hoc) with their last run."""
    from lakehouse.crawl.status import crawlers as all_crawlers

    states = all_crawlers(settings_of(ctx))
    if as_json:
        click.echo(json.dumps([{**s.spec.model_dump(), "declared": s.declared,
                                "next_run": s.next_run,
                                "last_run": _run_json(s.last_run) if s.last_run else None}
                               for s in states], indent=2, default=str))  # fmt: skip
        return
    print_table(["name", "path", "namespace", "schedule", "last run", "state", "next run"],
                [[s.spec.name, s.spec.path, s.spec.namespace or "(bucket)",
                  s.spec.schedule or ("" if s.declared else "ad hoc"),
                  s.last_run.started.isoformat(timespec="seconds") if s.last_run else "never",
                  s.last_run.state if s.last_run else "", s.next_run]
                 for s in states])  # fmt: skip


def _run_json(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id, "started": run.started.isoformat(),
        "finished": run.finished.isoformat() if run.finished else None, "state": run.state,
        "seconds": run.seconds, "error": run.error, "report": run.report,
    }  # fmt: skip


@click.group("crawler")
def crawler() -> None:
    """One crawler's runs."""


@crawler.command("show")
@click.argument("name")
@click.option("--limit", type=int, default=20, show_default=True, help="Most runs shown.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def show(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """The crawler's settings and its runs (newest first) with counts, time and errors."""
    from lakehouse.crawl.status import crawler_runs

    state, runs = crawler_runs(settings_of(ctx), name, limit)
    if as_json:
        click.echo(json.dumps({**state.spec.model_dump(), "declared": state.declared,
                               "runs": [_run_json(r) for r in runs]}, indent=2, default=str))  # fmt: skip
        return
    spec = state.spec
    out.print(f"{spec.name}: {spec.path} -> namespace {spec.namespace or '(bucket)'}, "
              f"schema_change={spec.schema_change}, deleted_files={spec.deleted_files}, "
              f"schedule={spec.schedule or 'none'}", markup=False, highlight=False,
              soft_wrap=True)  # fmt: skip
    print_table(["run", "started (UTC)", "seconds", "state", "tables", "files added",
                 "rows added", "failed files", "error"],
                [_run_row(r) for r in runs])  # fmt: skip
    for run in runs:
        for failure in (run.report or {}).get("failures", [])[:20]:
            out.print(f"  {run.id}: {failure['uri']}: {failure['reason'].splitlines()[0]}",
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip


def _run_row(run: RunRow) -> list[str]:
    report = run.report or {}
    return [
        run.id, run.started.isoformat(timespec="seconds"),
        f"{run.seconds:.1f}" if run.seconds is not None else "", run.state,
        str(len(report.get("tables", []))), f"{report.get('files_added', 0):,}",
        f"{report.get('rows_added', 0):,}", str(len(report.get("failures", []))),
        (run.error or "").splitlines()[0] if run.error else "",
    ]  # fmt: skip
