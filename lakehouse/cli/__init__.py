"""The `lakehouse` command: a thin layer of flags and formatting over the library.

One module per command group; each command is a library call plus formatting.
"""

from __future__ import annotations

import os

import click

# pydantic looks for plugins by reading the entry points of every installed
# distribution, about 50 ms of each command's start-up; the CLI uses none.
# Library users (and their plugins) are not affected: only the CLI sets this.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from lakehouse.cli.audit import audit
from lakehouse.cli.backup import backup, restore
from lakehouse.cli.common import LakehouseGroup
from lakehouse.cli.crawl import crawl, crawler, crawlers
from lakehouse.cli.engines import spark, trino_cli
from lakehouse.cli.governance import COMMANDS as GOVERNANCE_COMMANDS
from lakehouse.cli.maintain import COMMANDS as MAINTENANCE_COMMANDS
from lakehouse.cli.ml import ml
from lakehouse.cli.query import queries, query
from lakehouse.cli.stack import compose, down, env, init, load_sample_command, logs, status, up
from lakehouse.cli.sync import simulate, sync
from lakehouse.cli.tables import describe, history, ingest, tables


@click.group(cls=LakehouseGroup)
@click.option(
    "--home",
    type=click.Path(),
    help="Lake house home (default: LAKEHOUSE_HOME, else the .lakehouse/ of the nearest "
    "directory up from here holding lakehouse.toml or .lakehouse/, else a per-user directory).",
)
@click.option("--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="lakehouse-stack")
def main(home: str | None, verbose: bool) -> None:
    """An open-source lake house: S3, an Iceberg REST catalog and SQL engines."""
    from lakehouse.cli.governance import converge_enforcers

    converge_enforcers(home)  # a policy change cut short by a kill reaches Trino and S3


for command in (up, down, status, logs, env, query, ingest, tables, describe, history, spark,
                trino_cli, init, compose, load_sample_command, sync, simulate, backup, restore, ml, queries):  # fmt: skip
    main.add_command(command)
for command in (*GOVERNANCE_COMMANDS, audit, *MAINTENANCE_COMMANDS):
    main.add_command(command)
for command in (crawl, crawlers, crawler):
    main.add_command(command)
