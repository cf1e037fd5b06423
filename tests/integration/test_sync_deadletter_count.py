"""Each dead letter is counted once, however often its rows are replayed.

A table whose every row is refused leaves an Iceberg snapshot with no rows; a
new run, a pass retried after a failure and a follower killed mid-pass all
read such rows again and record their dead letters again (under the same id).
`sync run` / `lake.sync` and `sync status` must still count each once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.deadletters import TABLE as DEAD_LETTERS
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.status import StatusStore
from tests.integration.conftest import CLI

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_postgres]

KILLS = 4


@pytest.fixture
def integration(stack: Settings, postgres_dsn: str) -> Iterator[Integration]:
    """postgres -> iceberg of ``refused`` (every row a NaN a numeric(10,2) cannot hold in
    Iceberg) and ``kept`` (rows that arrive)."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for table in ("refused", "kept"):
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, price numeric(10,2))")
        conn.execute("INSERT INTO refused SELECT i, 'NaN' FROM generate_series(1, 3) AS i")
        conn.execute("INSERT INTO kept SELECT i, i FROM generate_series(1, 3) AS i")
    database = conninfo_to_dict(postgres_dsn)["dbname"]
    declared = Integration(name=f"count-{database[-8:]}", source="postgres", target="iceberg",
                           tables=("refused", "kept"), database=database,
                           namespace=database)  # type: ignore[arg-type]  # fmt: skip
    IntegrationStore(stack).create(declared)
    yield declared
    delete_integration(stack, declared.name, drop_targets=True)


def _sync(settings: Settings, integration: Integration) -> Any:
    with Lakehouse(settings) as lake:
        return lake.sync(integration.name)


def _insert_refused(dsn: str, ids: range) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for row_id in ids:  # one transaction each: a kill can fall between them
            conn.execute("INSERT INTO refused VALUES (%s, 'NaN')", (row_id,))
            conn.execute("INSERT INTO kept VALUES (%s, 1) ON CONFLICT DO NOTHING", (row_id,))


def _letters_in_table(settings: Settings, integration: Integration) -> int:
    rows = open_catalog(settings).load_table(DEAD_LETTERS).scan().to_arrow().to_pylist()
    return len({r["id"] for r in rows if r["integration"] == integration.name})


def test_runs_that_read_refused_rows_again_count_them_once(
    stack: Settings, postgres_dsn: str, integration: Integration
) -> None:
    assert _sync(stack, integration).dead_letters == 3
    # A new run builds a new pipeline: the refused table's empty snapshot is read again.
    assert _sync(stack, integration).dead_letters == 0
    _insert_refused(postgres_dsn, range(10, 12))
    assert _sync(stack, integration).dead_letters == 2
    assert _sync(stack, integration).dead_letters == 0
    assert StatusStore(stack).read(integration.name).dead_letters == 5
    assert _letters_in_table(stack, integration) == 5


def test_a_follower_killed_mid_pass_raises_no_count(
    stack: Settings, postgres_dsn: str, integration: Integration, tmp_path: Path
) -> None:
    rng = random.Random(20261130)
    assert _sync(stack, integration).dead_letters == 3
    log = tmp_path / "follower.log"
    for kill in range(KILLS):
        with log.open("ab") as out:
            follower = subprocess.Popen([*CLI, "sync", "run", integration.name, "--follow"],
                                        stdout=out, stderr=subprocess.STDOUT,
                                        env=os.environ.copy())  # fmt: skip
        try:
            first = 100 * (kill + 1)
            _insert_refused(postgres_dsn, range(first, first + 3))
            time.sleep(rng.uniform(0.5, 3.0))  # somewhere in a snapshot, a pass or idle
        finally:
            follower.send_signal(signal.SIGKILL)
            follower.wait(timeout=30)
    _sync(stack, integration)  # whatever the kills left
    expected = 3 + 3 * KILLS
    assert _letters_in_table(stack, integration) == expected, log.read_text()[-2000:]
    assert StatusStore(stack).read(integration.name).dead_letters == expected
