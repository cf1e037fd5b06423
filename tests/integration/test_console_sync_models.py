"""The console's Zero-ETL and Models pages in a real browser, over a real sync and a
real MLflow registry. Few page loads: CI time matters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lakehouse import Lakehouse, Settings
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.dead_letter_pages import PAGE_SIZE
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.lag_history import samples
from lakehouse.testing.browser import console_errors, screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_console,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_mlflow,
]
WAIT_SECONDS = 60
REFUSED = PAGE_SIZE + 5  # two pages of dead letters


def _console(stack: Settings) -> str:
    return f"http://{stack.client_host}:{stack.console_port}"


def _drawn(browser: Any, chart_id: str) -> None:
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.find_element(By.ID, chart_id).get_attribute("data-rendered")
    )
    errors = [e for e in console_errors(browser) if "/favicon.ico" not in e]
    assert errors == []


@pytest.fixture
def integration(stack: Settings, postgres_dsn: str) -> Iterator[Integration]:
    """postgres -> iceberg: ``refused`` rows are NaN, which Iceberg's decimal cannot
    hold (each a dead letter); ``kept`` rows arrive."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for table in ("refused", "kept"):
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, price numeric(10,2))")
        conn.execute(f"INSERT INTO refused SELECT i, 'NaN' FROM generate_series(1, {REFUSED}) i")
        conn.execute("INSERT INTO kept SELECT i, i FROM generate_series(1, 3) AS i")
    database = str(conninfo_to_dict(postgres_dsn)["dbname"])
    declared = Integration(name=f"console-{database[-8:]}", source="postgres", target="iceberg",
                           tables=("refused", "kept"), database=database,
                           namespace=database)  # fmt: skip
    IntegrationStore(stack).create(declared)
    yield declared
    delete_integration(stack, declared.name, drop_targets=True)


def test_zero_etl_shows_an_integration_its_lag_and_its_dead_letters(
    stack: Settings, lake: Lakehouse, postgres_dsn: str, integration: Integration, browser: Any
) -> None:
    name = integration.name
    assert lake.sync(name).dead_letters == REFUSED
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO kept VALUES (10, 1)")
    lake.sync(name)
    assert len(samples(stack, name)) >= 2  # the runner recorded its passes

    browser.get(f"{_console(stack)}/zero-etl")
    _drawn(browser, "lag-chart")
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-integration='{name}']")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "postgres -> iceberg"
    assert cells[7] == f"{REFUSED:,}"  # dead letters, as `sync status` counts them
    assert cells[3] != "-"  # a position was reached
    screenshot(browser, "console_zero_etl")

    row.find_element(By.LINK_TEXT, name).click()
    _drawn(browser, "lag-chart")
    count = browser.find_element(By.ID, "dead-letter-count").text
    assert count.startswith(f"{REFUSED:,} dead letters, newest first; 1\u2013{PAGE_SIZE} shown")
    letters = browser.find_elements(By.CSS_SELECTOR, "#dead-letter-rows tbody tr")
    assert len(letters) == PAGE_SIZE
    assert all("refused" in letter.text for letter in letters)
    screenshot(browser, "console_zero_etl_integration")

    browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: "page=2" in b.current_url)
    letters = browser.find_elements(By.CSS_SELECTOR, "#dead-letter-rows tbody tr")
    keys = {r.find_elements(By.TAG_NAME, "td")[2].text for r in letters}
    assert len(letters) == REFUSED - PAGE_SIZE and len(keys) == len(letters)
    assert not browser.find_elements(By.CSS_SELECTOR, "a[rel=next]")


def test_models_shows_a_registered_model_its_metrics_and_lineage(
    stack: Settings, lake: Lakehouse, namespace: str, browser: Any
) -> None:
    from sklearn.linear_model import LinearRegression

    from lakehouse.ml.tracking import training_run

    table = f"{namespace}.points"
    lake.ingest(pa.table({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 3.0, 5.0, 7.0]}), table)
    snapshot = lake.table(table).current_snapshot().snapshot_id  # type: ignore[union-attr]
    model_name = f"console_{namespace[-20:]}"
    with training_run(lake, "tests-console", [table]) as run:
        frame = run.read(table).to_pandas()
        model = LinearRegression().fit(frame[["x"]], frame["y"])
        run.log_metrics({"slope": float(model.coef_[0])})
        run.register_model(model, model_name, "sklearn", input_example=frame[["x"]].head(2))

    browser.get(f"{_console(stack)}/models")
    section = browser.find_element(By.CSS_SELECTOR, f"section[data-model='{model_name}']")
    screenshot(browser, "console_models")
    version = section.find_element(By.CSS_SELECTOR, "tr[data-version='1']")
    assert "slope 2" in version.find_element(By.CSS_SELECTOR, ".metrics").text
    assert version.find_element(By.CSS_SELECTOR, ".lineage").text == f"{table} @ {snapshot}"
    link = version.find_element(By.CSS_SELECTOR, "td a").get_attribute("href") or ""
    assert link.startswith(stack.mlflow_uri) and f"/models/{model_name}/versions/1" in link
    lineage = version.find_element(By.CSS_SELECTOR, ".lineage a").get_attribute("href") or ""
    assert lineage.endswith(f"/catalog/{namespace}/points?snapshot={snapshot}")
