"""The console's Query page in a real browser: editor, grid, chart, CSV, history, errors.

One browser, three page loads (the editor, a query, a bad query): CI time matters.
"""

from __future__ import annotations

import datetime as dt
import urllib.request
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from lakehouse import Lakehouse, Settings
from lakehouse.engines import output
from lakehouse.engines.history import QueryHistory
from lakehouse.testing.browser import console_errors, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_console]
WAIT_SECONDS = 60


def _console(stack: Settings) -> str:
    return f"http://{stack.client_host}:{stack.console_port}"


def _orders(days: int = 12) -> pa.Table:
    return pa.table(
        {
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(days)],
            "status": ["paid", "shipped", "returned"] * (days // 3),
            "amount": pa.array([Decimal(f"{d}.25") for d in range(days)], pa.decimal128(10, 2)),
        }
    )


def _run(browser: Any, sql: str, engine: str = "duckdb", as_of: str = "") -> None:
    """Type ``sql`` into the editor and run it with Ctrl+Enter."""
    Select(browser.find_element(By.ID, "engine")).select_by_value(engine)
    field = browser.find_element(By.ID, "as-of")
    field.clear()
    field.send_keys(as_of)
    editor = browser.find_element(By.ID, "sql")
    editor.clear()
    editor.send_keys(sql)
    browser.execute_script("window.lakehouseOldPage = true")  # a new page has no such mark
    editor.send_keys(Keys.CONTROL, Keys.ENTER)
    # The form posts and the answer is a new page: wait for it, or the test reads the
    # old page's elements (stale, or the previous result). While the page changes,
    # the browser may answer any call with an error: those are waited through.
    WebDriverWait(browser, 120, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.lakehouseOldPage === undefined && document.readyState === 'complete'"
        )
    )


def _script_errors(browser: Any) -> list[str]:
    """The page's errors, but the browser's own favicon request (not the page's doing)."""
    return [e for e in console_errors(browser) if "/favicon.ico" not in e]


def _wait(browser: Any) -> WebDriverWait[Any]:
    return WebDriverWait(browser, WAIT_SECONDS)


def test_a_query_shows_its_grid_chart_csv_and_history(
    stack: Settings, lake: Lakehouse, namespace: str, browser: Any
) -> None:
    first = lake.ingest(_orders(), f"{namespace}.orders").snapshot_id
    lake.ingest(_orders(), f"{namespace}.orders")  # read as of the first: each day once
    sql = f"SELECT day, sum(amount) AS total FROM {namespace}.orders GROUP BY day ORDER BY day"
    browser.get(f"{_console(stack)}/query")
    _run(browser, sql, as_of=str(first))
    wait = _wait(browser)
    wait.until(ec.presence_of_element_located((By.ID, "result-grid")))
    wait.until(lambda b: b.find_element(By.ID, "result-chart").get_attribute("data-rendered"))
    screenshot(browser, "console_query_result")

    summary = browser.find_element(By.ID, "result-summary").text
    assert summary.startswith("12 rows in ") and f"on duckdb, as of {first}" in summary
    headers = browser.find_elements(By.CSS_SELECTOR, "#result-grid thead th")
    assert headers[0].get_attribute("title") == "date32[day]"
    rows = browser.find_elements(By.CSS_SELECTOR, "#result-grid tbody tr")
    assert [r.text for r in rows[:2]] == ["2024-01-01 0.25", "2024-01-02 1.25"]
    assert len(rows) == 12
    assert browser.find_element(By.ID, "chart-note").text.startswith("Line chart: total over day")
    assert browser.find_elements(By.CSS_SELECTOR, "#result-chart .main-svg")  # plotly drew it
    assert _script_errors(browser) == []

    # CSV: byte for byte what the library's writer (`lakehouse query --format csv`) gives.
    link = browser.find_element(By.ID, "download-csv").get_attribute("href")
    with urllib.request.urlopen(link, timeout=30) as answer:
        downloaded = answer.read()
        assert answer.headers["Content-Type"].startswith("text/csv")
    assert downloaded == output.to_csv(lake.sql(sql, as_of=first)).encode()

    # History: newest first, and a click puts the query back into the editor.
    links = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr a.history-query")
    mine = next(link for link in links if link.get_attribute("data-sql") == sql)
    browser.find_element(By.ID, "sql").clear()
    browser.find_element(By.ID, "as-of").clear()
    mine.click()
    assert browser.find_element(By.ID, "sql").get_attribute("value") == sql
    assert browser.find_element(By.ID, "as-of").get_attribute("value") == str(first)
    entry = next(e for e in QueryHistory(stack).entries(50) if e.text == sql)
    assert (entry.engine, entry.rows, entry.ok, entry.as_of) == ("duckdb", 12, True, str(first))

    # Text from the data is drawn literally in the chart, never as plotly's HTML.
    link = '<a href="https://evil.example">x</a>'
    _run(browser, f"SELECT '{link}' AS label, 1 AS \"<i>n</i>\" UNION ALL SELECT 'b', 2")
    wait.until(lambda b: b.find_element(By.ID, "result-chart").get_attribute("data-rendered"))
    chart = browser.find_element(By.ID, "result-chart")
    assert not chart.find_elements(By.CSS_SELECTOR, "a, i")
    ticks = [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".xtick text")]
    assert link in ticks and "<i>n</i>" in chart.find_element(By.CSS_SELECTOR, ".ytitle").text


def test_bad_sql_shows_the_error_and_its_hint(
    stack: Settings, browser: Any, lake: Lakehouse, namespace: str
) -> None:
    browser.get(f"{_console(stack)}/query")
    bad = f"SELEC day FROM shop.orders_{uuid.uuid4().hex[:8]}"  # the history is shared
    _run(browser, bad)
    box = _wait(browser).until(ec.presence_of_element_located((By.ID, "query-error")))
    screenshot(browser, "console_query_error")
    message = box.find_element(By.CSS_SELECTOR, ".message").text
    hint = box.find_element(By.CSS_SELECTOR, ".hint").text
    assert "duckdb could not run the query" in message and "SELEC" in message
    assert hint.startswith("Hint: ") and len(hint) > len("Hint: ")
    assert "Traceback" not in browser.page_source
    assert browser.find_element(By.ID, "sql").get_attribute("value") == bad  # kept to fix
    assert not browser.find_elements(By.ID, "result-grid")
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    failed = next(row for row in rows if bad in row.text)
    assert "failed" in (failed.get_attribute("class") or "") and "error" in failed.text
    entry = next(e for e in QueryHistory(stack).entries(50) if e.text == bad)
    assert (entry.ok, entry.rows) == (False, None)
    assert entry.hint == hint.removeprefix("Hint: ")

    # A statement says what ran; a destructive one asks first, and runs only when confirmed.
    _run(browser, f"CREATE TABLE {namespace}.scratch (id INTEGER)")
    summary = _wait(browser).until(ec.presence_of_element_located((By.ID, "result-summary")))
    assert summary.text.startswith("Statement ran: table created in "), summary.text
    _run(browser, f"INSERT INTO {namespace}.scratch VALUES (1), (2)")
    summary = _wait(browser).until(ec.presence_of_element_located((By.ID, "result-summary")))
    # DuckDB reports no count for an insert into an Iceberg table: then it only says it ran.
    assert summary.text.startswith(("Statement ran: 2 rows inserted in ", "Statement ran in "))
    _run(browser, f"DROP TABLE {namespace}.scratch")
    box = _wait(browser).until(ec.presence_of_element_located((By.ID, "confirm")))
    assert f"DROP TABLE {namespace}.scratch" in box.text and not browser.find_elements(
        By.ID, "result"
    )
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.scratch").column(0)[0].as_py() == 2
    screenshot(browser, "console_query_confirm")
    browser.find_element(By.ID, "confirm-run").click()
    summary = _wait(browser).until(ec.presence_of_element_located((By.ID, "result-summary")))
    assert summary.text.startswith("Statement ran: table dropped in "), summary.text
    assert f"{namespace}.scratch" not in [".".join(t) for t in lake.catalog.list_tables(namespace)]
