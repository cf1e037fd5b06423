"""`lakehouse spark submit` and `lakehouse trino-cli`."""

from __future__ import annotations

import sys

import click

from lakehouse.cli.common import err, friendly_errors, settings_of


@click.group()
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
    message = f"spark job {run.job} {state} in {run.seconds:.1f} s; Spark's full log: {run.log}"
    err.print(message, soft_wrap=True)  # a path cut across lines cannot be copied
    sys.exit(run.exit_code)


@click.command(
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
