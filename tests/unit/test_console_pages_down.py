"""The Query, Zero-ETL and Models pages with nothing else running: each says what is
down and how to start it, never a traceback. A real console (uvicorn on a free
port) over settings whose services' ports are closed."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.config import load_settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from lakehouse.console import create_app

    closed = {name: _closed_port() for name in ("s3_port", "catalog_port", "trino_port",
                                                 "spark_port", "mlflow_port", "postgres_port")}  # fmt: skip
    home = tmp_path_factory.mktemp("home")
    settings = load_settings(home=home, **closed)
    port = _closed_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_models_without_mlflow_says_so_and_how_to_start_it(console: str) -> None:
    status, page = _get(f"{console}/models")
    assert status == 503
    assert "The MLflow tracking server is not answering" in page
    assert "Hint:" in page and "up --services mlflow" in page
    assert "Traceback" not in page


def test_zero_etl_without_integrations_says_how_to_make_one(console: str) -> None:
    status, page = _get(f"{console}/zero-etl")
    assert status == 200 and "No integration is declared yet" in page
    assert "lakehouse sync create" in page


def test_an_unknown_integration_is_a_404_that_leads_back(console: str) -> None:
    status, page = _get(f"{console}/zero-etl/nope")
    assert status == 404 and "/zero-etl" in page and "Back to the Overview" in page


def test_the_editor_says_which_engines_are_down(console: str, tmp_path: Path) -> None:
    status, page = _get(f"{console}/query")
    assert status == 200
    for engine in ("duckdb", "trino", "spark"):
        assert f'data-engine="{engine}">{engine} is not running' in page
    # The console names its own home (a temporary one here) in the command.
    assert "up --services trino`" in page and "Start it with `lakehouse --home " in page


def test_a_query_with_the_lake_down_shows_the_outage_and_its_hint(console: str) -> None:
    origin = console
    request = urllib.request.Request(
        f"{console}/query", data=b"sql=SELECT+1&engine=duckdb", method="POST",
        headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("the query should have failed")
    except urllib.error.HTTPError as error:
        page = error.read().decode()
        assert error.code == 503
    assert "is not answering" in page and "Hint:" in page and 'id="query-error"' in page
    assert "SELECT 1</textarea>" in page


def test_a_csv_no_longer_kept_says_so(console: str) -> None:
    status, page = _get(f"{console}/query/results/gone.csv")
    assert status == 400 and "no longer kept" in page and "Hint:" in page


def test_zero_etl_reloads_itself_when_asked(console: str) -> None:
    status, page = _get(f"{console}/zero-etl?refresh=5")
    assert status == 200 and '<meta http-equiv="refresh" content="5">' in page
    status, page = _get(f"{console}/zero-etl")
    assert 'http-equiv="refresh"' not in page and 'href="?refresh=5"' in page
    status, page = _get(f"{console}/zero-etl?refresh=-1")
    assert status == 400 and "Hint:" in page
