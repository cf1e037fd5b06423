"""The governed scenario of the workshop (``lakehouse governance demo``,
``lakehouse up --governance-demo``), over the retail sample:

- ``analyst`` reads every retail table, but no column tagged ``pii=true``: the
  customers' ``email`` (and ``phone``, where a table has one). Through an LF-tag grant
  (``SELECT ON TAG pii=false``), so a new retail table is covered with no new grant.
- ``eu_analyst`` reads only the customers of EU countries (a data cells filter on
  ``country``, without email) and only their orders.
- ``marketing`` reads the customers with each email replaced by its SHA-256 (a mask).
- ``data_engineer`` may create tables in the namespace ``landing`` and read, write
  and drop every table in it.

Row filters are expressions over their own table's columns (no joins: the engines
apply them without a subquery). The orders carry no country, so the EU orders filter
lists the EU customers' ids as they are when the demo is loaded: load it again after
customers are added. The demo is merged into the stored policy (its principals,
grants, filters, masks and tags replace their namesakes; anything else stays).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

from lakehouse.config import Settings
from lakehouse.governance.admin import CatalogSchema, Change, apply_change, lake_schema, refused
from lakehouse.governance.admin_objects import check_policy
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
    TagAssignment,
    TagKey,
)  # fmt: skip
from lakehouse.governance.store import load_policy

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

# EU member states (the sample has DE, FR, NL, ES and IT; GB left the EU).
EU_COUNTRIES = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
                "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")  # fmt: skip
CUSTOMERS, ORDERS = "retail.customers", "retail.orders"
PRINCIPALS = ("analyst", "eu_analyst", "marketing", "data_engineer")
PII_COLUMNS = ("email", "phone")
READ = (Permission.SELECT, Permission.DESCRIBE)
T = TypeVar("T")


def eu_condition() -> str:
    return "country IN (" + ", ".join(f"'{c}'" for c in EU_COUNTRIES) + ")"


def demo_policy(customer_columns: list[str], eu_customer_ids: list[int]) -> Policy:
    """The scenario as a policy, for a customers table of ``customer_columns``."""
    pii = [c for c in PII_COLUMNS if c in customer_columns]
    eu_ids = ", ".join(str(i) for i in sorted(eu_customer_ids)) or "NULL"

    def grant(who: str, resource: Resource, *permissions: Permission) -> Grant:
        return Grant(principal=who, permissions=permissions or READ, resource=resource)

    return Policy(
        principals=tuple(Principal(name=name) for name in PRINCIPALS),
        tag_keys=(TagKey(key="pii", values=("true", "false")),),
        tags=(
            TagAssignment(resource="retail", tags={"pii": "false"}),
            *(TagAssignment(resource=f"{CUSTOMERS}.{c}", tags={"pii": "true"}) for c in pii),
        ),
        data_cells_filters=(
            DataCellsFilter(
                name="eu_customers",
                table=CUSTOMERS,
                row_filter=eu_condition(),
                excluded_columns=tuple(pii) or None,
            ),
            DataCellsFilter(
                name="eu_orders", table=ORDERS, row_filter=f"customer_id IN ({eu_ids})"
            ),
        ),
        masks=(ColumnMask(table=CUSTOMERS, column="email", principal="marketing", kind="hash"),),
        grants=(
            grant("analyst", Resource(tags={"pii": ("false",)})),
            grant("eu_analyst", Resource(data_cells_filter="eu_customers"), Permission.SELECT),
            grant("eu_analyst", Resource(data_cells_filter="eu_orders"), Permission.SELECT),
            grant("marketing", Resource(table=CUSTOMERS)),
            grant(
                "data_engineer",
                Resource(namespace="landing"),
                Permission.CREATE_TABLE,
                Permission.DESCRIBE,
            ),
            grant(
                "data_engineer",
                Resource(namespace="landing", all_tables=True),
                Permission.SELECT,
                Permission.INSERT,
                Permission.DELETE,
                Permission.ALTER,
                Permission.DROP,
                Permission.DESCRIBE,
            ),
        ),
    )


def merge(current: Policy, added: Policy) -> Policy:
    """``current`` with ``added``'s parts replacing their namesakes (a principal by
    name, a grant by principal and resource, a filter by name, a mask by table, column
    and principal, a tag key by key, tags by resource)."""

    return Policy(
        revision=current.revision,
        principals=keep(current.principals, added.principals, lambda p: p.name),
        grants=keep(current.grants, added.grants, lambda g: (g.principal, g.resource.describe())),
        data_cells_filters=keep(current.data_cells_filters, added.data_cells_filters, lambda f: f.name),
        masks=keep(current.masks, added.masks, lambda m: (m.table, m.column, m.principal)),
        tag_keys=keep(current.tag_keys, added.tag_keys, lambda k: k.key),
        tags=keep(current.tags, added.tags, lambda a: a.resource),
    )  # fmt: skip


def keep(items: tuple[T, ...], new: tuple[T, ...], key: Callable[[T], Hashable]) -> tuple[T, ...]:
    """``items`` without those whose key one of ``new`` has, then ``new``."""
    taken = {key(item) for item in new}
    return tuple(item for item in items if key(item) not in taken) + new


def eu_customer_ids(catalog: Catalog) -> list[int]:
    scan = catalog.load_table(CUSTOMERS).scan(
        row_filter=" OR ".join(f"country == '{c}'" for c in EU_COUNTRIES),
        selected_fields=("customer_id",),
    )
    return [int(i) for i in scan.to_arrow().column("customer_id").to_pylist() if i is not None]


def load_demo(settings: Settings, catalog: Catalog | None = None, *,
              actor: str | None = None) -> Change:  # fmt: skip
    """Merge the scenario into the stored policy (creating the namespace ``landing``),
    as ``actor`` (default settings.acting_principal()), who must be the admin
    (AccessDeniedError otherwise). Refused (PolicyError, nothing stored) when the
    retail sample is not loaded."""
    from lakehouse.governance.admin import require_admin

    require_admin(load_policy(settings), settings.acting_principal(actor),
                  settings.governance_admin, "load the governance demo")  # fmt: skip
    schema = CatalogSchema(catalog) if catalog is not None else lake_schema(settings)
    catalog = schema.catalog
    columns = schema.columns(CUSTOMERS)
    if columns is None or schema.columns(ORDERS) is None:
        raise refused("The governance demo needs the retail sample (retail.customers and "
                      "retail.orders), which is not in the lake.",
                      "Load it with `lakehouse load-sample` (or `lakehouse up`).")  # fmt: skip
    catalog.create_namespace_if_not_exists("landing")
    scenario = demo_policy(list(columns), eu_customer_ids(catalog))

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), settings.governance_admin,
                      "load the governance demo")  # fmt: skip
        merged = merge(policy, scenario)
        check_policy(merged, schema, settings.governance_admin)
        return merged, "loaded the governance demo: " + ", ".join(PRINCIPALS)

    return apply_change(settings, change, action="LOAD_DEMO", resource="the policy", actor=actor,
                        lake=schema)  # fmt: skip
