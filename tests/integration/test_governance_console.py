"""The console acts as its principal and says so, in a real browser.

A second console process, governed, runs with ``principal = alice`` (its own home
holds the policy; the session's catalog and S3): every page names alice in its
header, the Catalog lists and shows only what alice may see (her columns, her rows,
masked, no data files), a table she may not see is refused with the reason, and the
Query page answers as alice. The session's own console (ungoverned) names the admin.

The same console's other pages: the query history shows alice only her own queries;
Zero-ETL shows an integration whose table she reads whole with its dead letters,
one whose table she reads filtered and masked with their count only, and neither
names nor opens one whose table she may not see; the Overview lists maintenance runs
of her tables only; Models shows a version's metrics
only over tables she reads whole, and hides a model of a table she may not see.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
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

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_console, pytest.mark.lakehouse_mlflow]
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
                  resource=Resource(data_cells_filter="eu")),
            Grant(principal="alice", permissions=(Permission.SELECT,),
                  resource=Resource(table=f"{NS}.open_t"))),
)  # fmt: skip
TABLES = {"customers": CUSTOMERS, "secret": pa.table({"x": [1]}), "open_t": pa.table({"y": [1]})}


DEAD_LETTERS = "lakehouse_sync.dead_letters"
SYNC_PREFIX = "govcon-"
# (integration, target table in NS or None for PostgreSQL -> OpenSearch): alice reads
# open_t whole, customers filtered and masked, secret not at all.
SYNCS = {"govcon-open": "open_t", "govcon-eu": "customers", "govcon-secret": "secret",
         "govcon-search": None}  # fmt: skip
LEAKED = "carl-secret@z.eu"  # a source value in every dead letter and last error


def _integrations(settings: Settings) -> None:
    """The four integrations in alice's home, each failed with one dead letter that
    holds ``LEAKED`` (written as a runner would: status file and dead-letter table)."""
    from lakehouse.sync.deadletters import DeadLetterTable
    from lakehouse.sync.integrations import Integration, IntegrationStore
    from lakehouse.sync.model import DeadLetter
    from lakehouse.sync.status import StatusStore, SyncStatus

    store = IntegrationStore(settings)
    for name, table in SYNCS.items():
        store.create(Integration(name=name, source="postgres",
                                 target="iceberg" if table else "opensearch",
                                 tables=(table or "orders",), namespace=NS))  # fmt: skip
    started = time.time() - 60
    for name, integration in store.all().items():
        StatusStore(settings).write(SyncStatus(
            name=name, state="failed", position="0/16B3748", dead_letters=1,
            last_error=f"row {LEAKED} refused", last_error_at=time.time(),
            generation=integration.generation, generation_started=started))  # fmt: skip
    with Lakehouse(settings.model_copy(update={"principal": None})) as admin:
        DeadLetterTable(admin.catalog).record([
            DeadLetter(name, SYNCS[name] or "orders", {"id": 3}, {"id": 3, "email": LEAKED},
                       f"cannot take {LEAKED}", "0/16B3748") for name in SYNCS
        ])  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def alice_settings(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A governed console's settings: alice, her own home (the policy), free port."""
    return stack.model_copy(update={
        "home": tmp_path_factory.mktemp("governed-console"), "console_port": free_port(),
        "governance_enabled": True, "principal": "alice",
    })  # fmt: skip


@pytest.fixture(scope="module")
def alice_console(stack: Settings, alice_settings: Settings) -> Iterator[str]:
    """The URL of a governed console acting as alice, over the scenario's tables."""
    settings = alice_settings
    with Lakehouse(stack) as admin:
        admin.catalog.create_namespace_if_not_exists(NS)
        for name, data in TABLES.items():
            if admin.catalog.table_exists(f"{NS}.{name}"):
                admin.catalog.purge_table(f"{NS}.{name}")
            admin.ingest(data, f"{NS}.{name}")
    store.update(settings, lambda _: POLICY)
    _integrations(settings)
    runtime = LocalRuntime(settings)
    runtime.start_service(ConsoleService(settings), timeout=120)
    try:
        yield f"http://{settings.client_host}:{settings.console_port}"
    finally:
        runtime.stop("console")
        with Lakehouse(stack) as admin:
            admin.table(DEAD_LETTERS).delete(f"integration LIKE '{SYNC_PREFIX}%'")
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
    assert rows(browser, "#namespaces") == [[NS, "2"]]  # not secret, no other namespace
    browser.get(f"{alice_console}/catalog/{NS}")
    assert [r[0] for r in rows(browser, "#tables")] == ["customers", "open_t"]

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

    browser.get(f"{alice_console}/catalog/{NS}/nope")  # the hint names only her tables
    assert "Tables you may see in gov_console: customers, open_t." in browser.page_source
    assert "secret" not in browser.find_element(By.TAG_NAME, "main").text

    browser.get(alice_console + "/query")
    editor = browser.find_element(By.ID, "sql")
    assert editor.get_attribute("value") == f'SELECT * FROM "{NS}"."customers" LIMIT 10'
    editor.clear()
    editor.send_keys(f"SELECT id, name FROM {NS}.customers ORDER BY id")
    browser.execute_script("window.lakehouseOldPage = true")
    editor.send_keys(Keys.CONTROL, Keys.ENTER)
    WebDriverWait(browser, 120).until(lambda d: d.execute_script(
        "return window.lakehouseOldPage === undefined && document.readyState === 'complete'"))  # fmt: skip
    assert rows(browser, "#result-grid") == [["1", "********lace"], ["3", "******auss"]]


def test_the_session_console_says_it_acts_as_the_admin(stack: Settings, browser: Any) -> None:
    from lakehouse.engines.history import QueryHistory, QueryRecord

    browser.get(f"http://{stack.client_host}:{stack.console_port}/catalog")
    assert texts(browser, "#acting") == [f"as {stack.governance_admin} · governance off"]
    QueryHistory(stack).record(QueryRecord(text="SELECT 'by bob' AS whose", engine="duckdb",
                                           started_at=time.time(), seconds=0.1, rows=1,
                                           principal="bob"))  # fmt: skip
    browser.get(f"http://{stack.client_host}:{stack.console_port}/query")
    assert "principal" in texts(browser, "#history thead th")  # everyone's, with who ran it
    assert ["bob", "SELECT 'by bob' AS whose"] in [[r[1], r[-1]] for r in rows(browser, "#history")]


@pytest.fixture(scope="module")
def models(alice_console: str, stack: Settings) -> dict[str, str]:
    """Three registered models (name by what alice may read of their tables): one
    reading and writing open_t, one reading customers, one reading secret."""
    from lakehouse.ml.tracking import lineage_tags, use_tracking_server

    use_tracking_server(stack)
    import mlflow

    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment("tests-governed-console").experiment_id
    suffix = str(time.time_ns())[-8:]
    named = {"open": f"govcon_open_{suffix}", "eu": f"govcon_eu_{suffix}",
             "secret": f"govcon_secret_{suffix}"}  # fmt: skip
    with Lakehouse(stack) as admin:
        snapshots = {t: admin.table(f"{NS}.{t}").current_snapshot().snapshot_id  # type: ignore[union-attr]
                     for t in TABLES}  # fmt: skip
    for kind, table in (("open", "open_t"), ("eu", "customers"), ("secret", "secret")):
        tags = lineage_tags({f"{NS}.{table}": snapshots[table]})
        run = client.create_run(experiment, tags=tags)
        client.log_metric(run.info.run_id, "leak_rate", 0.25)
        if kind == "open":
            client.log_param(run.info.run_id, f"lakehouse.output.{NS}.open_t.snapshot_id",
                             str(snapshots["open_t"]))  # fmt: skip
        client.set_terminated(run.info.run_id)
        client.create_registered_model(named[kind])
        client.create_model_version(named[kind], f"{run.info.artifact_uri}/model",
                                    run.info.run_id, tags=tags)  # fmt: skip
    return named


def test_alice_sees_only_her_history_integrations_and_models(
    alice_console: str, alice_settings: Settings, models: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    from lakehouse.engines.history import QueryHistory, QueryRecord
    from lakehouse.governance.audit import read_log

    for who, text in (("admin", f"SELECT * FROM {NS}.secret WHERE email = '{LEAKED}'"),
                      ("alice", f"SELECT 1 AS mine FROM {NS}.open_t")):  # fmt: skip
        QueryHistory(alice_settings).record(QueryRecord(
            text=text, engine="duckdb", started_at=time.time(), seconds=0.1, rows=1,
            principal=who))  # fmt: skip
    browser.get(alice_console + "/query")
    assert LEAKED not in browser.page_source  # the admin's query, never shown to alice
    assert f"SELECT 1 AS mine FROM {NS}.open_t" in texts(browser, "#history .history-query")
    assert "principal" not in texts(browser, "#history thead th")

    from lakehouse.lake.maintenance_policy import record_run

    for table in ("customers", "secret"):
        record_run(alice_settings, f"{NS}.{table}", "optimize", True, f"compacted {table}")
    browser.get(alice_console + "/")
    assert [r[0] for r in rows(browser, "#maintenance")] == [f"{NS}.customers"]
    assert texts(browser, "#maintenance-hidden")[0].startswith("1 run of tables you may not see")
    assert f"{NS}.secret" not in browser.page_source

    browser.get(alice_console + "/zero-etl")
    shown = sorted(r[0] for r in rows(browser, "#integrations") if r[0].startswith(SYNC_PREFIX))
    assert shown == ["govcon-eu", "govcon-open"]
    assert "integrations not shown to you" in texts(browser, "#hidden-integrations")[0]
    assert "govcon-secret" not in browser.page_source and f"{NS}.secret" not in browser.page_source
    eu = next(r for r in rows(browser, "#integrations") if r[0] == "govcon-eu")
    assert eu[7] == "1" and eu[8].startswith("(hidden)")  # the count, not the error's text
    assert LEAKED in browser.page_source  # govcon-open's last error: alice reads open_t whole

    since = dt.datetime.now(dt.UTC)
    browser.get(alice_console + "/zero-etl/govcon-eu")
    assert LEAKED not in browser.page_source and not browser.find_elements(
        By.ID, "dead-letter-rows"
    )
    hidden = texts(browser, "#dead-letters-hidden")[0]
    assert hidden.startswith("1 dead letter;") and f"whole of {NS}.customers" in hidden
    browser.get(alice_console + "/zero-etl/govcon-open")
    assert LEAKED in " ".join(texts(browser, "#dead-letter-rows tbody td"))
    for refused in ("govcon-secret", "govcon-search"):
        browser.get(f"{alice_console}/zero-etl/{refused}")
        assert f"alice may not see integration {refused}" in browser.page_source
        assert LEAKED not in browser.page_source and "Hint:" in browser.page_source
    log = read_log(alice_settings, "alice", since).to_pylist()
    decided = sorted((e["filters"][0], e["allowed"]) for e in log
                     if e["action"] == "READ_DEAD_LETTERS")  # fmt: skip
    assert decided == [(f"integration = '{n}'", n == "govcon-open") for n in sorted(SYNCS)]

    browser.get(alice_console + "/models")
    screenshot(browser, "governed-console-models")
    sections = {e.get_attribute("data-model") for e in
                browser.find_elements(By.CSS_SELECTOR, "section.model")}  # fmt: skip
    assert {models["open"], models["eu"]} <= sections and models["secret"] not in sections
    assert models["secret"] not in browser.page_source and texts(browser, "#hidden-models")
    opened = f"section[data-model='{models['open']}'] tr[data-version='1']"
    assert texts(browser, f"{opened} .metrics") == ["leak_rate 0.25"]
    assert texts(browser, f"{opened} .outputs")[0].startswith(f"{NS}.open_t @ ")
    eu_version = f"section[data-model='{models['eu']}'] tr[data-version='1']"
    assert "leak_rate" not in texts(browser, f"{eu_version} .metrics")[0]
    assert f"whole of {NS}.customers" in texts(browser, f"{eu_version} .metrics-hidden")[0]
