"""A lake house of a test's own (temp home, free ports), for tests that kill services.

The session's shared stack must stay up for every other test, so outage and
fault tests start their own and always stop it, even when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from lakehouse.config import Settings, load_settings
from lakehouse.runtimes.local import LocalRuntime, free_port_block, isolated_stack_env
from lakehouse.testing.stack import port_settings

CLI = [sys.executable, "-m", "lakehouse.cli"]


@contextmanager
def private_stack(home: Path, services: list[str]) -> Iterator[tuple[Settings, dict[str, str]]]:
    """(settings, LAKEHOUSE_* variables) of a stack running ``services``; stopped after."""
    env = below_ephemeral_ports(isolated_stack_env(home))
    settings = load_settings(home=home, **port_settings(env))
    runtime = LocalRuntime(settings)
    try:
        runtime.up(services)
        yield settings, env
    finally:
        runtime.down()


def below_ephemeral_ports(env: dict[str, str]) -> dict[str, str]:
    """``env`` with its port block moved below the kernel's ephemeral range.

    A service restarted after kill -9 must bind its ports again; a port in the
    ephemeral range may meanwhile be the local end of some client's connection.
    """
    lowest = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {k: int(v) for k, v in env.items() if k.endswith(("_PORT", "_PORT_BASE"))}
    first = min(ports.values())
    base = free_port_block(max(ports.values()) - first + 1, 20000, lowest - 1)
    return {**env, **{k: str(v - first + base) for k, v in ports.items()}}


def kill_9(settings: Settings, service: str) -> int:
    """SIGKILL the service's whole process group; its pid (as it was)."""
    runtime = LocalRuntime(settings)
    pid = runtime.pid(service)
    assert pid is not None, f"{service} is not running"
    os.killpg(pid, signal.SIGKILL)
    if psutil.pid_exists(pid):
        psutil.wait_procs([psutil.Process(pid)], timeout=10)
    return pid


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI against the private stack (never the session's)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
