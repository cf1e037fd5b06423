"""The console's Overview lists the newest maintenance runs: a real console (uvicorn on
a free port) over a home holding recorded runs, no other service running."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.lake.maintenance_policy import record_run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_overview_shows_the_last_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from lakehouse.console import create_app

    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    settings = load_settings(home=tmp_path / "home", catalog_port=_free_port())
    record_run(settings, "retail.orders", "optimize", True, "data files 12 -> 1")
    record_run(settings, "retail.orders", "expire-snapshots", False, "failed: <catalog> down")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            page = answer.read().decode()
    finally:
        server.should_exit = True
        thread.join(10)
    assert 'data-table="retail.orders" data-job="optimize"' in page
    assert "data files 12 -&gt; 1" in page
    assert "failed: &lt;catalog&gt; down" in page  # escaped, and marked as failed
    assert page.index('data-job="expire-snapshots"') < page.index('data-job="optimize"')
