"""Two stacks side by side never reach each other.

Each stack is a project directory whose ``lakehouse.toml`` sets its own ports
and declares a PostgreSQL -> OpenSearch integration, started by the real
``lakehouse up`` from that directory (the sync worker then runs with the home
as its working directory, where the defaults would be 5432/8181/9200). The
proof: the worker syncs a row into its own OpenSearch, holds a connection to
its own PostgreSQL, and no process of either stack has a socket to a port of
the other. The stacks run in private homes on free ports and are stopped even
when the test fails.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import psycopg
import pytest

from lakehouse.config import Settings, load_settings
from lakehouse.runtimes.local import free_port_block
from lakehouse.services import build_services
from lakehouse.services.s3 import seaweed_internal_ports
from tests.integration.stack_sockets import SocketUse, service_ports, stack_sockets

pytestmark = [pytest.mark.integration]

SERVICES_BUT_SYNC = "s3,catalog,postgres,opensearch"
PORT_SETTINGS = (
    "s3_port", "catalog_port", "s3_internal_port_base", "postgres_port",
    "opensearch_port", "opensearch_transport_port", "trino_port", "spark_port",
)  # fmt: skip
# s3 + catalog + 10 internal + postgres + opensearch x2 + trino + spark x3
PORTS_PER_STACK = 20


def project_config(base: int) -> dict[str, int]:
    """Ports of one stack, all inside [base, base + PORTS_PER_STACK)."""
    offsets = {"s3_port": 0, "catalog_port": 1, "s3_internal_port_base": 2, "postgres_port": 12,
               "opensearch_port": 13, "opensearch_transport_port": 14, "trino_port": 15,
               "spark_port": 16}  # fmt: skip
    return {name: base + offsets[name] for name in PORT_SETTINGS}


def write_project(directory: Path, ports: dict[str, int], home: str | None) -> None:
    """A lakehouse.toml with ``ports``, ``home`` (relative to it) when given, and
    one integration; an outside home is the layout where a worker run from its home
    would find no lakehouse.toml by walking up."""
    directory.mkdir(parents=True)
    lines = ["[lakehouse]", *([f'home = "{home}"'] if home else [])]
    lines += [*(f"{name} = {port}" for name, port in ports.items()), ""]
    lines += ["[sync.items-to-search]", 'source = "postgres"', 'target = "opensearch"',
              'tables = ["items"]', ""]  # fmt: skip
    (directory / "lakehouse.toml").write_text("\n".join(lines))


def cli_env() -> dict[str, str]:
    """This process's environment without anything that selects a stack: the
    project directory alone must decide (the cache stays shared)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LAKEHOUSE_") or key == "LAKEHOUSE_CACHE"
    }


@pytest.fixture(scope="module")
def two_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Settings]]:
    """Two projects on separate free port blocks, started side by side by `lakehouse up`
    in each; the sync worker starts once the table its integration names exists."""
    tmp_path = tmp_path_factory.mktemp("isolation")
    projects = [tmp_path / "first", tmp_path / "second"]
    # SeaweedFS's admin gRPC port lies outside the block (s3_internal_port_base + 10007).
    derived = tuple(port for port in seaweed_internal_ports(2).values() if port >= PORTS_PER_STACK)
    for project, home in zip(projects, (None, "../second-home"), strict=True):
        base = free_port_block(PORTS_PER_STACK, extra_offsets=derived)
        write_project(project, project_config(base), home)
    warm_shared_cache(tmp_path / "scratch-home")
    try:
        in_parallel(projects, "up", "--services", SERVICES_BUT_SYNC, "--no-sample")
        for project in projects:
            add_row(settings_of(project))
        in_parallel(projects, "up", "--services", "sync", "--no-sample")
        yield [settings_of(project) for project in projects]
    finally:  # both at once: one after the other, the second waited for the first
        stopping = [
            subprocess.Popen([sys.executable, "-m", "lakehouse.cli", "down"], cwd=project,
                             env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for project in projects
        ]  # fmt: skip
        for process in stopping:
            process.wait(timeout=120)


def warm_shared_cache(scratch_home: Path) -> None:
    """Fetch and build what the JVM services keep in the shared cache once, so two
    `up`s at once do not both build it."""
    settings = load_settings(home=scratch_home)
    for service in build_services(settings, ["catalog", "opensearch"]):
        if service.spec().needs_java:
            service.prepare()


def in_parallel(projects: list[Path], *args: str, timeout: float = 400) -> None:
    """``lakehouse ARGS`` in every project at once; each must succeed."""
    running = [
        subprocess.Popen([sys.executable, "-m", "lakehouse.cli", *args], cwd=project,
                         env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for project in projects
    ]  # fmt: skip
    for project, process in zip(projects, running, strict=True):
        _out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"lakehouse {' '.join(args)} in {project}:\n{err}"


def settings_of(project: Path) -> Settings:
    """The settings a command run in ``project`` sees."""
    # Without this run's stack variables: the session stack's LAKEHOUSE_* (exported
    # for the CLI by tests/integration/conftest.py) would override lakehouse.toml.
    saved, environment = Path.cwd(), dict(os.environ)
    try:
        os.chdir(project)
        os.environ.clear()
        os.environ.update(cli_env())
        return load_settings()
    finally:
        os.chdir(saved)
        os.environ.clear()
        os.environ.update(environment)


def add_row(settings: Settings) -> None:
    with psycopg.connect(settings.postgres_dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items VALUES (1, %s)", (str(settings.home_dir),))


def indexed_rows(settings: Settings) -> int:
    try:
        with urllib.request.urlopen(f"{settings.opensearch_uri}/shop-items/_count") as answer:
            return int(json.load(answer)["count"])
    except OSError:
        return 0


def has_one_row(settings: Settings) -> bool:
    return indexed_rows(settings) == 1


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def crossings(own: Settings, other: Settings) -> list[str]:
    """Sockets of ``own``'s processes that listen on or connect to ``other``'s ports."""
    theirs = set().union(*service_ports(other).values())
    mine = set().union(*service_ports(own).values())

    def crosses(use: SocketUse) -> bool:
        if use.kind == "listen":
            return use.port in theirs
        # An accepted connection's peer port is the client's ephemeral one.
        return use.kind == "connect" and use.local_port not in mine and use.port in theirs

    return [str(use) for use in stack_sockets(own) if crosses(use)]


def test_two_stacks_started_from_their_projects_stay_apart(two_stacks: list[Settings]) -> None:
    first, second = two_stacks
    assert first.postgres_port != second.postgres_port
    for settings in two_stacks:
        wait_for(partial(has_one_row, settings), f"the row in {settings.opensearch_uri}")
        worker = [use for use in stack_sockets(settings) if use.service == "sync"]
        assert any(
            use.kind == "connect" and use.port == settings.postgres_port for use in worker
        ), (
            f"the sync worker of {settings.home_dir} holds no connection to its PostgreSQL: "
            + ", ".join(map(str, worker))
        )
    assert crossings(first, second) == []
    assert crossings(second, first) == []


def test_the_home_and_its_files_are_private(two_stacks: list[Settings]) -> None:
    home = two_stacks[0].home_dir
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    lake_files = [
        *(home / "data" / "s3").rglob("*.dat"),
        *(home / "data" / "catalog").rglob("catalog.db*"),
        *(home / "data" / "opensearch").rglob("*"),
        *(home / "logs").glob("*.log"),
        *(home / "run").glob("*.json"),
    ]
    assert len(lake_files) > 5
    readable = [str(path) for path in lake_files if path.stat().st_mode & 0o077]
    assert not readable, "files others could read or write: " + ", ".join(readable[:10])
