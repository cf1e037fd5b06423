"""Superset (the optional ``dashboards`` service) over the session's Trino, in a real browser.

The session stack starts Superset once, with an empty lake: "Customer insights"
is provisioned before its tables exist, and a chart's query then fails with
Trino's error naming the table. The module then fills the lake (the retail
sample, its copy under ``shop.*``, the name the Zero-ETL sync of the PostgreSQL
shop writes, and a small ``ml.customer_segments``): the same dataset reads the
table at once, with no restart. It then restarts the service through the CLI,
which provisions again without duplicating anything; ``ml.product_recommendations``
is still absent and its chart shows Trino's error naming it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lakehouse import Lakehouse, Settings
from lakehouse.services.dashboards import DashboardsService, assert_no_per_home_rows, template_path
from lakehouse.services.dashboards_provision import (
    DASHBOARD_SLUG,
    DashboardsError,
    SupersetClient,
    load_assets,
    provision,
)
from lakehouse.testing.browser import console_errors, screenshot
from tests.integration.conftest import run_cli

pytestmark = [
    pytest.mark.integration, pytest.mark.lakehouse_dashboards, pytest.mark.lakehouse_trino,
]  # fmt: skip
SHOP_TABLES = ("customers", "products", "orders", "order_items")
CHART_HOLDER = '[data-test="dashboard-component-chart-holder"]'
# How Superset 6 marks a chart that failed: its ErrorAlert (an antd error Alert,
# role="alert") inside the chart's holder; test_a_failing_chart_is_marked_with_trinos_error
# proves the selector finds one.
CHART_ERROR = '[role="alert"], .ant-alert-error'
LOADING = '[data-test="loading-indicator"]'


@dataclass
class Insights:
    service: DashboardsService
    client: SupersetClient
    second_start_s: float
    read_before_restart: dict[str, int]


def fill_lake(lake: Lakehouse) -> None:
    """shop.* as the sync writes it (copied from the sample), and customer segments."""
    for table in SHOP_TABLES:
        rows = lake.catalog.load_table(f"retail.{table}").scan().to_arrow()
        lake.ingest(rows, f"shop.{table}", mode="overwrite")
    customers = lake.catalog.load_table("retail.customers").scan().to_arrow()
    segments = pa.table(
        {"customer_id": customers["customer_id"], "segment_name": customers["segment"]}
    )
    lake.ingest(segments, "ml.customer_segments", mode="overwrite")


@pytest.fixture(scope="module")
def insights(stack: Settings, sample: dict[str, int]) -> Iterator[Insights]:
    service = DashboardsService(stack)
    assert service.health().ok, service.health().detail
    client = SupersetClient(service.url, stack.access_key, stack.secret_key)
    with Lakehouse(stack) as lake:
        made = [t for t in (*(f"shop.{t}" for t in SHOP_TABLES), "ml.customer_segments")
                if not lake.catalog.table_exists(t)]  # fmt: skip
        if all(t in made for t in (f"shop.{t}" for t in SHOP_TABLES)):
            with pytest.raises(DashboardsError, match="does not exist") as absent:
                orders_by_status(client)  # provisioned before shop.orders existed
            assert "shop" in absent.value.message  # Trino: Schema 'shop' does not exist
        fill_lake(lake)
    read_before_restart = orders_by_status(client)  # the same Superset, no restart
    run_cli("down", "--services", "dashboards")
    started = time.monotonic()
    run_cli("up", "--services", "dashboards", "--no-sample")
    second_start_s = time.monotonic() - started
    print(f"second start of the dashboards service: {second_start_s:.1f} s")
    yield Insights(service, SupersetClient(service.url, stack.access_key, stack.secret_key),
                   second_start_s, read_before_restart)  # fmt: skip
    # The session's lake is shared: shop.* is where other tests' Zero-ETL integrations
    # write (a copy left here broke the 02_zero_etl notebook's snapshot).
    with Lakehouse(stack) as lake:
        for table in made:
            lake.catalog.drop_table(table)


def all_of(client: SupersetClient, kind: str) -> list[dict[str, Any]]:
    return list(client.get(f"/api/v1/{kind}/", q="(page_size:100)")["result"])


def test_a_second_start_updates_the_objects_without_duplicating_them(insights: Insights) -> None:
    assets = load_assets()
    wanted = {kind: sum(path.startswith(f"{kind}s/") for path in assets)
              for kind in ("database", "dataset", "chart", "dashboard")}  # fmt: skip
    found = {kind: len(all_of(insights.client, kind)) for kind in wanted}
    assert found == wanted
    titles = {chart["slice_name"] for chart in all_of(insights.client, "chart")}
    assert "Revenue by segment" in titles and "Top products" in titles
    assert titles == {a["slice_name"] for p, a in assets.items() if p.startswith("charts/")}
    coverage = next(d for d in all_of(insights.client, "dataset")
                    if d["table_name"] == "recommendation_coverage")  # fmt: skip
    with pytest.raises(DashboardsError, match=r"product_recommendations.*does not exist"):
        insights.client.post("/api/v1/chart/data", {
            "datasource": {"id": coverage["id"], "type": "table"},
            "queries": [{"columns": [], "row_limit": 1, "metrics": [
                {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}]}],
            "result_format": "json", "result_type": "full",
        })  # fmt: skip
    setup = insights.service.data_dir / "setup.json"
    assert setup.is_file() and oct(insights.service.secret_file.stat().st_mode & 0o777) == "0o600"


def test_the_home_started_from_the_cached_template_which_holds_no_secret(
    insights: Insights,
) -> None:
    service = insights.service
    template = template_path(service.settings)
    assert template.is_file()
    assert_no_per_home_rows(template)  # no user, connection, key-value entry or object
    assert service.secret_file.read_bytes().strip() not in template.read_bytes()
    with closing(sqlite3.connect(service.database)) as conn:
        users = conn.execute("SELECT username FROM ab_user").fetchall()
        migrated = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert users == [(service.settings.access_key,)]  # the home's own admin only
    with closing(sqlite3.connect(template)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == migrated


@pytest.fixture(scope="module")
def logged_in(insights: Insights, browser: Any) -> Iterator[Any]:
    from lakehouse.testing.browser import WINDOW

    browser.set_window_size(1600, 2200)
    log_in(browser, insights.service)
    yield browser
    # The session's one browser goes on to other modules' pages as it was.
    browser.get("about:blank")
    browser.set_window_size(*WINDOW)


LOGIN_ATTEMPTS, LOGIN_WAIT_S = 3, 60


def log_in(browser: Any, service: DashboardsService) -> None:
    """Log in through Superset's login form, as a user does, trying again as a user would.

    A CI run once stayed on /login for 120 s after one click, with nothing to say why:
    each attempt that fails keeps a screenshot, and the failure carries the page's text
    and the service's log lines about /login.
    """
    settings, seen = service.settings, []
    for attempt in range(1, LOGIN_ATTEMPTS + 1):
        browser.get(f"{service.url}/login/")
        WebDriverWait(browser, 120).until(lambda d: d.find_elements(By.ID, "password"))
        for field, value in (("username", settings.access_key), ("password", settings.secret_key)):
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        try:
            WebDriverWait(browser, LOGIN_WAIT_S).until(lambda d: "/login" not in d.current_url)
            return
        except TimeoutException:
            screenshot(browser, f"dashboards_login_attempt_{attempt}")
            seen.append(browser.find_element(By.TAG_NAME, "body").text[:300])
    log = settings.home_dir / "logs" / "dashboards.log"
    lines = [x for x in log.read_text(errors="replace").splitlines() if "/login" in x]
    pytest.fail(f"still on /login after {LOGIN_ATTEMPTS} attempts; page: {seen}; "
                f"log: {lines[-8:]}")  # fmt: skip


def wait_for_charts(driver: Any, count: int) -> list[Any]:
    """The chart holders, once ``count`` are there and none is loading any more."""
    WebDriverWait(driver, 180).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, CHART_HOLDER)) >= count
    )
    WebDriverWait(driver, 300).until(lambda d: not d.find_elements(By.CSS_SELECTOR, LOADING))
    return list(driver.find_elements(By.CSS_SELECTOR, CHART_HOLDER))


def test_the_dashboard_renders_every_chart_without_an_error(
    insights: Insights, logged_in: Any
) -> None:
    driver = logged_in
    driver.get(f"{insights.service.url}/superset/dashboard/{DASHBOARD_SLUG}/")
    charts = sum(path.startswith("charts/") for path in load_assets())
    holders = wait_for_charts(driver, charts)
    assert len(holders) == charts
    for holder in holders:
        title = holder.find_element(By.CSS_SELECTOR, '[data-test="slice-header"]').text
        errors = [e.text for e in holder.find_elements(By.CSS_SELECTOR, CHART_ERROR)]
        drawn = holder.find_elements(
            By.CSS_SELECTOR, "canvas, table, .superset-legacy-chart-big-number"
        )
        if title == "Recommendation coverage":  # ml.product_recommendations is absent
            assert errors, f"{title} hid Trino's error: {holder.text[:200]}"
            continue
        assert not errors, f"{title}: {errors}"
        assert drawn, f"{title} drew nothing: {holder.text[:200]}"
    # After the checks: ECharts' bars have finished growing by then.
    screenshot(driver, "dashboards_customer_insights")
    # The absent table's chart request is answered 400 (checked above, chart by chart).
    logged = console_errors(driver)  # drains the browser's log: read once
    # (console_errors keeps SEVERE entries only; their text does not say "SEVERE".)
    unexpected = [e for e in logged if "favicon" not in e and "/api/v1/chart/data" not in e]
    assert not unexpected, unexpected
    # No usage pixel to scarf.sh: Superset still draws it, with a blank inline image.
    assert driver.find_elements(By.CSS_SELECTOR, 'img[src^="data:image/gif"][width="0"]')
    requested = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert requested and not [url for url in requested if "scarf" in url]
    assert not [e for e in logged if "scarf" in e.lower()]


def orders_by_status(client: SupersetClient) -> dict[str, int]:
    """The orders_by_status dataset's numbers, as a chart asks Superset for them."""
    dataset = next(d for d in all_of(client, "dataset") if d["table_name"] == "orders_by_status")
    answer = client.post("/api/v1/chart/data", {
        "datasource": {"id": dataset["id"], "type": "table"},
        "queries": [{"columns": ["status"], "row_limit": 100, "orderby": [],
                     "metrics": [{"expressionType": "SQL", "sqlExpression": "SUM(orders)", "label": "orders"}]}],
        "result_format": "json", "result_type": "full",
    })  # fmt: skip
    return {row["status"]: row["orders"] for row in answer["result"][0]["data"]}


def test_a_charts_numbers_are_the_lakes_through_trino(insights: Insights, stack: Settings) -> None:
    charted = orders_by_status(insights.client)
    with Lakehouse(stack) as lake:
        lake_rows = lake.sql(
            "SELECT status, count(*) AS orders FROM shop.orders GROUP BY status", engine="trino"
        ).to_pylist()
    assert charted == {row["status"]: row["orders"] for row in lake_rows}
    assert sum(charted.values()) == sample_orders(stack)
    # Provisioned before shop.orders existed, read once it did, before any restart.
    assert insights.read_before_restart == charted


def sample_orders(stack: Settings) -> int:
    with Lakehouse(stack) as lake:
        return len(
            lake.catalog.load_table("retail.orders").scan(selected_fields=("order_id",)).to_arrow()
        )


def test_a_bad_trino_connection_is_refused_with_the_reason(
    insights: Insights, stack: Settings
) -> None:
    before = {chart["slice_name"] for chart in all_of(insights.client, "chart")}
    dead = stack.model_copy(update={"trino_port": 1})
    with pytest.raises(DashboardsError) as raised:
        provision(dead, insights.service.url)
    assert "Superset cannot reach Trino at trino://lakehouse@127.0.0.1:1/lake" in str(raised.value)
    assert "Connection refused" in str(raised.value) and "lakehouse status" in str(
        raised.value.hint
    )
    databases = all_of(insights.client, "database")
    assert [d["database_name"] for d in databases] == ["Lakehouse (Trino)"]  # nothing imported
    assert {chart["slice_name"] for chart in all_of(insights.client, "chart")} == before


@pytest.fixture
def broken_chart(insights: Insights) -> Iterator[int]:
    """A chart whose query Trino refuses (a column the dataset lacks); removed afterwards."""
    client = insights.client
    dataset = next(d for d in all_of(client, "dataset") if d["table_name"] == "orders_by_status")
    metric = {"expressionType": "SQL", "sqlExpression": "SUM(no_such_column)", "label": "broken"}
    chart = client.post("/api/v1/chart/", {
        "slice_name": "Broken", "viz_type": "big_number_total", "datasource_id": dataset["id"],
        "datasource_type": "table", "params": json.dumps({"metric": metric}),
    })["id"]  # fmt: skip
    yield chart
    client.session.delete(f"{client.url}/api/v1/chart/{chart}", timeout=60)


def test_a_failing_chart_is_marked_with_trinos_error(
    insights: Insights, logged_in: Any, broken_chart: int
) -> None:
    """The selector the dashboard test finds no errors with does find a failed chart."""
    driver = logged_in
    driver.get(f"{insights.service.url}/explore/?slice_id={broken_chart}")
    WebDriverWait(driver, 180).until(lambda d: d.find_elements(By.CSS_SELECTOR, CHART_ERROR))
    screenshot(driver, "dashboards_failed_chart")
    shown = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, CHART_ERROR))
    assert "no_such_column" in shown, shown
