"""Governance (the Lake Formation role): a policy of grants, data cells filters,
column masks and LF-tags, stored under the home and enforced on every engine.

- :mod:`.policy`: the policy as data (pydantic models);
- :mod:`.store`: where it is kept, atomic updates, export and import;
- :mod:`.access`: the decision for one principal and one table, used by every
  enforcer (Trino's access-control rules, the query rewrite for DuckDB and Spark,
  S3 credentials, the audit log).
"""

from lakehouse.governance.access import ColumnAccess, TableAccess, check, table_access
from lakehouse.governance.catalog_access import policy_changed as _catalog_rules_changed
from lakehouse.governance.policy import Permission, Policy
from lakehouse.governance.s3_access import policy_changed as _s3_identities_changed
from lakehouse.governance.store import ON_CHANGE, load_policy, update
from lakehouse.governance.trino_rules import policy_changed as _trino_rules_changed

ON_CHANGE.append(_trino_rules_changed)  # Trino's rules follow every policy change
ON_CHANGE.append(_s3_identities_changed)  # and so do the S3 identities
ON_CHANGE.append(_catalog_rules_changed)  # and the catalog's principal tokens

__all__ = [
    "ColumnAccess", "Permission", "Policy", "TableAccess", "check", "load_policy",
    "table_access", "update",
]  # fmt: skip
