"""The local runtime against real SeaweedFS and REST catalog processes."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings, load_settings
from lakehouse.errors import ArtifactError, JavaNotFoundError, PortInUseError
from lakehouse.runtimes.local import LocalRuntime, free_port_block, isolated_stack_env
from lakehouse.testing.stack import port_settings
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def test_status_reports_each_service_healthy_with_pid_and_memory(
    stack: Settings, stack_services: list[str]
) -> None:
    rows = {row.name: row for row in LocalRuntime(stack).status()}
    assert {"s3", "catalog", "trino", "spark"} <= set(rows)
    for row in (rows[name] for name in stack_services):
        assert row.healthy, row.detail
        assert row.pid is not None and psutil.pid_exists(row.pid)
        assert row.memory_mb is not None and row.memory_mb > 10
    assert rows["s3"].url == f"http://127.0.0.1:{stack.s3_port}"
    cli = run_cli("status")
    assert "s3" in cli.stdout and "catalog" in cli.stdout


def test_up_is_idempotent_and_keeps_running_processes(
    stack: Settings, stack_services: list[str]
) -> None:
    runtime = LocalRuntime(stack)
    before = {row.name: row.pid for row in runtime.status()}
    runtime.up(stack_services)
    after = {row.name: row.pid for row in runtime.status()}
    assert before == after


def test_services_listen_on_loopback_only(stack: Settings, stack_services: list[str]) -> None:
    runtime = LocalRuntime(stack)
    checked = ("s3", "catalog", "postgres", "opensearch")
    for name in [n for n in checked if n in stack_services]:
        pid = runtime.pid(name)
        assert pid is not None
        listening = [
            c for c in psutil.Process(pid).net_connections() if c.status == psutil.CONN_LISTEN
        ]
        assert listening, f"{name} listens nowhere"
        for conn in listening:
            assert conn.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1"), (name, conn.laddr)


def test_logs_show_the_service_output(stack: Settings) -> None:
    text = run_cli("logs", "catalog", "--lines", "1000000").stdout
    assert "starting catalog" in text
    assert "Started" in text  # Jetty's start line
    unknown = run_cli("logs", "nope", check=False)
    assert unknown.returncode == 1 and "Unknown service" in unknown.stderr


def _write_marker(lake: Lakehouse, name: str) -> None:
    lake.catalog.create_namespace_if_not_exists("persist")
    if lake.catalog.table_exists(name):
        lake.catalog.purge_table(name)
    lake.ingest(pa.table({"id": pa.array(range(100), pa.int64())}), name)


def _count(settings: Settings, name: str) -> int:
    with Lakehouse(settings) as lake:
        return int(lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py())


def test_data_survives_down_and_up(stack: Settings, stack_services: list[str]) -> None:
    with Lakehouse(stack) as lake:
        _write_marker(lake, "persist.down_up")
    runtime = LocalRuntime(stack)
    assert set(runtime.down()) == set(stack_services)
    assert all(not row.healthy and row.pid is None for row in runtime.status())
    runtime.up(stack_services)
    assert _count(stack, "persist.down_up") == 100


@pytest.mark.parametrize("victim", ["s3", "catalog"])
def test_data_survives_kill_9(stack: Settings, stack_services: list[str], victim: str) -> None:
    name = f"persist.kill_{victim}"
    with Lakehouse(stack) as lake:
        _write_marker(lake, name)
    runtime = LocalRuntime(stack)
    pid = runtime.pid(victim)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(pid)], timeout=10) if psutil.pid_exists(pid) else None
    assert runtime.pid(victim) is None
    # A service `up` started that then died is a failure (exit 3), unlike one
    # never started; status said "not running" and exited 0.
    killed = run_cli("status", check=False)
    assert killed.returncode == 3, killed.stdout + killed.stderr
    assert "crashed or killed" in killed.stdout
    runtime.up(stack_services)
    assert runtime.pid(victim) not in (None, pid)
    assert _count(stack, name) == 100


def _other_home_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings of a second lake house on free ports (its own home)."""
    env = isolated_stack_env(tmp_path / "home")
    return load_settings(home=Path(env["LAKEHOUSE_HOME"]), **port_settings(env), **overrides)


def _nothing_started(settings: Settings) -> bool:
    return all(row.pid is None for row in LocalRuntime(settings).status())


def test_port_in_use_is_reported_before_anything_starts(tmp_path: Path) -> None:
    settings = _other_home_settings(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.catalog_port))
        squatter.listen()
        with pytest.raises(PortInUseError) as info:
            LocalRuntime(settings).up(["catalog"])
    message = str(info.value)
    assert f"port {settings.catalog_port}" in message and "'catalog'" in message
    assert "LAKEHOUSE_CATALOG_PORT" in message
    assert _nothing_started(settings)


def test_too_old_jdk_is_reported_before_anything_starts(tmp_path: Path) -> None:
    fake = tmp_path / "jdk11"
    (fake / "bin").mkdir(parents=True)
    (fake / "release").write_text('JAVA_VERSION="11.0.2"\n')
    settings = _other_home_settings(tmp_path, java_home=fake)
    with pytest.raises(JavaNotFoundError) as info:
        LocalRuntime(settings).up(["catalog"])
    assert "JDK 17 or newer" in str(info.value) and "Java 11, too old" in str(info.value)
    assert _nothing_started(settings)


def test_failed_download_is_reported_before_anything_starts(tmp_path: Path) -> None:
    closed = free_port_block(1)
    settings = _other_home_settings(
        tmp_path, cache=tmp_path / "empty-cache", maven_repo=f"http://127.0.0.1:{closed}/maven2"
    )
    started = time.monotonic()
    with pytest.raises(ArtifactError) as info:
        LocalRuntime(settings).up(["catalog"])
    assert "Could not download" in str(info.value) and "LAKEHOUSE_MAVEN_REPO" in str(info.value)
    assert time.monotonic() - started < 60
    assert _nothing_started(settings)
