"""The governance CLI against the session's catalog: grant, revoke and list through
the real `lakehouse` command; bad input changes nothing (the stored policy compared
byte for byte); the demo, export and import; and the audit table in Iceberg, each
spooled batch committed once even when a flush is cut short after its commit.

Each test keeps its policy in a home of its own (the session's catalog and S3, not
its policy), so other tests' policies are untouched."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lakehouse import Lakehouse, Settings
from lakehouse.cli import main
from lakehouse.governance import audit, store
from lakehouse.sync.iceberg_expire import Retention
from tests.integration.conftest import CLI

pytestmark = pytest.mark.integration


@pytest.fixture
def home(stack: Settings, tmp_path: Path) -> Settings:
    return stack.model_copy(update={"home": tmp_path / "home"})


def lakehouse(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKEHOUSE_HOME": str(settings.home_dir)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def ok(settings: Settings, *args: str) -> str:
    result = lakehouse(settings, *args)
    assert result.returncode == 0, f"lakehouse {' '.join(args)}: {result.stderr}"
    return result.stdout


def in_process(settings: Settings, *args: str) -> tuple[int, str, str]:
    """The CLI run in this process (a subprocess per case costs seconds here): exit
    code, stdout and stderr."""
    result = CliRunner().invoke(main, ["--home", str(settings.home_dir), *args])
    return result.exit_code, result.stdout, result.stderr


def ok_in_process(settings: Settings, *args: str) -> str:
    code, said, errors = in_process(settings, *args)
    assert code == 0, f"lakehouse {' '.join(args)}: {errors}"
    return said


def policy_bytes(settings: Settings) -> bytes:
    path = store.policy_path(settings)
    return path.read_bytes() if path.exists() else b""


def test_grant_list_and_revoke_through_the_cli(home: Settings, sample: dict[str, int]) -> None:
    ok(home, "principal", "add", "analyst", "--role", "analysts")
    said = ok(home, "grant", "SELECT", "ON", "TABLE", "retail.customers", "EXCLUDING", "email",
              "TO", "analysts", "WITH", "GRANT", "OPTION")  # fmt: skip
    assert "granted SELECT on retail.customers (all but email) to analysts" in said
    listed = json.loads(ok(home, "grants", "--principal", "analyst", "--json"))
    assert listed == [{"principal": "analysts", "permissions": ["SELECT"], "grant_option": True,
                       "resource": {"table": "retail.customers", "excluded_columns": ["email"]}}]  # fmt: skip
    assert json.loads(ok(home, "grants", "--table", "retail.orders", "--json")) == []
    ok(
        home,
        "revoke",
        "SELECT",
        "ON",
        "TABLE",
        "retail.customers",
        "EXCLUDING",
        "email",
        "FROM",
        "analysts",
    )
    assert json.loads(ok(home, "grants", "--json")) == []
    again = lakehouse(home, "revoke", "SELECT", "ON", "TABLE", "retail.customers", "EXCLUDING",
                      "email", "FROM", "analysts")  # fmt: skip
    assert again.returncode == 1 and "analysts holds no SELECT on retail.customers" in again.stderr


BAD_INPUT = {
    ("grant", "SELECT", "ON", "TABLE", "retail.nope", "TO", "analyst"): "No table retail.nope",
    ("grant", "SELECT", "ON", "TABLE", "retail.customers", "COLUMNS", "phone", "TO", "analyst"):
        "no column 'phone'",
    ("grant", "SELECT", "ON", "TABLE", "retail.orders", "TO", "mallory"): "Unknown principal",
    ("grant", "SELECT", "ON", "NAMESPACE", "nowhere", "TO", "analyst"): "No namespace nowhere",
    ("grant", "SELECT", "retail.orders", "TO", "analyst"): "Cannot read the grant",
    ("grant", "SELECT", "ON", "TABLE", "retail.orders", "TO", "analyst", "--as", "analyst"):
        "analyst has no SELECT WITH GRANT OPTION",
    ("filter", "create", "f", "--table", "retail.orders", "--where", "region = 'EU'"): "unknown column",
    ("mask", "set", "retail.orders.order_id", "hash", "--principal", "analyst"): "needs a text column",
    ("tag", "retail.customers.email", "pii=true"): "No LF-tag key 'pii'",
    ("principal", "add", "analyst"): "exists already",
}  # fmt: skip


def test_bad_input_changes_nothing(home: Settings, sample: dict[str, int]) -> None:
    ok(home, "principal", "add", "analyst")
    before = policy_bytes(home)
    for args, message in BAD_INPUT.items():
        code, _, said = in_process(home, *args)
        assert code == 1, args
        assert said.startswith("Error: ") and message in said, said
        assert said.count("Hint: ") == 1 and "Traceback" not in said
        assert policy_bytes(home) == before, args


def test_the_demo_exports_and_imports_as_it_was(home: Settings, sample: dict[str, int],
                                                tmp_path: Path) -> None:  # fmt: skip
    ok_in_process(home, "governance", "demo")
    shown = json.loads(ok_in_process(home, "governance", "show", "--json"))
    assert {p["name"] for p in shown["principals"]} >= {
        "analyst",
        "eu_analyst",
        "marketing",
        "data_engineer",
    }
    exported = tmp_path / "policy.yaml"
    ok_in_process(home, "governance", "export", str(exported))
    other = home.model_copy(update={"home": tmp_path / "other"})
    ok_in_process(other, "governance", "import", str(exported))
    strip = {"revision"}
    assert store.load_policy(other).model_dump(exclude=strip) == store.load_policy(home).model_dump(
        exclude=strip
    )
    # The demo's columns were bound to field ids, and the export carried them.
    assert store.load_policy(other).column_ids["retail.customers"]["email"] > 0
    broken = yaml.safe_load(exported.read_text())
    broken["data_cells_filters"][0]["table"] = "retail.gone"
    exported.write_text(yaml.safe_dump(broken))
    before = policy_bytes(other)
    code, _, said = in_process(other, "governance", "import", str(exported))
    assert code == 1 and "No table retail.gone" in said
    assert policy_bytes(other) == before


def test_audit_records_reach_the_iceberg_table_once(home: Settings) -> None:
    who = f"auditee_{uuid.uuid4().hex[:8]}"
    audit.record(home, who, "duckdb", "retail.orders", ["order_id"], ["row filter (x)"], True, "q1")
    audit.record(home, who, "trino", "retail.customers", [], [], False, "q2", reason="no SELECT")
    lines = ok(home, "audit", "--principal", who, "--json").splitlines()  # flushes first
    rows = [json.loads(line) for line in lines]
    assert [(r["engine"], r["allowed"], r["query_id"]) for r in rows] == [
        ("duckdb", True, "q1"), ("trino", False, "q2")]  # fmt: skip
    assert rows[0]["filters"] == ["row filter (x)"] and rows[1]["reason"] == "no SELECT"
    assert audit.pending(home) == 0
    denied = ok_in_process(home, "audit", "--principal", who, "--denied", "--json").splitlines()
    assert [json.loads(line)["query_id"] for line in denied] == ["q2"]
    assert ok_in_process(home, "audit", "--principal", who, "--since", "2999-01-01", "--json") == ""
    # A flush that died after its commit, before deleting its batch file: the batch is
    # found committed (its id is on the snapshot) and not committed again.
    with Lakehouse(home) as lake:
        table = lake.catalog.load_table(audit.TABLE)
        batch_ids = [
            s.summary.get(audit.BATCH_PROPERTY) for s in table.metadata.snapshots if s.summary
        ]
    replayed = audit.audit_dir(home) / f"{batch_ids[-1]}.jsonl"
    replayed.write_text(
        "".join(json.dumps({**r, "event_id": uuid.uuid4().hex}) + "\n" for r in rows)
    )
    assert audit.flush(home, wait=True) == 0 and not replayed.exists()
    assert len(ok_in_process(home, "audit", "--principal", who, "--json").splitlines()) == 2


def test_the_audit_table_keeps_a_bounded_history_and_every_record(
    home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "KEEP_SNAPSHOTS", 2)
    who = f"auditee_{uuid.uuid4().hex[:8]}"
    for query in range(6):  # a batch and a snapshot each (by this flush or the background one)
        audit.record(home, who, "duckdb", "retail.orders", [], [], True, f"q{query}")
        audit.flush(home, wait=True)
    with Lakehouse(home) as lake:
        kept = len(lake.catalog.load_table(audit.TABLE).metadata.snapshots)
    assert kept <= 2 + Retention(2, 0).margin
    assert [r["query_id"] for r in audit.read_log(home, principal=who).to_pylist()] == [
        f"q{i}" for i in range(6)
    ]
