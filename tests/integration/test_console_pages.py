"""The console's Overview and Catalog pages, in a real browser against the real server.

The session stack runs the console service (marker ``lakehouse_console``) next
to s3, the catalog, Trino and Spark; pages are opened in the session's headless
Chromium and saved as screenshots. HTTP-level checks use urllib.
"""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings, load_settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from lakehouse.testing.browser import console_errors, screenshot
from lakehouse.testing.stack import port_settings

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_console]


def console_url(settings: Settings, path: str = "/") -> str:
    return f"http://127.0.0.1:{settings.console_port}{path}"


def fetch(url: str, **headers: str) -> tuple[int, str]:
    """(status, body) of a GET, errors included."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"sql=SELECT+1", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def open_page(browser: Any, url: str, name: str) -> None:
    """Load ``url``, wait until its charts (if any) drew, screenshot it, check the JS log."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "[...document.querySelectorAll('.chart')].every(c => c.dataset.rendered === 'true')"
        )
    )
    screenshot(browser, name)
    # An error page's own status is logged too; anything else is a broken page.
    errors = [e for e in console_errors(browser) if not e.startswith(f"{url} - ")]
    assert errors == [], name


def cells(browser: Any, selector: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, f"{selector} tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def test_overview_lists_each_service_with_health_pid_memory_and_uptime(
    stack: Settings, stack_services: list[str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, console_url(stack), "console_overview")
    rows = {r.get_attribute("data-service"): r for r in browser.find_elements(By.CSS_SELECTOR, "#services tbody tr")}  # fmt: skip
    for name in ("s3", "catalog", "console"):
        assert rows[name].get_attribute("data-state") == "up", rows[name].text
        cols = rows[name].find_elements(By.TAG_NAME, "td")
        assert cols[3].text.isdigit() and "MiB" in cols[4].text and cols[5].text, rows[name].text
    # A service this session's stack did not start (which ones depends on the tests
    # collected): the exact command to start it.
    absent = [
        name for name in ("postgres", "opensearch", "spark", "mlflow") if name not in stack_services
    ]
    for name in absent:
        assert rows[name].get_attribute("data-state") == "off", rows[name].text
        command = rows[name].find_element(By.CSS_SELECTOR, "code.start").text
        assert command == f"lakehouse --home {stack.home_dir} up --services {name}"
    cards = {c.get_attribute("data-ui"): c.text for c in browser.find_elements(By.CSS_SELECTOR, ".card")}  # fmt: skip
    assert set(cards) == {"Trino UI", "MLflow", "Dashboards", "JupyterLab"}
    for card, name in (("Dashboards", "dashboards"), ("JupyterLab", "jupyter")):
        if name in stack_services:
            assert "not started" not in cards[card], cards[card]
        else:
            assert f"up --with {name}" in cards[card], cards[card]


def nested_rows() -> pa.Table:
    address = pa.struct([("city", pa.string()), ("zip", pa.string())])
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "address": pa.array([{"city": "Oslo", "zip": "0150"}, {"city": "Bergen", "zip": "5003"},
                             None], address),
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
    })  # fmt: skip


def write_with_each_engine(lake: Lakehouse, namespace: str) -> dict[str, int]:
    """One table per writer in ``namespace``; returns table name -> rows written."""
    lake.ingest(nested_rows(), f"{namespace}.by_ingest")
    lake.duckdb(namespace).execute(
        "CREATE TABLE by_duckdb AS SELECT i AS id, 'row ' || i AS label FROM range(5) t(i)"
    )
    cursor = lake.trino(schema=namespace).cursor()
    cursor.execute(
        "CREATE TABLE by_trino (id bigint, info ROW(city varchar, zip varchar), ts timestamp(6)) "
        "WITH (partitioning = ARRAY['day(ts)'])"
    )
    cursor.fetchall()
    cursor.execute(
        "INSERT INTO by_trino VALUES (1, ROW('Oslo', '0150'), TIMESTAMP '2026-01-01 10:00:00'),"
        " (2, ROW('Rome', '00100'), TIMESTAMP '2026-01-02 11:00:00'),"
        " (3, ROW('Pisa', '56121'), TIMESTAMP '2026-01-02 12:00:00')"
    )
    cursor.fetchall()
    cursor.execute("DELETE FROM by_trino WHERE id = 2")  # a position delete file (merge-on-read)
    cursor.fetchall()
    spark = lake.spark()
    spark.sql(f"USE {lake.settings.catalog_name}.`{namespace}`").collect()
    spark.sql(
        "CREATE TABLE by_spark (id bigint, info struct<city:string>, ts timestamp) "
        "USING iceberg PARTITIONED BY (days(ts))"
    ).collect()
    spark.sql(
        "INSERT INTO by_spark VALUES (1, named_struct('city', 'Lima'), timestamp'2026-03-01 09:00:00'),"
        " (2, named_struct('city', 'Quito'), timestamp'2026-03-02 09:00:00'),"
        " (3, named_struct('city', 'Cusco'), timestamp'2026-03-03 09:00:00'),"
        " (4, named_struct('city', 'Puno'), timestamp'2026-03-04 09:00:00')"
    ).collect()
    return {"by_ingest": 3, "by_duckdb": 5, "by_trino": 2, "by_spark": 4}  # rows a reader sees


@pytest.mark.lakehouse_trino
@pytest.mark.lakehouse_spark
def test_catalog_pages_of_tables_written_by_each_engine(
    stack: Settings, browser: Any, lake: Lakehouse, namespace: str
) -> None:
    written = write_with_each_engine(lake, namespace)
    open_page(browser, console_url(stack, f"/catalog/{namespace}"), "console_catalog_tables")
    assert sorted(row[0] for row in cells(browser, "#tables")) == sorted(written)
    for table, count in written.items():
        open_page(browser, console_url(stack, f"/catalog/{namespace}/{table}"),
                  f"console_table_{table}")  # fmt: skip
        schema = {row[1].replace("\n", ""): row[2] for row in cells(browser, "#schema")}
        assert "id" in schema, (table, schema)
        assert len(cells(browser, "#sample-rows")) == count, table  # deletes applied
        files = cells(browser, "#data-files")
        assert files and all(row[0].startswith("s3://") for row in files)
        stored = sum(int(row[3].replace(",", "")) for row in files if row[1] == "data")
        deleted = sum(int(row[3].replace(",", "")) for row in files if row[1] != "data")
        assert (stored, deleted) == ((3, 1) if table == "by_trino" else (count, 0)), table
        snapshots = cells(browser, "#snapshots")
        assert snapshots and "current" in snapshots[0][1], table
    # Nested fields are rows of their own (the last page opened is by_spark).
    open_page(browser, console_url(stack, f"/catalog/{namespace}/by_ingest"), "console_nested")
    schema = {row[1].replace("\n", ""): row[2] for row in cells(browser, "#schema")}
    assert schema["address"] == "struct" and schema["address.city"] == "string"
    assert schema["tags"] == "list" and schema["tags.element"] == "string"
    status, body = fetch(console_url(stack, f"/catalog/{namespace}/by_trino"))
    assert status == 200 and "day(ts)" in body and "info.city" in body
    sample = body.split('id="sample-rows"')[1].split("</table>")[0]
    assert "position deletes" in body and "Pisa" in sample and "Rome" not in sample
    assert "in position deletes" in body  # the DELETE's row, counted in its snapshot
    files = body.split('id="data-files"')[1].split("</table>")[0]
    assert "<td>ts_day=2026-01-02</td>" in files  # partition values as the spec spells them


def test_time_travel_shows_the_older_sample(
    stack: Settings, browser: Any, lake: Lakehouse, namespace: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    first = lake.ingest(pa.table({"id": [1, 2], "word": ["old", "older"]}), f"{namespace}.travel")
    lake.ingest(pa.table({"id": [3], "word": ["new"]}), f"{namespace}.travel")
    lake.ingest(pa.table({"id": [9], "word": ["newest"]}), f"{namespace}.travel", mode="overwrite")
    # A column added later: older files lack it, and the sample shows NULL for them.
    lake.ingest(pa.table({"id": [10], "word": ["wider"], "extra": ["x"]}), f"{namespace}.travel")
    url = console_url(stack, f"/catalog/{namespace}/travel")
    open_page(browser, url, "console_travel_now")
    assert sorted(cells(browser, "#sample-rows")) == [["10", "wider", "x"], ["9", "newest", "NULL"]]
    picker = Select(browser.find_element(By.ID, "snapshot-picker"))
    labels = [option.text for option in picker.options]
    assert len(labels) == 4 and "(current)" in labels[0], labels
    picker.select_by_index(3)  # newest first: the oldest is last
    WebDriverWait(browser, 30).until(lambda d: "snapshot=" in d.current_url)
    open_page(browser, browser.current_url, "console_travel_then")
    table = browser.find_element(By.ID, "sample-rows")
    assert table.get_attribute("data-snapshot") == str(first.snapshot_id)
    assert sorted(cells(browser, "#sample-rows")) == [["1", "old"], ["2", "older"]]  # its schema
    files = cells(browser, "#data-files")  # the files of that snapshot, not today's
    assert [int(row[3]) for row in files] == [2]
    status, body = fetch(f"{url}?snapshot={first.snapshot_id}")
    assert status == 200 and ">older<" in body and ">newest<" not in body


def test_unknown_table_gives_a_404_page_that_leads_back(
    stack: Settings, browser: Any, lake: Lakehouse, namespace: str
) -> None:
    from selenium.webdriver.common.by import By

    lake.ingest(pa.table({"id": [1]}), f"{namespace}.known")
    url = console_url(stack, f"/catalog/{namespace}/no_such_table")
    status, body = fetch(url)
    assert status == 404
    assert f"Table {namespace}.no_such_table does not exist." in body
    assert "Hint:" in body and f"{namespace}.known" in body  # the hint lists what exists
    assert "Traceback" not in body
    open_page(browser, url, "console_table_404")
    browser.find_element(By.LINK_TEXT, "the Catalog").click()
    assert browser.current_url == console_url(stack, "/catalog")
    status, body = fetch(console_url(stack, "/no/such/page"))
    assert status == 404 and "Back to the Overview" in body
    # A name holding "/" (DuckDB writes one) is one path segment in links and routes.
    lake.duckdb(namespace).execute('CREATE TABLE "a/b c" AS SELECT 1 AS id')
    _, listing = fetch(console_url(stack, f"/catalog/{namespace}"))
    assert f'href="/catalog/{namespace}/a%2Fb%20c"' in listing
    status, body = fetch(console_url(stack, f"/catalog/{namespace}/a%2Fb%20c"))
    assert status == 200 and 'id="schema"' in body, body[:2000]
    status, body = fetch(f"{url.rsplit('/', 1)[0]}/known?snapshot=123")
    assert status == 404 and "has no snapshot 123" in body
    status, body = fetch(f"{url.rsplit('/', 1)[0]}/known?snapshot=abc")
    assert status == 400 and "snapshot" in body and "Traceback" not in body


def test_a_data_file_deleted_outside_lakehouse_is_named_with_a_hint(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    from lakehouse.errors import QueryError

    name = f"{namespace}.gone"
    lake.ingest(pa.table({"id": [1]}), name)
    lake.ingest(pa.table({"id": [2]}), name)
    table = lake.table(name)
    lost_path = sorted(task.file.file_path for task in table.scan().plan_files())[-1]
    table.io.delete(lost_path)  # as `aws s3 rm` would, behind the catalog's back
    status, body = fetch(console_url(stack, f"/catalog/{namespace}/gone"))
    assert status == 200, body[:3000]  # the metadata still shows
    assert 'id="schema"' in body and 'id="snapshots"' in body and 'id="properties"' in body
    error = body.split('id="sample-error"')[1].split("</section>")[0]
    assert f"{lost_path} of table {name} is missing from S3" in error and "Hint:" in error
    assert "missing from S3</span>" in body.split('id="data-files"')[1]
    with pytest.raises(QueryError) as raised:
        lake.sql(f"SELECT * FROM {name}")
    assert lost_path in raised.value.message and name in raised.value.message
    assert raised.value.hint and "lakehouse history" in raised.value.hint


def test_http_checks_static_files_and_a_foreign_site_refused(stack: Settings) -> None:
    status, body = fetch(console_url(stack, "/healthz"))
    assert (status, body) == (200, "ok")
    with urllib.request.urlopen(console_url(stack, "/static/vendor/plotly.min.js")) as answer:
        assert answer.headers["Content-Type"].startswith("text/javascript")
        assert len(answer.read()) > 1_000_000  # served from the plotly wheel
    own = f"http://127.0.0.1:{stack.console_port}"
    status, body = post(console_url(stack, "/healthz"), Origin="https://evil.example")
    assert status == 403 and "https://evil.example was refused" in body and "Hint:" in body
    status, _ = post(console_url(stack, "/healthz"))  # neither Origin nor Referer
    assert status == 403
    status, _ = post(console_url(stack, "/healthz"), Origin=own)
    assert status == 405  # past the guard: /healthz takes no POST
    status, _ = post(console_url(stack, "/healthz"), Referer=f"{own}/query")
    assert status == 405
    # DNS rebinding: a foreign name resolving to 127.0.0.1 gets no page.
    status, body = fetch(console_url(stack, "/"), Host=f"evil.example:{stack.console_port}")
    assert status == 403 and "evil.example" in body


@pytest.fixture
def second_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuntime]:
    """A throwaway stack (s3 and the console) in its own home on free ports."""
    for name in list(os.environ):
        if name.startswith("LAKEHOUSE_"):
            monkeypatch.delenv(name)
    env = isolated_stack_env(tmp_path / "home")
    settings = load_settings(home=Path(env["LAKEHOUSE_HOME"]), **port_settings(env))
    runtime = LocalRuntime(settings)
    try:
        yield runtime
    finally:
        runtime.down()


def test_a_stopped_service_shows_as_down_with_the_command_that_starts_it(
    second_stack: LocalRuntime, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    settings = second_stack.settings
    second_stack.up(["s3", "console"])
    s3_pid = second_stack.pid("s3")
    assert s3_pid is not None
    os.killpg(s3_pid, signal.SIGKILL)  # the s3 this test started, killed as a crash would
    open_page(browser, console_url(settings), "console_overview_s3_down")
    row = browser.find_element(By.CSS_SELECTOR, "#services tr[data-service='s3']")
    assert row.get_attribute("data-state") == "down", row.text
    assert row.find_element(By.CSS_SELECTOR, "code.start").text == (
        f"lakehouse --home {settings.home_dir} up --services s3"
    )
    assert f"lakehouse --home {settings.home_dir} logs s3" in row.text
    # Pages that need the lake say which service is down, with a hint; no traceback.
    status, body = fetch(console_url(settings, "/catalog"))
    assert status == 503 and "catalog service" in body and "Hint:" in body
    # The same start command as the Overview's, with this home.
    assert f"lakehouse --home {settings.home_dir} up --services catalog" in body
    assert "Traceback" not in body
