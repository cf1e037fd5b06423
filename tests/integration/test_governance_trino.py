"""Governance enforced by Trino itself: the policy as its file-based access control.

A second Trino coordinator, governed (its own home holds the policy and the rules),
reads the session's catalog and S3; the session's own Trino stays ungoverned. Alice
connects with the plain DB-API, as any client would, and through the library.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import trino

from lakehouse import Lakehouse, Settings
from lakehouse.config import settings_environment
from lakehouse.engines.trino import TrinoEngine
from lakehouse.errors import AccessDeniedError
from lakehouse.governance import audit, store
from lakehouse.governance.converge import stale_enforcers
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Resource,
    TagAssignment,
    TagKey,
)
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.trino import TrinoNode
from lakehouse.testing.lake import IsolatedLake, unique_name
from tests.integration.conftest import CLI

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_trino]

CUSTOMERS = pa.table({
    "id": pa.array([1, 2, 3, 4], pa.int64()),
    "name": ["Ada Lovelace", "Bo", "Carl Gauss", None],
    "email": ["ada@x.eu", "bo@y.us", "carl@z.eu", "dee@w.eu"],
    "phone": ["+44 1", "+1 2", "+49 3", "+33 4"],
    "region": ["EU", "US", "EU", "EU"],
})  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def governed(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a governed Trino coordinator on the session's catalog and S3."""
    settings = stack.model_copy(update={
        "home": tmp_path_factory.mktemp("governed"), "trino_port": free_port(),
        "trino_workers": 0, "governance_enabled": True, "principal": None,
        "trino_heap": "1G", "trino_query_memory": "512MB",
    })  # fmt: skip
    runtime = LocalRuntime(settings)
    runtime.start_service(TrinoNode(settings), timeout=300)  # a second JVM on a busy machine
    try:
        yield settings
    finally:
        runtime.stop("trino")


@pytest.fixture
def corner(lake: Lakehouse, request: pytest.FixtureRequest) -> Iterator[IsolatedLake]:
    """The test's own namespace, dropped afterwards."""
    isolated = IsolatedLake.create(lake, unique_name(request.node.name))
    yield isolated
    isolated.drop()


def set_policy(settings: Settings, policy: Policy) -> None:
    store.update(settings, lambda _: policy)


def as_user(settings: Settings, user: str, query: str, schema: str) -> list[tuple[object, ...]]:
    """Rows of ``query`` run by ``user`` over a plain Trino DB-API connection."""
    connection = trino.dbapi.connect(host=settings.client_host, port=settings.trino_port,
                                     user=user, catalog="lake", schema=schema)  # fmt: skip
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def denied(settings: Settings, user: str, query: str, schema: str) -> bool:
    try:
        as_user(settings, user, query, schema)
    except trino.exceptions.TrinoUserError as exc:
        return exc.error_name == "PERMISSION_DENIED"
    return False


def eu_policy(table: str) -> Policy:
    return Policy(
        grants=(
            Grant(
                principal="alice",
                permissions=(Permission.SELECT,),
                resource=Resource(data_cells_filter="eu_customers"),
            ),
        ),
        data_cells_filters=(
            DataCellsFilter(
                name="eu_customers",
                table=table,
                row_filter="region = 'EU'",
                excluded_columns=("phone",),
            ),
        ),
        masks=(
            ColumnMask(table=table, column="email", principal="alice", kind="hash"),
            ColumnMask(table=table, column="name", principal="alice", kind="partial"),
        ),
    )


def partial(text: str | None) -> str | None:
    return text if text is None or len(text) <= 4 else "*" * (len(text) - 4) + text[-4:]


def test_alice_sees_only_her_rows_columns_and_masks(
    governed: Settings, corner: IsolatedLake
) -> None:
    table = f"{corner.namespace}.customers"
    corner.client.ingest(CUSTOMERS, table)
    set_policy(governed, eu_policy(table))

    rows = as_user(governed, "alice", "SELECT id, name, email, region FROM customers ORDER BY id",
                   corner.namespace)  # fmt: skip
    expected = [
        (i, partial(n), hashlib.sha256(e.encode()).hexdigest(), r)
        for i, n, e, r in zip(*(CUSTOMERS[c].to_pylist() for c in ("id", "name", "email", "region")),
                              strict=True)
        if r == "EU"
    ]  # fmt: skip
    assert rows == expected
    # The admin reads the stored values; an unknown user reads nothing.
    assert len(as_user(governed, "admin", "SELECT phone FROM customers", corner.namespace)) == 4
    assert denied(governed, "mallory", "SELECT id FROM customers", corner.namespace)

    # A hidden column is refused by Trino, and the library says who lacks what.
    assert denied(governed, "alice", "SELECT phone FROM customers", corner.namespace)
    with pytest.raises(AccessDeniedError) as refused:
        TrinoEngine(governed).sql(f"SELECT phone FROM {table}", principal="alice")
    assert "alice" in str(refused.value) and "phone" in str(refused.value), refused.value
    assert refused.value.hint

    # Revocation: in force when the change returns (the store waits for Trino's refresh).
    set_policy(governed, Policy())
    assert denied(governed, "alice", "SELECT id FROM customers", corner.namespace)


def test_tag_grant_covers_a_table_created_after_it(
    governed: Settings, corner: IsolatedLake
) -> None:
    set_policy(governed, Policy(
        tag_keys=(TagKey(key="domain", values=("sales", "hr")),),
        tags=(TagAssignment(resource=corner.namespace, tags={"domain": "sales"}),),
        grants=(Grant(principal="alice", permissions=(Permission.SELECT,),
                      resource=Resource(tags={"domain": ("sales",)})),),
    ))  # fmt: skip
    corner.client.ingest(pa.table({"n": [1, 2, 3]}), f"{corner.namespace}.later")
    # A direct client: the rules do not know the table yet, so it is refused (fail closed).
    assert denied(governed, "alice", "SELECT count(*) FROM later", corner.namespace)
    # Through the library the rules catch up with the new table before the query runs.
    result = TrinoEngine(governed).sql(f"SELECT sum(n) AS s FROM {corner.namespace}.later",
                                       principal="alice")  # fmt: skip
    assert result.column("s").to_pylist() == [6]
    assert as_user(governed, "alice", "SELECT count(*) FROM later", corner.namespace) == [(3,)]


def test_governance_off_leaves_trino_as_before(stack: Settings, corner: IsolatedLake) -> None:
    table = f"{corner.namespace}.customers"
    corner.client.ingest(CUSTOMERS, table)
    etc = TrinoNode(stack).node_dir / "etc"
    assert not (etc / "access-control.properties").exists()
    assert as_user(stack, "alice", "SELECT count(phone) FROM customers", corner.namespace) == [(4,)]


def test_rules_file_is_private_and_valid_json(governed: Settings) -> None:
    from lakehouse.governance.trino_rules import rules_path

    path: Path = rules_path(governed)
    assert path.stat().st_mode & 0o077 == 0
    assert "tables" in json.loads(path.read_text())


def lakehouse_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """A `lakehouse` command of the governed home, as a user runs it."""
    env = {**os.environ, **settings_environment(settings)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Wait for ``condition`` (Trino re-reads its rules within a second)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


def test_a_column_added_after_a_column_grant_stays_hidden_from_direct_clients(
    governed: Settings, corner: IsolatedLake
) -> None:
    from pyiceberg.types import StringType

    table = f"{corner.namespace}.customers"
    corner.client.ingest(CUSTOMERS, table)
    set_policy(governed, Policy(grants=(Grant(
        principal="alice", permissions=(Permission.SELECT,),
        resource=Resource(table=table, columns=("id", "name"))),)))  # fmt: skip
    listed = "SELECT id, name FROM customers"
    assert len(as_user(governed, "alice", listed, corner.namespace)) == 4
    with corner.catalog.load_table(table).update_schema() as update:
        update.add_column("ssn", StringType())
    # A direct client racing the change is refused, never shown the new column.
    with pytest.raises(trino.exceptions.TrinoUserError, match=r"columns of .* changed"):
        as_user(governed, "alice", "SELECT ssn FROM customers", corner.namespace)
    # Any lakehouse command brings the rules up to date: the new column is hidden.
    assert lakehouse_command(governed, "tables").returncode == 0
    until(lambda: denied(governed, "alice", "SELECT ssn FROM customers", corner.namespace),
          "the new column denied by name")  # fmt: skip
    assert len(as_user(governed, "alice", listed, corner.namespace)) == 4
    # The library's Trino path checks the guarded table's columns before it runs.
    with corner.catalog.load_table(table).update_schema() as update:
        update.add_column("ssn2", StringType())
    assert (
        TrinoEngine(governed).sql(f"SELECT id, name FROM {table}", principal="alice").num_rows == 4
    )
    with pytest.raises(AccessDeniedError, match="ssn2"):
        TrinoEngine(governed).sql(f"SELECT ssn2 FROM {table}", principal="alice")


def test_a_revoke_killed_before_the_rules_is_caught_up_by_the_next_command(
    governed: Settings, corner: IsolatedLake
) -> None:
    table = f"{corner.namespace}.customers"
    corner.client.ingest(CUSTOMERS, table)
    set_policy(governed, Policy(grants=(Grant(principal="alice", permissions=(Permission.SELECT,),
                                              resource=Resource(table=table)),)))  # fmt: skip
    assert len(as_user(governed, "alice", "SELECT id FROM customers", corner.namespace)) == 4
    # The revoke is stored, then its process is SIGKILLed before the rules are rewritten.
    script = (
        "import os, signal\n"
        "from lakehouse.config import load_settings\n"
        "from lakehouse.governance import store\n"
        "from lakehouse.governance.policy import Policy\n"
        "store.ON_CHANGE.insert(0, lambda s, p: os.kill(os.getpid(), signal.SIGKILL))\n"
        "store.update(load_settings(), lambda _: Policy())\n"
    )
    env = {**os.environ, **settings_environment(governed)}
    killed = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert {"trino", "s3"} <= set(stale_enforcers(governed))  # the rules were never rewritten
    assert len(as_user(governed, "alice", "SELECT id FROM customers", corner.namespace)) == 4
    assert lakehouse_command(governed, "audit", "--limit", "1").returncode == 0  # any command
    until(lambda: denied(governed, "alice", "SELECT id FROM customers", corner.namespace),
          "the revoke in force")  # fmt: skip


def test_trinos_own_decisions_are_audited_for_direct_clients(
    governed: Settings, corner: IsolatedLake
) -> None:
    table = f"{corner.namespace}.customers"
    corner.client.ingest(CUSTOMERS, table)
    set_policy(governed, eu_policy(table))
    since = dt.datetime.now(dt.UTC)
    as_user(governed, "alice", "SELECT id, email FROM customers", corner.namespace)
    assert denied(governed, "alice", "SELECT phone FROM customers", corner.namespace)
    records = [r for r in audit.read_log(governed, principal="alice", since=since).to_pylist()
               if r["engine"] == "trino"]  # fmt: skip
    allowed = [r for r in records if r["allowed"]]
    refused = [r for r in records if not r["allowed"]]
    # Trino reports the columns it read: the filter's region too.
    assert [(r["resource"], sorted(r["columns"])) for r in allowed] == [
        (table, ["email", "id", "region"])
    ]
    assert "data cells filter eu_customers" in allowed[0]["filters"]
    # Trino's own reason (it names the table, not the hidden column).
    assert len(refused) == 1 and refused[0]["query_id"] and refused[0]["resource"] == table
    assert "Cannot select from table" in refused[0]["reason"]
    again = audit.read_log(governed, principal="alice", since=since).to_pylist()
    assert len([r for r in again if r["engine"] == "trino"]) == 2  # each query once


def test_a_rename_made_directly_in_trino_cannot_widen_what_a_direct_client_sees(
    governed: Settings, corner: IsolatedLake
) -> None:
    """A masked column (alice), an excluded one (bob) and a pii=true one under a
    pii=false grant (carol), renamed directly in Trino and their old names reused:
    by name the rules would mask or hide the new, empty columns and show the renamed
    ones as stored. The column guard refuses the racing direct client; the next
    command's rules (bound to field ids) refuse the table."""
    from lakehouse.governance.admin_objects import replace_policy
    from lakehouse.governance.policy import Principal

    table = f"{corner.namespace}.customers"
    corner.client.ingest(CUSTOMERS, table)
    replace_policy(governed, Policy(
        principals=tuple(Principal(name=n) for n in ("alice", "bob", "carol")),
        tag_keys=(TagKey(key="pii", values=("true", "false")),),
        tags=(TagAssignment(resource=table, tags={"pii": "false"}),
              TagAssignment(resource=f"{table}.phone", tags={"pii": "true"})),
        grants=(
            Grant(principal="alice", permissions=(Permission.SELECT,), resource=Resource(table=table)),
            Grant(principal="bob", permissions=(Permission.SELECT,),
                  resource=Resource(table=table, excluded_columns=("email",))),
            Grant(principal="carol", permissions=(Permission.SELECT,),
                  resource=Resource(tags={"pii": ("false",)})),
        ),
        masks=(ColumnMask(table=table, column="email", principal="alice", kind="hash"),),
    ), origin="test")  # fmt: skip
    assert store.load_policy(governed).column_ids[table] == {"email": 3, "phone": 4}
    ns = corner.namespace
    assert as_user(governed, "alice", "SELECT email FROM customers WHERE id = 1", ns) == [
        (hashlib.sha256(b"ada@x.eu").hexdigest(),)
    ]
    for ddl in ("RENAME COLUMN email TO contact", "ADD COLUMN email varchar",
                "RENAME COLUMN phone TO mobile", "ADD COLUMN phone varchar"):  # fmt: skip
        as_user(governed, "admin", f"ALTER TABLE customers {ddl}", ns)
    # Racing the change, by name: alice's mask and bob's exclusion would fall on the new
    # email and contact would be the emails as stored; carol's mobile the pii phones.
    for user, column in (("alice", "contact"), ("bob", "contact"), ("carol", "mobile")):
        with pytest.raises(trino.exceptions.TrinoUserError, match=r"columns of .* changed"):
            as_user(governed, user, f"SELECT {column} FROM customers", ns)
    assert lakehouse_command(governed, "tables").returncode == 0
    for user in ("alice", "bob", "carol"):  # by field id: the table is refused
        until(lambda u=user: denied(governed, u, "SELECT id FROM customers", ns),  # type: ignore[misc]
              f"{user} refused the table")  # fmt: skip
    with pytest.raises(AccessDeniedError) as refused:  # the library says why Trino refused
        TrinoEngine(governed).sql(f"SELECT id FROM {table}", principal="alice")
    said = str(refused.value)
    assert f"column phone of {table}" in said and "was field 4" in said and "Hint:" in said, said
    assert len(as_user(governed, "admin", "SELECT contact FROM customers", ns)) == 4
