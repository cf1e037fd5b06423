"""What a governed principal can make lakehouse say: only what it may see.

Found by attacking governance as alice (a row filter on customers without email,
open_t whole, nothing of secret nor of a second namespace), each fixed in the
library: the hint of a missing table or namespace, the errors of a query with
--as-of, row counts (describe, history, the console's timeline) behind a row
filter, `lakehouse sync status` / `sync list` (and the sync commands that act as the
stack), the audit log (her own decisions only), and a CSV download after a revoke.
One console process acting as alice serves the page checks (plain HTTP).
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.config import settings_environment
from lakehouse.errors import AccessDeniedError, TableNotFoundError
from lakehouse.governance import store
from lakehouse.governance.policy import (
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
)
from lakehouse.governance.table_view import HIDDEN
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.console import ConsoleService
from tests.integration.conftest import CLI

pytestmark = [pytest.mark.integration]
NS = "gov_breaker"
HIDDEN_NS = "gov_breaker_hidden"
SECRET = "payroll_secret"  # a name alice must never read in an answer
CUSTOMERS = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "name": ["Ada", "Bo", "Carl"],
    "email": ["ada@x.eu", "bo@y.us", "carl@z.eu"],
    "region": ["EU", "US", "EU"],
})  # fmt: skip
POLICY = Policy(
    principals=(Principal(name="alice"),),
    data_cells_filters=(DataCellsFilter(name="eu", table=f"{NS}.customers", row_filter="region = 'EU'",
                                        excluded_columns=("email",)),),
    grants=(Grant(principal="alice", permissions=(Permission.SELECT,),
                  resource=Resource(data_cells_filter="eu")),
            Grant(principal="alice", permissions=(Permission.SELECT,),
                  resource=Resource(table=f"{NS}.open_t"))),
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def alice(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """alice's governed settings (her own home holds the policy) on the session's
    catalog and S3, over the scenario's tables."""
    settings = stack.model_copy(update={
        "home": tmp_path_factory.mktemp("breaker"), "console_port": free_port(),
        "governance_enabled": True, "principal": "alice",
    })  # fmt: skip
    tables = {f"{NS}.customers": CUSTOMERS, f"{NS}.open_t": pa.table({"y": [1, 2]}),
              f"{NS}.{SECRET}": pa.table({"x": [1]}), f"{HIDDEN_NS}.{SECRET}": pa.table({"x": [1]})}  # fmt: skip
    with Lakehouse(stack) as admin:
        for name, data in tables.items():
            admin.catalog.create_namespace_if_not_exists(name.split(".")[0])
            if admin.catalog.table_exists(name):
                admin.catalog.purge_table(name)
            admin.ingest(data, name)
    store.update(settings, lambda _: POLICY)
    yield settings
    with Lakehouse(stack) as admin:
        for namespace in (NS, HIDDEN_NS):
            for table in admin.tables(namespace):
                admin.catalog.purge_table(table)
            admin.catalog.drop_namespace(namespace)


def alice_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI as alice (her settings in the environment, nothing else's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= settings_environment(settings)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def test_a_missing_table_or_namespace_names_only_what_alice_sees(alice: Settings) -> None:
    with Lakehouse(alice) as lake:
        with pytest.raises(TableNotFoundError) as missing:
            lake.describe(f"{NS}.nope")
        assert missing.value.hint == f"Tables in {NS}: {NS}.customers, {NS}.open_t."
        for call in (
            lambda: lake.describe(f"{HIDDEN_NS}.nope"),
            lambda: lake.history(f"{HIDDEN_NS}.nope"),
        ):
            with pytest.raises(TableNotFoundError) as elsewhere:
                call()
            assert SECRET not in f"{elsewhere.value.message} {elsewhere.value.hint}"
        # a namespace she sees nothing of answers as one that does not exist
        assert lake.tables(HIDDEN_NS) == [] == lake.tables("gov_breaker_no_such_namespace")
        assert lake.tables(NS) == [f"{NS}.customers", f"{NS}.open_t"]
        # --as-of looks tables up before the query is decided: her refusal comes first
        with pytest.raises(AccessDeniedError):
            lake.sql(f"SELECT * FROM {NS}.{SECRET}", as_of=123)
        with pytest.raises(TableNotFoundError) as travel:
            lake.sql(f"SELECT * FROM {HIDDEN_NS}.nope", as_of="2020-01-01T00:00:00")
        assert SECRET not in f"{travel.value.message} {travel.value.hint}"
    answer = alice_cli(alice, "describe", f"{NS}.nope")
    assert answer.returncode == 1 and SECRET not in answer.stdout + answer.stderr
    assert f"Tables in {NS}: {NS}.customers, {NS}.open_t." in answer.stderr


def test_row_counts_are_hidden_behind_a_row_filter(stack: Settings, alice: Settings) -> None:
    """3 customers stored, 2 shown to alice: a count of 3 would tell her one is hidden."""
    with Lakehouse(alice) as lake:
        described = lake.describe(f"{NS}.customers")
        assert (described["row_count"], described["stored_records"]) == (None, None)
        assert described["row_count_method"] == HIDDEN
        assert [c["name"] for c in described["schema"]] == ["id", "name", "region"]
        history = lake.history(f"{NS}.customers")
        assert history and all(
            (s.added_records, s.total_records, s.stored_records, s.count_method)
            == (None, None, None, HIDDEN) for s in history
        )  # fmt: skip
        whole = lake.history(f"{NS}.open_t")  # read whole: its counts are hers
        assert [(s.added_records, s.total_records) for s in whole] == [(2, 2)]
        assert lake.describe(f"{NS}.open_t")["row_count"] == 2
    with Lakehouse(stack) as admin:
        assert admin.describe(f"{NS}.customers")["row_count"] == 3
    printed = alice_cli(alice, "history", f"{NS}.customers")
    assert printed.returncode == 0, printed.stderr
    assert "hidden" in printed.stdout and " 3 " not in printed.stdout


def _integrations(settings: Settings) -> None:
    """Three Iceberg -> OpenSearch integrations in alice's home, each failed with a
    last error holding a source value: over open_t (hers whole), customers (hers
    filtered), the secret table (not hers)."""
    from lakehouse.sync.integrations import Integration, IntegrationStore
    from lakehouse.sync.status import StatusStore, SyncStatus

    integrations = IntegrationStore(settings)
    for name, table in (("brk-open", "open_t"), ("brk-eu", "customers"), ("brk-secret", SECRET)):
        integrations.create(Integration(name=name, source="iceberg", target="opensearch",
                                        tables=(f"{NS}.{table}",)))  # fmt: skip
    for name, integration in integrations.all().items():
        StatusStore(settings).write(SyncStatus(
            name=name, state="failed", last_error="row bo@y.us refused", last_error_at=time.time(),
            generation=integration.generation))  # fmt: skip


def test_sync_status_and_list_show_alice_what_the_console_shows(alice: Settings) -> None:
    import json

    from lakehouse.sync.integrations import IntegrationStore

    _integrations(alice)
    status = alice_cli(alice, "sync", "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert sorted(rows) == ["brk-eu", "brk-open"]
    assert rows["brk-open"]["last_error"] == "row bo@y.us refused"  # a table she reads whole
    assert rows["brk-eu"]["last_error"] == "(hidden)"  # a US row behind her EU filter
    printed = alice_cli(alice, "sync", "status")
    assert "brk-secret" not in printed.stdout + printed.stderr
    assert "1 integration(s) not shown" in printed.stderr
    listed = alice_cli(alice, "sync", "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["brk-eu", "brk-open"]
    assert SECRET not in listed.stdout
    # an integration reads and writes as the stack: deleting (or creating one that
    # copies a table she may not read to OpenSearch) is the admin's
    deleted = alice_cli(alice, "sync", "delete", "brk-secret", "--drop-targets")
    assert deleted.returncode == 1 and "Access denied" in deleted.stderr, deleted.stderr
    assert "brk-secret" in IntegrationStore(alice).all()
    # the audit log names others' tables, columns and filters: she reads her own only
    from lakehouse.governance.audit import record

    record(alice, "bob", "library", f"{NS}.{SECRET}", ("x",), (), True, None, action="SELECT")
    audit = alice_cli(alice, "audit", "--json")
    decisions = [json.loads(line) for line in audit.stdout.splitlines()]
    assert {d["principal"] for d in decisions} == {"alice"}, audit.stderr
    assert any(d["action"] == "SYNC_DELETE" and not d["allowed"] for d in decisions)
    others = alice_cli(alice, "audit", "--principal", "admin")
    assert others.returncode == 1 and "only its own decisions" in others.stderr


@pytest.fixture(scope="module")
def alice_console(alice: Settings) -> Iterator[str]:
    """A console process acting as alice."""
    runtime = LocalRuntime(alice)
    runtime.start_service(ConsoleService(alice), timeout=120)
    try:
        yield f"http://{alice.client_host}:{alice.console_port}"
    finally:
        runtime.stop("console")


def fetch(url: str, data: bytes | None = None) -> tuple[int, str]:
    """(status, body) of a GET, or of a POST of ``data`` from the console's own page."""
    origin = "/".join(url.split("/")[:3])
    request = urllib.request.Request(url, data=data, headers={"Origin": origin} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_the_console_timeline_hides_counts_and_a_revoke_stops_a_download(
    alice: Settings, alice_console: str
) -> None:
    code, page = fetch(f"{alice_console}/catalog/{NS}/customers")
    assert code == 200, page
    assert 'id="counts-hidden"' in page and 'id="timeline"' not in page
    snapshot_rows = re.findall(r'<tr data-snapshot="\d+".*?</tr>', page, re.S)
    cells = [html.unescape(re.sub(r"<[^>]+>", " ", row)) for row in snapshot_rows]
    assert cells and all("hidden" in row and " 3 " not in row for row in cells)
    code, whole = fetch(f"{alice_console}/catalog/{NS}/open_t")
    assert code == 200 and 'id="counts-hidden"' not in whole

    form = urllib.parse.urlencode({"sql": f"SELECT * FROM {NS}.open_t", "engine": "duckdb"})
    code, result = fetch(f"{alice_console}/query", form.encode())
    assert code == 200, result
    link = re.search(r"/query/results/[\w-]+\.csv", result)
    assert link is not None, result
    code, csv = fetch(alice_console + link.group(0))
    assert code == 200 and csv.splitlines()[0] == '"y"'
    store.update(alice, lambda policy: policy.model_copy(update={"grants": policy.grants[:1]}))
    try:
        code, refused = fetch(alice_console + link.group(0))
        assert code != 200 and "earlier governance policy" in refused
    finally:
        store.update(alice, lambda _: POLICY)
