"""Per-customer features for segmentation: RFM, browsing behaviour and category mix.

``customer_features(run, relations)`` computes one row per customer of
``retail.customers`` with DuckDB SQL; ``relations`` says where each input table is
read from (on the lake: the table AT the snapshot the training run recorded, so
lineage is true even if a table changes meanwhile). The same SQL runs on
hand-made Arrow tables in the unit tests.

Definitions (all relative to ``reference_ts``, the latest ``order_ts`` of any
order, so results are deterministic for the same input snapshots):

* an order *counts* unless its status is ``cancelled`` or ``returned``;
* ``recency_days``: days (fractional) from the customer's last counted order to
  ``reference_ts``; NULL for a customer without one;
* ``orders`` (frequency) and ``monetary`` (sum of ``total_amount``, computed exactly
  as a decimal, then stored as the nearest double) over counted orders; 0 without;
* ``avg_order_value``: ``monetary / orders``, NULL without orders;
* ``tenure_days``: days from sign-up (``created_at``) to ``reference_ts``;
* ``sessions``: distinct clickstream sessions of the customer; ``converting_sessions``
  those with a ``purchase`` event; ``conversion_rate`` = converting / sessions, NULL
  without sessions;
* ``share_<category>``: share of counted spend (``line_amount``) per top-level
  category (the part of ``products.category`` before the first ``/``; lines of an
  unknown product count as ``uncategorised``); NULL without spend; ``top_category``
  is the largest share (ties: first by name).

Customers without orders or sessions are kept (with the NULLs above) and counted;
orders and sessions that belong to no customer of ``retail.customers`` are not
attributable and are counted in :class:`FeatureStats`, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.errors import MLError

if TYPE_CHECKING:
    from pyiceberg.table import Table

FEATURES_TABLE = "ml.customer_features"
CUSTOMERS, PRODUCTS = "retail.customers", "retail.products"
ORDERS, ORDER_ITEMS, CLICKSTREAM = "retail.orders", "retail.order_items", "web.clickstream"
INPUT_TABLES = (CUSTOMERS, PRODUCTS, ORDERS, ORDER_ITEMS, CLICKSTREAM)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    CUSTOMERS: ("customer_id", "created_at"),
    PRODUCTS: ("product_id", "category"),
    ORDERS: ("order_id", "customer_id", "order_ts", "status", "total_amount"),
    ORDER_ITEMS: ("order_id", "product_id", "line_amount"),
    CLICKSTREAM: ("session_id", "customer_id", "event_type"),
}
EXCLUDED_STATUSES = ("cancelled", "returned")
UNCATEGORISED = "uncategorised"

RunSQL = Callable[[str], pa.Table]


@dataclass(frozen=True)
class FeatureStats:
    """What the feature build saw: counts a reader needs to trust the table."""

    customers: int
    customers_without_orders: int
    customers_without_sessions: int
    unattributed_orders: int  # counted orders whose customer is not in retail.customers
    unattributed_sessions: int  # sessions with no customer, or one not in retail.customers
    reference_ts: datetime | None  # None only when there are no orders
    categories: tuple[str, ...]


@dataclass(frozen=True)
class CustomerFeatures:
    """The feature table (one row per customer, sorted by customer_id) and its stats."""

    table: pa.Table
    stats: FeatureStats


_COUNTED = f"coalesce(status, '') NOT IN ({', '.join(repr(s) for s in EXCLUDED_STATUSES)})"

_CORE_SQL = """
WITH ref AS (SELECT max(order_ts) AS reference_ts FROM {orders}),
counted AS (SELECT order_id, customer_id, order_ts, total_amount FROM {orders} WHERE {counted}),
per_customer AS (
    SELECT customer_id, count(*) AS orders, sum(total_amount) AS spend,
           max(order_ts) AS last_order_ts
    FROM counted GROUP BY customer_id),
per_session AS ({per_session}),
browsing AS (
    SELECT customer_id, count(*) AS sessions, count(*) FILTER (WHERE converted) AS converting
    FROM per_session WHERE customer_id IS NOT NULL GROUP BY customer_id)
SELECT c.customer_id,
       (epoch_us(r.reference_ts) - epoch_us(p.last_order_ts)) / 86400e6 AS recency_days,
       coalesce(p.orders, 0) AS orders,
       CAST(coalesce(p.spend, 0) AS DOUBLE) AS monetary,
       CAST(p.spend AS DOUBLE) / p.orders AS avg_order_value,
       (epoch_us(r.reference_ts) - epoch_us(c.created_at)) / 86400e6 AS tenure_days,
       coalesce(b.sessions, 0) AS sessions,
       coalesce(b.converting, 0) AS converting_sessions,
       CAST(b.converting AS DOUBLE) / b.sessions AS conversion_rate,
       r.reference_ts
FROM {customers} c CROSS JOIN ref r
LEFT JOIN per_customer p ON p.customer_id = c.customer_id
LEFT JOIN browsing b ON b.customer_id = c.customer_id
ORDER BY c.customer_id
"""

_SPEND_SQL = """
SELECT o.customer_id,
       coalesce(split_part(p.category, '/', 1), '{uncategorised}') AS category,
       sum(i.line_amount) AS spend
FROM (SELECT order_id, customer_id FROM {orders} WHERE {counted}) o
JOIN {order_items} i ON i.order_id = o.order_id
LEFT JOIN (SELECT product_id, any_value(category) AS category FROM {products}
           GROUP BY product_id) p ON p.product_id = i.product_id
WHERE o.customer_id IN (SELECT customer_id FROM {customers})
GROUP BY ALL
"""

# A session belongs to the customer its events name (any_value skips NULLs).
_PER_SESSION_SQL = """
    SELECT session_id, any_value(customer_id) AS customer_id,
           bool_or(event_type = 'purchase') AS converted
    FROM {clickstream} GROUP BY session_id"""

_CHECK_SQL = """
WITH known AS (SELECT customer_id FROM {customers})
SELECT (SELECT count(*) FROM known WHERE customer_id IS NULL) AS null_ids,
       (SELECT count(customer_id) - count(DISTINCT customer_id) FROM known) AS duplicate_ids,
       (SELECT count(*) FROM {orders} o WHERE {counted} AND NOT EXISTS
            (SELECT 1 FROM known k WHERE k.customer_id = o.customer_id)) AS unattributed_orders,
       (SELECT count(*) FROM ({per_session}) s WHERE NOT EXISTS
            (SELECT 1 FROM known k WHERE k.customer_id = s.customer_id)) AS unattributed_sessions
"""


def customer_features(run: RunSQL, relations: Mapping[str, str]) -> CustomerFeatures:
    """One feature row per customer, computed by ``run`` (a DuckDB SQL -> Arrow callable).

    ``relations`` maps each name in :data:`INPUT_TABLES` to a DuckDB relation
    (``lake.retail.orders AT (VERSION => 42)``). Raises ``MLError`` when customer
    ids are NULL or repeated (the table must have one row per customer).
    """
    names = {name.split(".")[1]: relation for name, relation in relations.items()}
    fill = {**names, "counted": _COUNTED, "uncategorised": UNCATEGORISED}
    fill["per_session"] = _PER_SESSION_SQL.format(**fill)
    checks = run(_CHECK_SQL.format(**fill)).to_pylist()[0]
    if checks["null_ids"] or checks["duplicate_ids"]:
        raise MLError(
            f"{CUSTOMERS} has {checks['null_ids']} NULL and {checks['duplicate_ids']} repeated "
            "customer_id values; features need exactly one row per customer.",
            hint=f"Deduplicate {CUSTOMERS} (e.g. an upsert keyed on customer_id), then train again.",
        )
    core = run(_CORE_SQL.format(**fill))
    spend = run(_SPEND_SQL.format(**fill))
    table, categories = _with_category_mix(core, spend)
    stats = FeatureStats(
        customers=table.num_rows,
        customers_without_orders=table["orders"].to_pylist().count(0),
        customers_without_sessions=table["sessions"].to_pylist().count(0),
        unattributed_orders=int(checks["unattributed_orders"]),
        unattributed_sessions=int(checks["unattributed_sessions"]),
        reference_ts=core["reference_ts"][0].as_py() if core.num_rows else None,
        categories=categories,
    )
    return CustomerFeatures(table, stats)


def share_column(category: str) -> str:
    """The column name for a category's spend share: ``share_`` + lower snake case."""
    return "share_" + (re.sub(r"[^0-9a-z]+", "_", category.lower()).strip("_") or "blank")


def _with_category_mix(core: pa.Table, spend: pa.Table) -> tuple[pa.Table, tuple[str, ...]]:
    """``core`` plus a share column per category and ``top_category`` (rows stay in order)."""
    categories = tuple(sorted(set(spend["category"].to_pylist())))
    totals: dict[int, dict[str, Decimal]] = {}
    for row in spend.to_pylist():  # exact decimal sums; each share is rounded once
        totals.setdefault(row["customer_id"], {})[row["category"]] = row["spend"]
    ids = core["customer_id"].to_pylist()
    columns = _unique_names([share_column(c) for c in categories], set(core.column_names))
    shares: dict[str, list[float | None]] = {column: [] for column in columns}
    top: list[str | None] = []
    for customer in ids:
        mix = totals.get(customer, {})
        whole = sum(mix.values())
        for category, column in zip(categories, columns, strict=True):
            part = mix.get(category, Decimal(0))
            shares[column].append(float(part / whole) if whole else None)
        top.append(min(mix, key=lambda c: (-mix[c], c)) if whole else None)
    table = core.drop_columns(["reference_ts"])
    for column in columns:
        table = table.append_column(pa.field(column, pa.float64()), [shares[column]])
    table = table.append_column(pa.field("top_category", pa.string()), [top])
    return table.append_column("reference_ts", core["reference_ts"]), categories


def _unique_names(names: list[str], taken: set[str]) -> list[str]:
    """``names`` with a numeric suffix where two categories map to the same column name."""
    unique: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in taken or candidate in unique:
            candidate, n = f"{name}_{n}", n + 1
        unique.append(candidate)
    return unique


def lake_relations(catalog: str, snapshots: Mapping[str, int]) -> dict[str, str]:
    """DuckDB relations reading each lake table AT its snapshot id."""
    relations = {}
    for name, snapshot in snapshots.items():
        namespace, table = name.split(".")
        pinned = f'{catalog}."{namespace}"."{table}" AT (VERSION => {int(snapshot)})'
        relations[name] = f"(SELECT * FROM {pinned})"  # DuckDB takes no alias after AT (...)
    return relations


def resolve_sources(sources: Mapping[str, str] | None) -> dict[str, str]:
    """Each input of :data:`INPUT_TABLES` -> the lake table to read it from (itself by default).

    Raises ``MLError`` for a key that is not one of the inputs.
    """
    chosen = dict(sources or {})
    unknown = sorted(set(chosen) - set(INPUT_TABLES))
    if unknown:
        raise MLError(
            f"{', '.join(unknown)} is not an input of customer features.",
            hint=f"The inputs are {', '.join(INPUT_TABLES)}.",
        )
    return {name: chosen.get(name, name) for name in INPUT_TABLES}


def check_inputs(
    tables: Mapping[str, Table], snapshots: Mapping[str, int], sources: Mapping[str, str]
) -> None:
    """Refuse inputs that cannot make features: no rows, or a required column missing.

    ``sources`` maps each input to its lake table; ``tables`` and ``snapshots``
    map lake table names to the pyiceberg Table and the pinned snapshot it is
    checked at. Raises ``MLError`` naming the table.
    """
    for role, name in sources.items():
        table, snapshot_id = tables[name], snapshots[name]
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise MLError(f"{name} has no snapshot {snapshot_id}.")
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get("total-records") == "0":
            raise MLError(
                f"Input table {name} is empty (snapshot {snapshot_id} has no rows): "
                "segments need customers, orders, order lines, products and clickstream.",
                hint=f"Load data into {name} (`lakehouse load-sample`, or `lakehouse ingest`), "
                "then train again. No output table was changed.",
            )
        pinned = snapshot.schema_id
        schema = (table.schemas().get(pinned) if pinned is not None else None) or table.schema()
        missing = [c for c in REQUIRED_COLUMNS[role] if c not in schema.column_names]
        if missing:
            raise MLError(
                f"Input table {name} lacks the column(s) {', '.join(missing)} that customer "
                f"features are computed from (it has {', '.join(schema.column_names)}).",
                hint=f"Give {name} the columns of the retail sample's {role} "
                "(`lakehouse load-sample` loads them). No output table was changed.",
            )
