"""The policy file and the audit spool survive a writer killed with SIGKILL: the
policy is the old one or the new one, never half; every spooled record is whole and
none is lost; a lake that is down fails no recording and loses no record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.config import Settings
from lakehouse.governance import audit, store

WRITER = textwrap.dedent(
    """
    import sys
    from lakehouse.config import Settings
    from lakehouse.governance import store
    from lakehouse.governance.policy import Principal

    settings = Settings(home=sys.argv[1])
    many = tuple(Principal(name=f"user{i}") for i in range(2000))  # a policy of ~60 kB
    while True:
        stored = store.update(settings, lambda p: p.model_copy(
            update={"principals": many[: (p.revision % 1900) + 100]}))
        print(stored.revision, flush=True)
    """
)
RECORDER = textwrap.dedent(
    """
    import sys
    from lakehouse.config import Settings
    from lakehouse.governance import audit

    audit.FLUSH_SECONDS = 3600.0  # the lake is down anyway: only the spool is written
    settings = Settings(home=sys.argv[1], catalog_port=int(sys.argv[2]))
    for i in range(10**9):
        audit.record(settings, "alice", "duckdb", "retail.orders", ["a"], [], True, f"q{i}")
        print(i, flush=True)
    """
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    yield tmp_path / "home"


def killed_after(script: str, lines: int, *args: str) -> list[str]:
    """Run ``script`` until it printed ``lines`` lines, SIGKILL it; what it printed."""
    command = [sys.executable, "-c", script, *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        printed = [child.stdout.readline() for _ in range(lines)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        return [line.strip() for line in printed + child.stdout.read().splitlines() if line.strip()]


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_killed_policy_writer_leaves_the_old_or_the_new_policy(home: Path) -> None:
    settings = Settings(home=home)
    for lines in (3, 17, 40):
        printed = killed_after(WRITER, lines, str(home))
        last_confirmed = int(printed[-1])
        policy = store.load_policy(settings)  # parses: never half a file
        assert policy.revision in (last_confirmed, last_confirmed + 1)
        assert len(policy.principals) == (policy.revision - 1) % 1900 + 100


def test_a_killed_recorder_loses_no_confirmed_record(home: Path) -> None:
    port = closed_port()
    printed = killed_after(RECORDER, 200, str(home), str(port))
    confirmed = {f"q{line}" for line in printed}
    ids = [event["query_id"] for event in audit.spooled(Settings(home=home))]
    assert confirmed <= set(ids) and len(ids) == len(set(ids))


def test_a_down_lake_keeps_the_records_spooled(home: Path) -> None:
    settings = Settings(home=home, catalog_port=closed_port())
    audit.record(settings, "bob", "trino", "retail.orders", [], [], False, None, reason="no SELECT")
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, nothing is lost
        audit.flush(settings, wait=True)
    assert audit.pending(settings) == 1
