"""The console acts as its principal and says so, in a real browser.

A second console process, governed, runs with ``principal = alice`` (its own home
holds the policy; the session's catalog and S3): every page names alice in its
header, the Catalog lists and shows only what alice may see (her columns, her rows,
masked, no data files), a table she may not see is refused with the reason, and the
Query page answers as alice. The session's own console (ungoverned) names the admin.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.governance import store
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
)
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.console import ConsoleService
from lakehouse.testing.browser import screenshot

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_console]
NS = "gov_console"
CUSTOMERS = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "name": ["Ada Lovelace", "Bo Diddley", "Carl Gauss"],
    "email": ["ada@x.eu", "bo@y.us", "carl@z.eu"],
    "region": ["EU", "US", "EU"],
})  # fmt: skip
POLICY = Policy(
    principals=(Principal(name="alice"),),
    data_cells_filters=(DataCellsFilter(name="eu", table=f"{NS}.customers", row_filter="region = 'EU'",
                                        excluded_columns=("email",)),),
    masks=(ColumnMask(table=f"{NS}.customers", column="name", principal="alice", kind="partial"),),
    grants=(Grant(principal="alice", permissions=(Permission.SELECT,),
                  resource=Resource(data_cells_filter="eu")),),
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def alice_console(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a governed console acting as alice, over the scenario's tables."""
    settings = stack.model_copy(update={
        "home": tmp_path_factory.mktemp("governed-console"), "console_port": free_port(),
        "governance_enabled": True, "principal": "alice",
    })  # fmt: skip
    with Lakehouse(stack) as admin:
        admin.catalog.create_namespace_if_not_exists(NS)
        for name, data in (("customers", CUSTOMERS), ("secret", pa.table({"x": [1]}))):
            if admin.catalog.table_exists(f"{NS}.{name}"):
                admin.catalog.purge_table(f"{NS}.{name}")
            admin.ingest(data, f"{NS}.{name}")
    store.update(settings, lambda _: POLICY)
    runtime = LocalRuntime(settings)
    runtime.start_service(ConsoleService(settings), timeout=120)
    try:
        yield f"http://{settings.client_host}:{settings.console_port}"
    finally:
        runtime.stop("console")
        with Lakehouse(stack) as admin:
            for table in admin.tables(NS):
                admin.catalog.purge_table(table)
            admin.catalog.drop_namespace(NS)


def texts(browser: Any, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, selector)]


def rows(browser: Any, selector: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, f"{selector} tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in found]


def test_the_console_acts_as_alice_on_every_page(alice_console: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    for path in ("/", "/catalog", "/query", "/zero-etl", "/models"):
        browser.get(alice_console + path)
        assert texts(browser, "#acting") == ["as alice · governed by the policy"], path

    browser.get(alice_console + "/catalog")
    assert rows(browser, "#namespaces") == [[NS, "1"]]  # not secret, no other namespace
    browser.get(f"{alice_console}/catalog/{NS}")
    assert [r[0] for r in rows(browser, "#tables")] == ["customers"]

    browser.get(f"{alice_console}/catalog/{NS}/customers")
    screenshot(browser, "governed-console-table")
    assert [r[1] for r in rows(browser, "#schema")] == ["id", "name", "region"]
    assert texts(browser, "#sample-rows thead th") == ["id", "name", "region"]
    assert sorted(rows(browser, "#sample-rows")) == [
        ["1", "********lace", "EU"],
        ["3", "******auss", "EU"],
    ]
    assert browser.find_elements(By.ID, "files-hidden") and not browser.find_elements(
        By.ID, "data-files"
    )
    assert "ada@x.eu" not in browser.page_source and "Bo Diddley" not in browser.page_source

    browser.get(f"{alice_console}/catalog/{NS}/secret")
    assert "alice may neither DESCRIBE nor SELECT gov_console.secret" in browser.page_source
    assert "Hint:" in browser.page_source or "lakehouse grant" in browser.page_source

    browser.get(alice_console + "/query")
    editor = browser.find_element(By.ID, "sql")
    editor.clear()
    editor.send_keys(f"SELECT id, name FROM {NS}.customers ORDER BY id")
    browser.execute_script("window.lakehouseOldPage = true")
    editor.send_keys(Keys.CONTROL, Keys.ENTER)
    WebDriverWait(browser, 120).until(lambda d: d.execute_script(
        "return window.lakehouseOldPage === undefined && document.readyState === 'complete'"))  # fmt: skip
    assert rows(browser, "#result-grid") == [["1", "********lace"], ["3", "******auss"]]


def test_the_session_console_says_it_acts_as_the_admin(stack: Settings, browser: Any) -> None:
    browser.get(f"http://{stack.client_host}:{stack.console_port}/catalog")
    assert texts(browser, "#acting") == [f"as {stack.governance_admin} · governance off"]
