"""Governance on the REST catalog: each principal's own token sees and loads only its part.

A governed S3 and catalog (their own home and ports, governance on) hold four tables
the admin writes. alice's token comes from ``lakehouse env --as alice``; pyiceberg
uses it in a fresh process holding only the exported variables, as any tool would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Settings
from lakehouse.config import catalog_properties
from lakehouse.governance import audit, catalog_access, store
from lakehouse.governance.policy import Grant, Permission, Policy, Principal, Resource
from lakehouse.lake import catalog as cat
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

pytestmark = [pytest.mark.integration]

ORDERS = pa.table({"id": pa.array([1, 2], pa.int64()), "region": ["EU", "US"]})
READ_ORDERS = Grant(principal="alice", permissions=(Permission.SELECT,),
                    resource=Resource(table="gov.orders"))  # fmt: skip
POLICY = Policy(
    principals=(Principal(name="alice"), Principal(name="root", roles=("admin",))),
    grants=(
        READ_ORDERS,
        # Visible (a column) but not loadable: the raw files hold the hidden column.
        Grant(principal="alice", permissions=(Permission.SELECT,),
              resource=Resource(table="gov.customers", excluded_columns=("region",))),
        Grant(principal="alice", permissions=(Permission.INSERT, Permission.SELECT),
              resource=Resource(namespace="landing", all_tables=True)),
    ),
)  # fmt: skip
TABLES = ("gov.orders", "gov.customers", "gov.secret", "landing.events")

# Run by a fresh interpreter whose environment is only what `lakehouse env --as` exported.
AS_ALICE = textwrap.dedent("""
    import json
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import ForbiddenError
    import pyarrow as pa

    lake = load_catalog("lake")
    ROW = pa.table({"id": pa.array([9], pa.int64()), "region": ["XX"]})
    found = {"namespaces": sorted(".".join(n) for n in lake.list_namespaces()),
             "gov": sorted(".".join(t) for t in lake.list_tables("gov")),
             "rows": lake.load_table("gov.orders").scan().to_arrow().num_rows}
    attempts = {
        "customers": lambda: lake.load_table("gov.customers"),
        "secret": lambda: lake.load_table("gov.secret"),
        "drop": lambda: lake.drop_table("gov.orders"),
        "create": lambda: lake.create_table("landing.made", pa.schema([("x", pa.int64())])),
        "append": lambda: lake.load_table("landing.events").append(ROW),
        "overwrite": lambda: lake.load_table("landing.events").overwrite(ROW),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            found[name] = "allowed"
        except ForbiddenError as exc:
            found[name] = str(exc)
    print(json.dumps(found))
""")


@pytest.fixture(scope="module")
def governed(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A governed S3 and catalog with gov.orders, gov.customers, gov.secret, landing.events."""
    home = tmp_path_factory.mktemp("governed-catalog")
    ports = isolated_stack_env(home)
    settings = stack.model_copy(update={
        "home": home, "governance_enabled": True, "principal": None,
        "s3_port": int(ports["LAKEHOUSE_S3_PORT"]),
        "catalog_port": int(ports["LAKEHOUSE_CATALOG_PORT"]),
        "s3_internal_port_base": int(ports["LAKEHOUSE_S3_INTERNAL_PORT_BASE"]),
    })  # fmt: skip
    runtime = LocalRuntime(settings)
    try:
        runtime.up(["s3", "catalog"])
        catalog = cat.open_catalog(settings)
        for namespace in ("gov", "landing"):
            catalog.create_namespace(namespace)
        for name in TABLES:
            catalog.create_table(name, ORDERS.schema).append(ORDERS)
        store.update(settings, lambda _: POLICY)
        yield settings
    finally:
        runtime.down(["catalog", "s3"])


def variables(settings: Settings) -> dict[str, str]:
    """The admin's shell: this stack's home, ports and credentials."""
    return {
        "PATH": os.environ["PATH"], "LAKEHOUSE_HOME": str(settings.home_dir),
        "LAKEHOUSE_GOVERNANCE_ENABLED": "true",
        "LAKEHOUSE_S3_PORT": str(settings.s3_port),
        "LAKEHOUSE_CATALOG_PORT": str(settings.catalog_port),
        "LAKEHOUSE_S3_INTERNAL_PORT_BASE": str(settings.s3_internal_port_base),
        "LAKEHOUSE_ACCESS_KEY": settings.access_key, "LAKEHOUSE_SECRET_KEY": settings.secret_key,
        "LAKEHOUSE_CATALOG_TOKEN": settings.catalog_token,
    }  # fmt: skip


def load_as(settings: Settings, token: str, table: str) -> int:
    """The HTTP status of loading ``table`` with ``token`` (plain REST)."""
    namespace, name = table.split(".")
    request = urllib.request.Request(
        f"{settings.catalog_uri}/v1/namespaces/{namespace}/tables/{name}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_pyiceberg_as_alice_reads_what_she_may_and_is_refused_the_rest(
    governed: Settings,
) -> None:
    cli = Path(sys.executable).parent / "lakehouse"
    exported = subprocess.run([str(cli), "env", "--as", "alice", "--json"], env=variables(governed),
                              capture_output=True, text=True, check=True)  # fmt: skip
    alice_env = json.loads(exported.stdout)
    assert alice_env["PYICEBERG_CATALOG__LAKE__TOKEN"] != governed.catalog_token
    run = subprocess.run([sys.executable, "-c", AS_ALICE], env=alice_env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["namespaces"] == ["gov", "landing"]
    assert found["gov"] == ["gov.customers", "gov.orders"]  # not gov.secret
    assert found["rows"] == 2  # her S3 key reads the files the metadata names
    assert found["customers"].startswith(
        "ForbiddenException: alice may not load the table gov.customers from the catalog"
    )
    assert "SELECT on the whole table" in found["customers"] and "Hint:" in found["customers"]
    assert "alice may not see the table gov.secret" in found["secret"]
    assert "alice may not drop the table gov.orders" in found["drop"]
    assert "alice may not create a table in landing" in found["create"]
    assert found["append"] == "allowed"  # INSERT on a table she may read whole
    assert "alice may only append to landing.events" in found["overwrite"]
    admin = cat.open_catalog(governed)
    assert admin.table_exists("gov.orders") and not admin.table_exists("landing.made")
    events = cat.load_table(admin, "landing.events").scan().to_arrow()
    assert sorted(events.column("id").to_pylist()) == [1, 2, 9]  # her one row, nothing lost
    assert cat.load_table(admin, "gov.orders").scan().to_arrow().num_rows == 2
    logged = audit.read_log(governed, principal="alice").to_pylist()
    decisions = {
        (r["action"], r["resource"], r["allowed"]) for r in logged if r["engine"] == "catalog"
    }
    assert {("LOAD_TABLE", "gov.orders", True), ("LIST_TABLES", "gov", True),
            ("LOAD_TABLE", "gov.customers", False), ("DROP_TABLE", "gov.orders", False),
            ("COMMIT_TABLE", "landing.events", True),
            ("COMMIT_TABLE", "landing.events", False)} <= decisions  # fmt: skip
    dropped = next(r for r in logged if r["action"] == "DROP_TABLE")
    assert "alice may not drop the table gov.orders" in dropped["reason"]


def test_a_revoke_holds_at_the_next_request_and_a_broken_file_changes_nothing(
    governed: Settings,
) -> None:
    alice = catalog_access.token(governed, "alice")
    assert load_as(governed, alice, "gov.orders") == 200
    store.update(governed, lambda p: p.model_copy(
        update={"grants": tuple(g for g in p.grants if g != READ_ORDERS)}))  # fmt: skip
    revoked = time.monotonic()
    assert load_as(governed, alice, "gov.orders") == 403  # the very next request
    assert time.monotonic() - revoked < 5
    store.update(governed, lambda p: p.model_copy(update={"grants": (*p.grants, READ_ORDERS)}))
    assert load_as(governed, alice, "gov.orders") == 200
    path = catalog_access.access_path(governed)
    good = path.read_text()
    try:
        path.write_text("{ not json")
        assert load_as(governed, alice, "gov.orders") == 200  # the previous rules stay
    finally:
        catalog_access.write_access(governed)
    assert json.loads(path.read_text())["revision"] == json.loads(good)["revision"]


def test_tokens_of_admins_unknown_and_rotated(governed: Settings) -> None:
    root = catalog_access.token(governed, "root")  # a member of the admin role
    assert root != governed.catalog_token
    assert load_as(governed, root, "gov.secret") == 200
    assert load_as(governed, governed.catalog_token, "gov.secret") == 200
    assert load_as(governed, "lhc_made_up", "gov.orders") == 401
    old = catalog_access.token(governed, "alice")
    new = catalog_access.rotate(governed, "alice")
    assert new != old
    assert load_as(governed, old, "gov.orders") == 401
    assert load_as(governed, new, "gov.orders") == 200


def test_appends_of_another_tables_file_or_without_insert_are_refused(governed: Settings) -> None:
    """A client whose S3 key reaches every file (the admin's) and alice's catalog token:
    appending gov.secret's file to landing.events, or anything to gov.orders (no INSERT),
    is refused by the catalog."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import ForbiddenError

    admin = cat.open_catalog(governed)
    secret = next(iter(cat.load_table(admin, "gov.secret").scan().plan_files())).file.file_path
    properties = {**catalog_properties(governed), "token": catalog_access.token(governed, "alice")}
    as_alice = load_catalog("lake", **properties)
    with cat.load_table(admin, "landing.events").transaction() as change:  # else add_files sets it
        mapping = change.table_metadata.schema().name_mapping.model_dump_json()
        change.set_properties({"schema.name-mapping.default": mapping})
    events = as_alice.load_table("landing.events")
    before = cat.load_table(admin, "landing.events").scan().to_arrow().num_rows
    with pytest.raises(ForbiddenError, match=r"alice may not append s3://\S+ to landing.events"):
        events.add_files([secret])
    assert cat.load_table(admin, "landing.events").scan().to_arrow().num_rows == before
    with pytest.raises(ForbiddenError, match=r"alice may not commit to the table gov\.orders"):
        as_alice.load_table("gov.orders").append(ORDERS)
    assert cat.load_table(admin, "gov.orders").scan().to_arrow().num_rows == 2
