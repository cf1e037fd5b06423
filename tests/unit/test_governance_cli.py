"""The governance CLI's pure logic: reading grant statements, and the checks every
change passes before it is stored (against a stand-in catalog schema), with the
stored policy byte for byte unchanged after each refusal."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

import lakehouse
from lakehouse.cli import main
from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance import admin, admin_objects, audit, demo, store, writes
from lakehouse.governance.policy import ColumnMask, DataCellsFilter, Permission, Resource, TagKey
from lakehouse.governance.statements import parse_statement

CUSTOMERS = {
    "customer_id": "LONG",
    "first_name": "VARCHAR",
    "email": "VARCHAR",
    "country": "VARCHAR",
}
ORDERS = {"order_id": "LONG", "customer_id": "LONG", "status": "VARCHAR"}


class FakeLake:
    """The catalog's names, as admin.LakeSchema asks them."""

    tables: ClassVar[dict[str, dict[str, str]]] = {
        "retail.customers": CUSTOMERS,
        "retail.orders": ORDERS,
    }

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in {"retail", "landing"}

    def columns(self, table: str) -> dict[str, str] | None:
        return self.tables.get(table)


LAKE = FakeLake()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "lakehouse.toml"))
    yield Settings(home=tmp_path / "home")


def stored(settings: Settings) -> bytes:
    path = store.policy_path(settings)
    return path.read_bytes() if path.exists() else b""


def words(text: str) -> list[str]:
    return text.split()


# -- statements -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "resource"),
    [
        ("SELECT ON TABLE retail.customers TO analyst", Resource(table="retail.customers")),
        ("select on table retail.customers columns customer_id, country to analyst",
         Resource(table="retail.customers", columns=("customer_id", "country"))),
        ("SELECT ON TABLE retail.customers EXCLUDING email TO analyst",
         Resource(table="retail.customers", excluded_columns=("email",))),
        ("CREATE_TABLE ON NAMESPACE landing TO analyst", Resource(namespace="landing")),
        ("SELECT ON retail.orders TO analyst", Resource(table="retail.orders")),  # as hints say
        ("CREATE_TABLE ON landing TO analyst", Resource(namespace="landing")),
        ("SELECT ON ALL TABLES IN landing TO analyst", Resource(namespace="landing", all_tables=True)),
        ("SELECT ON FILTER eu TO analyst", Resource(data_cells_filter="eu")),
        ("SELECT ON TAG pii=false,domain=sales|hr TO analyst",
         Resource(tags={"pii": ("false",), "domain": ("sales", "hr")})),
    ],
)  # fmt: skip
def test_grant_statements_name_their_resource(text: str, resource: Resource) -> None:
    grant = parse_statement(words(text))
    assert grant.resource == resource and grant.principal == "analyst" and not grant.grant_option


def test_permissions_lists_and_the_grant_option() -> None:
    grant = parse_statement(words("SELECT, insert ON TABLE retail.orders TO bob WITH GRANT OPTION"))
    assert grant.permissions == (Permission.SELECT, Permission.INSERT) and grant.grant_option
    taken = parse_statement(
        words("GRANT OPTION FOR SELECT ON TABLE retail.orders FROM bob"), "revoke"
    )
    assert taken.grant_option and taken.principal == "bob"


@pytest.mark.parametrize(
    ("text", "verb", "message"),
    [
        ("SELECT retail.orders TO bob", "grant", "expected PERMISSIONS ON RESOURCE TO PRINCIPAL"),
        ("SELEKT ON TABLE retail.orders TO bob", "grant", "unknown permission(s) SELEKT"),
        ("SELECT ON TABLE retail.orders FROM bob", "grant", "after TO"),
        ("SELECT ON TABLE retail.orders TO bob", "revoke", "after FROM"),
        ("SELECT ON TABLE orders TO bob", "grant", "must be namespace.table"),
        ("SELECT ON TAG pii TO bob", "grant", "'pii' is not key=value"),
        ("SELECT ON VIEW v TO bob", "grant", "cannot read the resource 'VIEW v'"),
        ("SELECT ON TABLE retail.orders FROM bob WITH GRANT OPTION", "revoke", "GRANT OPTION FOR"),
    ],
)
def test_unreadable_statements_say_why_and_how(text: str, verb: str, message: str) -> None:
    with pytest.raises(PolicyError, match="Nothing was changed") as caught:
        parse_statement(words(text), verb)
    assert message in str(caught.value) and f"Hint: lakehouse {verb} PERMISSIONS ON" in str(
        caught.value
    )


def test_the_cli_prints_one_message_and_its_hint(settings: Settings) -> None:
    result = CliRunner().invoke(
        main, ["--home", str(settings.home_dir), "grant", "SELECT", "TO", "x"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: Cannot read the grant") and "\nHint: " in result.output
    assert not store.policy_path(settings).exists()
    unknown = CliRunner().invoke(
        main, ["--home", str(settings.home_dir), "grants", "--principal", "nobody"]
    )
    assert unknown.exit_code == 1 and "Unknown principal 'nobody'" in unknown.stderr


# -- checks before storing ------------------------------------------------------------------


def with_users(settings: Settings, *names: str) -> None:
    for name in names:
        admin.add_principal(settings, name)


def test_refused_grants_store_nothing(settings: Settings) -> None:
    with_users(settings, "analyst")
    before = stored(settings)
    refusals = {
        "SELECT ON TABLE retail.nope TO analyst": "No table retail.nope",
        "SELECT ON TABLE retail.customers COLUMNS phone TO analyst": "no column 'phone'",
        "SELECT ON TABLE retail.customers TO nobody": "Unknown principal 'nobody'",
        "CREATE_TABLE ON TABLE retail.customers TO analyst": "CREATE_TABLE does not apply",
        "SELECT ON NAMESPACE missing TO analyst": "No namespace missing",
        "SELECT ON FILTER nope TO analyst": "No data cells filter named 'nope'",
        "SELECT ON TAG pii=true TO analyst": "No LF-tag key 'pii'",
    }
    for text, message in refusals.items():
        with pytest.raises(PolicyError, match=message):
            admin.grant(settings, parse_statement(words(text)), lake=LAKE)
    assert stored(settings) == before


def test_grants_merge_and_revoke_says_what_was_not_held(settings: Settings) -> None:
    with_users(settings, "analyst")
    for text in (
        "SELECT ON TABLE retail.orders TO analyst",
        "INSERT ON TABLE retail.orders TO analyst",
    ):
        admin.grant(settings, parse_statement(words(text)), lake=LAKE)
    policy = store.load_policy(settings)
    assert [g.permissions for g in policy.grants] == [(Permission.SELECT, Permission.INSERT)]
    change = admin.revoke(
        settings,
        parse_statement(words("SELECT, DELETE ON TABLE retail.orders FROM analyst"), "revoke"),
    )
    assert "revoked SELECT" in change.summary and "held no DELETE" in change.summary
    before = stored(settings)
    with pytest.raises(PolicyError, match=r"holds no SELECT on retail\.orders to revoke"):
        admin.revoke(
            settings, parse_statement(words("SELECT ON TABLE retail.orders FROM analyst"), "revoke")
        )
    assert stored(settings) == before


def test_revoking_the_grant_option_keeps_the_permission(settings: Settings) -> None:
    with_users(settings, "lead")
    admin.grant(
        settings, parse_statement(words("SELECT ON TABLE retail.orders TO lead")), lake=LAKE
    )
    before = stored(settings)
    option_for = parse_statement(
        words("GRANT OPTION FOR SELECT ON TABLE retail.orders FROM lead"), "revoke"
    )
    with pytest.raises(PolicyError, match="holds no grant option for SELECT"):
        admin.revoke(settings, option_for)  # held without it: nothing to take
    assert stored(settings) == before
    admin.grant(
        settings,
        parse_statement(words("SELECT, INSERT ON TABLE retail.orders TO lead WITH GRANT OPTION")),
        lake=LAKE,
    )
    change = admin.revoke(settings, option_for)
    assert change.summary.startswith("revoked the grant option for SELECT")
    grants = {(g.permissions, g.grant_option) for g in store.load_policy(settings).grants}
    assert grants == {((Permission.SELECT,), False), ((Permission.INSERT,), True)}


def test_a_non_admin_grants_only_what_it_holds_with_grant_option(settings: Settings) -> None:
    with_users(settings, "lead", "analyst")
    admin.grant(
        settings,
        parse_statement(
            words("SELECT ON TABLE retail.customers EXCLUDING email TO lead WITH GRANT OPTION")
        ),
        lake=LAKE,
    )
    admin.grant(
        settings, parse_statement(words("SELECT ON TABLE retail.orders TO lead")), lake=LAKE
    )
    ok = parse_statement(
        words("SELECT ON TABLE retail.customers COLUMNS customer_id,country TO analyst")
    )
    admin.grant(settings, ok, actor="lead", lake=LAKE)
    before = stored(settings)
    for text in ("SELECT ON TABLE retail.customers COLUMNS email TO analyst",  # excluded for lead
                 "SELECT ON TABLE retail.customers TO analyst",  # more than lead holds
                 "SELECT ON TABLE retail.orders TO analyst",  # held without grant option
                 "INSERT ON TABLE retail.customers EXCLUDING email TO analyst"):  # fmt: skip
        with pytest.raises(AccessDeniedError, match=r"lead has no .* WITH GRANT OPTION"):
            admin.grant(settings, parse_statement(words(text)), actor="lead", lake=LAKE)
    with pytest.raises(AccessDeniedError, match="Only the governance admin"):
        admin.add_principal(settings, "eve", actor="lead")
    assert stored(settings) == before


@pytest.mark.parametrize(
    ("held", "wanted", "covered"),
    [
        (Resource(namespace="retail", all_tables=True), Resource(table="retail.orders", columns=("status",)), True),
        (Resource(namespace="retail", all_tables=True), Resource(table="web.clicks"), False),
        (Resource(table="retail.orders", excluded_columns=("status",)),
         Resource(table="retail.orders", excluded_columns=("status", "order_id")), True),
        (Resource(table="retail.orders", columns=("status",)), Resource(table="retail.orders"), False),
        (Resource(tags={"pii": ("false",)}), Resource(tags={"pii": ("false",), "domain": ("sales",)}), True),
        (Resource(tags={"pii": ("false",)}), Resource(tags={"domain": ("sales",)}), False),
        (Resource(namespace="retail"), Resource(namespace="retail", all_tables=True), False),
    ],
)  # fmt: skip
def test_what_a_held_grant_covers(held: Resource, wanted: Resource, covered: bool) -> None:
    assert admin.covers(held, wanted, store.Policy()) is covered


def test_filters_masks_and_tags_are_checked(settings: Settings) -> None:
    with_users(settings, "marketing")
    before = stored(settings)
    with pytest.raises(PolicyError, match="unknown column"):
        admin_objects.create_filter(
            settings,
            DataCellsFilter(name="f", table="retail.orders", row_filter="region = 'EU'"),
            lake=LAKE,
        )
    with pytest.raises(PolicyError, match="needs a text column"):
        admin_objects.set_mask(
            settings,
            ColumnMask(
                table="retail.orders", column="order_id", principal="marketing", kind="partial"
            ),
            lake=LAKE,
        )
    with pytest.raises(PolicyError, match="No LF-tag key"):
        admin_objects.assign_tags(settings, "retail.customers.email", {"pii": "true"}, lake=LAKE)
    with pytest.raises(PolicyError, match="has no column 'phone'"):
        admin_objects.assign_tags(settings, "retail.customers.phone", {}, lake=LAKE)
    with pytest.raises(PolicyError, match="no namespace, table or column"):
        admin_objects.assign_tags(settings, "retail.nope.x", {}, lake=LAKE)
    assert stored(settings) == before
    admin_objects.create_tag_key(settings, TagKey(key="pii", values=("true", "false")))
    admin_objects.assign_tags(settings, "retail.customers.email", {"pii": "true"}, lake=LAKE)
    with pytest.raises(PolicyError, match="does not allow 'maybe'"):
        admin_objects.assign_tags(settings, "retail", {"pii": "maybe"}, lake=LAKE)
    assert store.load_policy(settings).tags[0].resource == "retail.customers.email"


def test_the_demo_scenario_passes_every_check(settings: Settings) -> None:
    scenario = demo.demo_policy(list(CUSTOMERS), [1, 3])
    admin_objects.check_policy(scenario, LAKE, settings.governance_admin)
    assert {p.name for p in scenario.principals} == set(demo.PRINCIPALS)
    eu_orders = scenario.filter_named("eu_orders")
    assert eu_orders is not None and eu_orders.row_filter == "customer_id IN (1, 3)"
    merged = demo.merge(demo.merge(store.Policy(), scenario), scenario)
    assert merged.grants == scenario.grants  # loading it twice changes nothing


def test_the_declared_policy_is_stored_when_it_changes(settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "lakehouse.toml"
    config.write_text('[governance]\nprincipals = [{ name = "alice" }]\n')
    assert admin_objects.apply_declared(settings, lake=LAKE) is not None
    admin.add_principal(settings, "bob")  # a CLI change after it
    assert admin_objects.apply_declared(settings, lake=LAKE) is None  # unchanged: bob stays
    assert {p.name for p in store.load_policy(settings).principals} == {"alice", "bob"}
    config.write_text('[governance]\nprincipals = [{ name = "alice" }, { name = "carol" }]\n')
    assert admin_objects.apply_declared(settings, lake=LAKE) is not None  # edited: it wins
    assert {p.name for p in store.load_policy(settings).principals} == {"alice", "carol"}
    config.write_text(
        '[governance]\ngrants = [{ principal = "zed", permissions = ["SELECT"], resource = { table = "retail.orders" } }]\n'
    )
    before = stored(settings)
    with pytest.raises(PolicyError, match="Unknown principal 'zed'"):
        admin_objects.apply_declared(settings, lake=LAKE)
    assert stored(settings) == before


def test_up_reports_a_declaration_it_cannot_check_and_stores_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    from lakehouse.cli.governance import at_up
    from tests.unit.test_governance_store import closed_port

    (tmp_path / "lakehouse.toml").write_text('[governance]\nprincipals = [{ name = "alice" }]\n')
    down = settings.model_copy(update={"catalog_port": closed_port()})
    at_up(down, ["s3", "catalog"], demo=False)  # the catalog does not answer: reported, no raise
    assert stored(down) == b""
    assert (
        admin_objects.apply_declared(down, lake=LAKE) is not None
    )  # stored once it can be checked


# -- who acts, raw handles, library writes, the audit thread at exit (issue 15 breaker) ----


def test_policy_commands_act_as_lakehouse_principal_unless_as_names_another(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_users(settings, "analyst")
    before = stored(settings)
    monkeypatch.setenv("LAKEHOUSE_PRINCIPAL", "analyst")  # what `lakehouse env --as analyst` sets
    home = ["--home", str(settings.home_dir)]
    refused = CliRunner().invoke(main, [*home, "principal", "add", "eve"])
    assert refused.exit_code == 1 and "Access denied: analyst has no ADMIN" in refused.stderr
    assert stored(settings) == before
    with pytest.raises(AccessDeniedError, match="analyst has no ADMIN"):  # the library too
        admin.add_principal(Settings(home=settings.home_dir), "eve")
    explicit = CliRunner().invoke(main, [*home, "principal", "add", "eve", "--as", "admin"])
    assert explicit.exit_code == 0, explicit.output
    assert Settings(home=settings.home_dir).acting_principal("bob") == "bob"


def governed_lake(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> lakehouse.Lakehouse:
    with_users(settings, "analyst")
    monkeypatch.setenv("LAKEHOUSE_PRINCIPAL", "analyst")
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE_ENABLED", "true")
    return lakehouse.connect(Settings(home=settings.home_dir))


def test_raw_handles_are_refused_to_a_governed_principal(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = governed_lake(settings, monkeypatch)
    refusals = {
        "catalog": lambda: lake.catalog,
        "s3": lambda: lake.s3,
        "table": lambda: lake.table("retail.customers"),
        "duckdb engine": lambda: lake.engine("duckdb"),
        "spark engine": lambda: lake.engine("spark"),
        "duckdb": lambda: lake.duckdb(),
        "spark": lambda: lake.spark(),
        "sync": lambda: lake.sync("shop"),
    }
    for what, opened in refusals.items():
        with pytest.raises(AccessDeniedError, match="bypasses the policy") as denied:
            opened()
        assert denied.value.hint, what
    assert lake.engine("trino") is not None  # Trino runs as the principal, under its rules
    denials = [e for e in audit.spooled(lake.settings) if not e["allowed"]]
    assert len(denials) == len(refusals) and {e["principal"] for e in denials} == {"analyst"}


def test_an_ingest_needs_its_permissions(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert writes.ingest_permissions(False, "append", None) == [Permission.CREATE_TABLE]
    assert writes.ingest_permissions(True, "append", None) == [Permission.INSERT]
    for mode in ("overwrite", "upsert"):
        assert writes.ingest_permissions(True, mode, None) == [Permission.INSERT, Permission.DELETE]
    lake = governed_lake(settings, monkeypatch)
    with pytest.raises(AccessDeniedError, match="S3 READ"):
        writes.check_source(lake.settings, "analyst", "s3://warehouse/retail/customers/x.parquet")
    writes.check_source(lake.settings, "analyst", "orders.csv")  # a local file: its own
    spooled = audit.spooled(lake.settings)
    assert [e["action"] for e in spooled if e["engine"] != "policy"] == ["S3_READ"]


def test_policy_changes_are_audited_with_who_changed_what(settings: Settings) -> None:
    with_users(settings, "analyst", "bob")
    admin.grant(settings, parse_statement(words("SELECT ON TABLE retail.orders TO analyst")),
                lake=LAKE)  # fmt: skip
    with pytest.raises(AccessDeniedError):  # bob may not grant: a denied change
        admin.grant(settings, parse_statement(words("SELECT ON TABLE retail.orders TO bob")),
                    actor="bob", lake=LAKE)  # fmt: skip
    admin.revoke(settings, parse_statement(words("SELECT ON TABLE retail.orders FROM analyst"),
                                           "revoke"))  # fmt: skip
    admin_objects.set_mask(settings, ColumnMask(table="retail.customers", column="email",
                                                principal="analyst", kind="hash"), lake=LAKE)  # fmt: skip
    with pytest.raises(PolicyError):  # bad input: no decision, nothing audited
        admin_objects.drop_filter(settings, "nope")
    seen = [(e["principal"], e["action"], e["resource"], e["allowed"])
            for e in audit.spooled(settings) if e["engine"] == "policy"]  # fmt: skip
    assert seen == [
        ("admin", "ADD_PRINCIPAL", "analyst", True), ("admin", "ADD_PRINCIPAL", "bob", True),
        ("admin", "GRANT", "retail.orders", True), ("bob", "GRANT", "retail.orders", False),
        ("admin", "REVOKE", "retail.orders", True), ("admin", "SET_MASK", "retail.customers.email", True),
    ]  # fmt: skip
    reasons = [e["reason"] for e in audit.spooled(settings) if e["engine"] == "policy"]
    assert reasons[2] == "granted SELECT on retail.orders to analyst (policy revision 3)"
    assert "bob" in reasons[3] and "WITH GRANT OPTION" in reasons[3]


def test_the_audit_thread_is_stopped_and_joined_at_exit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[threading.Thread] = []

    def slow_flush(_: Settings) -> int:  # a commit under way when the process exits
        flushed.append(threading.current_thread())
        time.sleep(0.3)
        return 0

    monkeypatch.setattr(audit, "flush", slow_flush)
    monkeypatch.setattr(audit.atexit, "register", lambda _: None)
    flusher = audit._Flusher(settings)
    flusher.wake()
    while not flushed:
        time.sleep(0.01)
    flusher._at_exit()
    assert flusher._thread is not None and not flusher._thread.is_alive()
    # Flusher threads of earlier tests may still call the patched flush: only this
    # flusher's thread and this thread count.
    ours = [t for t in flushed if t in (flusher._thread, threading.current_thread())]
    assert ours == [flusher._thread, threading.current_thread()]  # the last one here


def test_only_the_admin_loads_the_demo(settings: Settings) -> None:
    with_users(settings, "analyst")
    before = stored(settings)
    as_analyst = settings.model_copy(update={"principal": "analyst"})
    with pytest.raises(AccessDeniedError, match="load the governance demo"):
        demo.load_demo(as_analyst)  # refused before the catalog is asked
    assert stored(settings) == before


def test_only_the_admin_reads_the_policy_and_a_principal_lists_its_own_grants(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin.add_principal(settings, "alice", roles=["analysts"])
    admin.add_principal(settings, "bob")
    admin_objects.create_filter(settings, DataCellsFilter(name="eu", table="retail.customers",
                                row_filter="country IN ('DE', 'FR')"), lake=LAKE)  # fmt: skip
    for text in ("SELECT ON TABLE retail.orders TO analysts", "SELECT ON FILTER eu TO bob",
                 "DESCRIBE ON TABLE retail.customers TO alice"):  # fmt: skip
        admin.grant(settings, parse_statement(words(text)), lake=LAKE)
    monkeypatch.setenv("LAKEHOUSE_PRINCIPAL", "alice")
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE_ENABLED", "true")
    alice = Settings(home=settings.home_dir)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(settings.home_dir), *args])

    exported = tmp_path / "policy.yaml"
    for args in (("governance", "show"), ("governance", "show", "--json"),
                 ("governance", "export", str(exported)), ("principal", "list")):  # fmt: skip
        shown = run(*args)
        assert shown.exit_code == 1 and "Access denied: alice may not" in shown.stderr, args
        assert "\nHint: " in shown.stderr and "bob" not in shown.stdout
        assert "'DE'" not in shown.stdout
    assert not exported.exists()
    own = run("grants", "--json")
    assert own.exit_code == 0, own.output
    assert {g["principal"] for g in json.loads(own.stdout)} == {"alice", "analysts"}
    assert run("grants", "--principal", "analysts").exit_code == 0  # her role's
    other = run("grants", "--principal", "bob")
    assert other.exit_code == 1 and "only its own grants" in other.stderr and not other.stdout
    with pytest.raises(AccessDeniedError, match="not bob's"):  # the library too
        admin_objects.readable_grants(alice, "bob")
    with pytest.raises(AccessDeniedError, match="alice may not read"):
        admin_objects.policy_for_reader(alice)
    denied = {(e["principal"], e["action"], e["resource"]) for e in audit.spooled(alice)
              if not e["allowed"]}  # fmt: skip
    assert denied == {("alice", "READ_POLICY", "policy"), ("alice", "LIST_GRANTS", "bob")}
    monkeypatch.delenv("LAKEHOUSE_PRINCIPAL")  # the admin reads it all
    every = json.loads(run("grants", "--json").stdout)
    assert {g["principal"] for g in every} == {"alice", "analysts", "bob"}
    assert run("governance", "export", str(exported)).exit_code == 0
    assert "'DE'" in exported.read_text()
