"""kill -9 during writes: nothing acknowledged is lost, nothing failed is half there.

A private stack (temp home, free ports) is used because services are killed.
An append loop writes batches of distinct ids; a service is killed with
SIGKILL mid-loop and started again with the runtime; then every acknowledged
batch must be in the table exactly once, a failed batch wholly or not at all,
every snapshot must read, every error must be a LakehouseError with a hint,
and no data file may be left that no snapshot references. The longer version
with figures is ``python -m bench faults``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.testing.faults import (
    AppendLoop,
    check_table,
    kill_during_sync_load,
    orphan_files,
)
from sample_data.shop import load_shop
from tests.integration.private_stack import CLI, kill_9, private_stack

pytestmark = pytest.mark.integration

SERVICES = ["s3", "catalog", "postgres"]


@pytest.fixture(scope="module")
def own_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, dict[str, str]]]:
    home = tmp_path_factory.mktemp("faults") / "home"
    with private_stack(home, SERVICES) as (settings, env):
        yield settings, env


@pytest.mark.parametrize("victim", ["catalog", "s3"])
def test_kill_9_during_an_append_loop_loses_and_half_writes_nothing(
    own_stack: tuple[Settings, dict[str, str]], victim: str
) -> None:
    settings, _ = own_stack
    table = f"faults.append_{victim}"
    with AppendLoop(settings, table) as loop:
        loop.wait_for(acknowledged=3)
        kill_9(settings, victim)
        loop.wait_for(failed=2, timeout=60)
        LocalRuntime(settings).up(SERVICES)
        loop.wait_for(acknowledged=len(loop.acknowledged) + 3, timeout=120)
    assert loop.failures, "the kill went unnoticed: the test did not test anything"
    bad = [f"{type(e).__name__}: {e}" for e in loop.failures if "Hint:" not in str(e)]
    assert not bad, bad
    with Lakehouse(settings) as lake:
        report = check_table(lake, table, loop)
        orphans = orphan_files(lake, table)
    assert report.missing == [] and report.duplicated == [] and report.partial == []
    assert report.unreadable_snapshots == []
    assert orphans == [], f"{len(orphans)} data files no snapshot references: {orphans[:3]}"


@pytest.fixture(scope="module")
def shop(own_stack: tuple[Settings, dict[str, str]]) -> str:
    settings, _ = own_stack
    with psycopg.connect(settings.postgres_dsn(), autocommit=True) as conn:
        load_shop(conn, scale=0.01, seed=5)
    return settings.postgres_dsn()


def _orders(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM public.orders").fetchone()
    return int(row[0]) if row else 0


def _wait_until_writing(dsn: str, before: int, run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while _orders(dsn) == before and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)


def _simulate(env: dict[str, str], seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "simulate", "shop", "--rate", "200", "--duration", str(seconds), "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip


def test_simulate_reconnects_after_postgres_is_killed(
    own_stack: tuple[Settings, dict[str, str]], shop: str
) -> None:
    settings, env = own_stack
    before = _orders(shop)
    run = _simulate(env, 12)
    try:
        # Killed once the simulator is writing (a fixed 3 s wait killed PostgreSQL
        # before a loaded machine's simulator had even connected).
        _wait_until_writing(shop, before, run)
        kill_9(settings, "postgres")
        time.sleep(1)
        LocalRuntime(settings).up(SERVICES)
        out, said = run.communicate(timeout=120)
    finally:
        run.kill() if run.poll() is None else None
    assert run.returncode == 0, said
    assert "Traceback" not in said
    assert said.count("lost the connection to PostgreSQL") == 1
    assert said.count("reconnected to PostgreSQL") == 1
    assert " changes (" in out and not out.startswith("0 changes")


def test_simulate_prints_its_summary_when_terminated(
    own_stack: tuple[Settings, dict[str, str]], shop: str
) -> None:
    _, env = own_stack
    before = _orders(shop)
    run = _simulate(env, 600)
    try:
        # Terminated once it is writing: a fixed 3 s wait sent SIGTERM to a loaded
        # machine's simulator before its handler was installed (exit code -15).
        _wait_until_writing(shop, before, run)
        run.send_signal(signal.SIGTERM)
        out, said = run.communicate(timeout=30)
    finally:
        run.kill() if run.poll() is None else None
    assert run.returncode == 0 and "Traceback" not in said
    assert " changes (" in out and " transactions over " in out


def test_simulate_gives_up_with_its_summary(
    own_stack: tuple[Settings, dict[str, str]], shop: str
) -> None:
    from lakehouse.simulate import ShopSimulator

    settings, _ = own_stack
    heard: list[str] = []
    simulator = ShopSimulator(shop, rate=200, seed=2, give_up_after=2)
    killer = _kill_later(settings, after=1.5)
    try:
        stats = simulator.run(duration=30, notice=heard.append)
    finally:
        killer.join()
        LocalRuntime(settings).up(SERVICES)
    assert stats.gave_up and "did not come back" in stats.gave_up
    assert stats.changes > 0 and len(heard) == 1


def _kill_later(settings: Settings, after: float) -> threading.Thread:
    def kill() -> None:
        time.sleep(after)
        kill_9(settings, "postgres")

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_kill_9_of_the_sync_worker_during_a_load_loses_nothing(
    own_stack: tuple[Settings, dict[str, str]], shop: str
) -> None:
    """The sync service loads the shop (snapshot, then streamed changes) while it is
    killed and started again; then Iceberg equals PostgreSQL. (OpenSearch killed the
    same way: `python -m bench faults`, as its JVM takes a minute to start twice.)"""
    settings, _ = own_stack
    load = kill_during_sync_load(settings, shop, victim="sync", target="iceberg")
    assert load.reports and all(r.source_rows > 0 for r in load.reports), load.reports
    assert load.in_sync_after is not None, f"not in sync: {load.reports} ({load.last_error})"
