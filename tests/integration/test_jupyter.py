"""JupyterLab (the optional ``jupyter`` service) for workshops, on the session's stack.

In a real browser it opens on the notebooks; through the Jupyter server's REST
API and kernel websocket (the protocol JupyterLab itself speaks) a kernel runs
``lakehouse.connect()`` against the running stack; without the token the
server refuses.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from lakehouse import Settings
from lakehouse.services.jupyter import JupyterService
from lakehouse.testing.browser import console_errors, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_jupyter]
NOTEBOOKS = sorted(path.name for path in (Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
# What the kernel runs: the list, and where the library found the stack.
PROBE = (
    "import lakehouse, pyspark, plotly\n"
    "lake = lakehouse.connect()\n"
    "print(lake.sql('SELECT 41 + 1 AS answer').to_pylist())\n"
    "print(lake.settings.home_dir, lake.settings.catalog_port)\n"
)


@pytest.fixture(scope="module")
def jupyter(stack: Settings) -> JupyterService:
    svc = JupyterService(stack)
    assert svc.health().ok, svc.health().detail
    return svc


def api(svc: JupyterService, path: str, method: str = "GET", token: str | None = "home's") -> Any:
    """The JSON answer of the Jupyter server's REST API (HTTPError on refusal)."""
    key = svc.token() if token == "home's" else token
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"token {key}"
    base = f"http://{svc.settings.client_host}:{svc.settings.jupyter_port}"
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def kernel(jupyter: JupyterService) -> Iterator[str]:
    """A fresh python3 kernel's id, shut down afterwards."""
    started = api(jupyter, "/api/kernels", method="POST")
    try:
        yield started["id"]
    finally:
        api(jupyter, f"/api/kernels/{started['id']}", method="DELETE")


def run_in_kernel(svc: JupyterService, kernel_id: str, code: str) -> tuple[str, dict[str, Any]]:
    """Run ``code`` over the kernel's websocket; its stdout and the execute_reply."""
    url = f"ws://{svc.settings.client_host}:{svc.settings.jupyter_port}/api/kernels/{kernel_id}/channels"
    socket = websocket.create_connection(
        url, header=[f"Authorization: token {svc.token()}"], timeout=180
    )
    try:
        request = Session().msg("execute_request", {"code": code, "silent": False,
                                "store_history": False, "user_expressions": {},
                                "allow_stdin": False, "stop_on_error": True})  # fmt: skip
        request["channel"] = "shell"
        socket.send(json.dumps(request, default=json_default))
        stdout = []
        while True:
            message = json.loads(socket.recv())
            if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                continue
            if message["msg_type"] == "stream":
                stdout.append(message["content"]["text"])
            if message["msg_type"] == "error":
                stdout.append("\n".join(message["content"]["traceback"]))
            if message["msg_type"] == "execute_reply":
                return "".join(stdout), message["content"]
    finally:
        socket.close()


def test_a_kernel_imports_lakehouse_and_finds_the_running_stack(
    stack: Settings, jupyter: JupyterService, kernel: str
) -> None:
    stdout, reply = run_in_kernel(jupyter, kernel, PROBE)
    assert reply["status"] == "ok", stdout
    lines = stdout.splitlines()
    assert lines[0] == "[{'answer': 42}]"
    assert lines[1] == f"{stack.home_dir} {stack.catalog_port}"


def test_the_token_is_required(jupyter: JupyterService) -> None:
    for token in (None, "not-the-token"):
        for path in ("/api/status", "/api/contents", "/api/kernels"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                api(jupyter, path, token=token)
            refused.value.close()
            assert refused.value.code == 403, (path, token)
    url = (
        f"ws://{jupyter.settings.client_host}:{jupyter.settings.jupyter_port}/api/events/subscribe"
    )
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, timeout=30)
    assert api(jupyter, "/api/status")["kernels"] >= 0


def test_jupyterlab_opens_on_the_notebooks_in_a_browser(
    jupyter: JupyterService, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert NOTEBOOKS, "notebooks/ is empty"
    browser.get(jupyter.spec().url)

    def listed(driver: Any) -> list[str]:
        items = driver.find_elements(By.CSS_SELECTOR, ".jp-DirListing-itemText")
        return sorted(item.text for item in items if item.text.endswith(".ipynb"))

    try:
        WebDriverWait(browser, 120).until(lambda driver: listed(driver) == NOTEBOOKS)
    finally:
        screenshot(browser, "jupyterlab")
    assert "JupyterLab" in browser.title
    assert not [e for e in console_errors(browser) if "favicon" not in e]


def test_status_prints_the_web_pages(jupyter: JupyterService) -> None:
    from tests.integration.conftest import run_cli

    shown = run_cli("status").stdout
    pages = shown[shown.index("Web pages:") :]
    assert f"JupyterLab  {jupyter.spec().url}  (token also in {jupyter.token_file})" in pages
    assert f"/lab?token={jupyter.token()}" in pages
    # The console runs when this session's tests asked for it; either way the
    # line says where it is or how to start it.
    from lakehouse.runtimes.local import LocalRuntime
    from lakehouse.services.console import ConsoleService

    console_up = any(
        row.name == "console" and row.healthy for row in LocalRuntime(jupyter.settings).status()
    )
    expected = (
        f"console     {ConsoleService(jupyter.settings).spec().url}"
        if console_up
        else "console     not running; start it with `lakehouse up --services console`"
    )
    assert expected in pages
