"""`lakehouse backup PATH` and `lakehouse restore PATH`: thin over :mod:`lakehouse.backup` and :mod:`lakehouse.restore`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from lakehouse.cli.common import err, friendly_errors, require_stack, settings_of


@contextmanager
def rich_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback drawing one bar per step on a terminal; silent otherwise."""
    from rich.progress import Progress, TaskID

    bars: dict[str, TaskID] = {}
    with Progress(console=err, disable=not err.is_terminal, transient=True) as progress:

        def report(step: str, done: int, total: int) -> None:
            if step not in bars:
                bars[step] = progress.add_task(step, total=total or None)
            progress.update(bars[step], completed=done)

        yield report


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
@friendly_errors
def backup(ctx: click.Context, path: Path) -> None:
    """Copy the catalog and every table file it references into PATH (a new directory)."""
    from lakehouse.backup import backup as run_backup

    settings = settings_of(ctx)
    require_stack(settings)
    with rich_progress() as report:
        summary = run_backup(settings, path.absolute(), report)
    click.echo(
        f"Backed up {summary.tables} table(s), {summary.objects} file(s), "
        f"{summary.bytes} bytes to {summary.path}"
    )


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--force", is_flag=True, help="Restore into a stack that has tables (same names are replaced)."
)
@click.pass_context
@friendly_errors
def restore(ctx: click.Context, path: Path, force: bool) -> None:
    """Restore the backup at PATH into this stack (S3 and catalog must be up)."""
    from lakehouse.restore import restore as run_restore

    settings = settings_of(ctx)
    require_stack(settings)
    with rich_progress() as report:
        summary = run_restore(settings, path.absolute(), force=force, progress=report)
    click.echo(f"Restored {summary.tables} table(s), {summary.objects} file(s) from {summary.path}")
