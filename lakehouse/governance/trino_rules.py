"""The governance policy as Trino's file-based access-control rules.

Trino enforces the policy itself, so direct clients (the Trino CLI, the DB-API,
BI tools) are governed as ``lake.sql(..., engine="trino")`` is. The rules are not a
second reading of the policy: every table rule comes from
:func:`~lakehouse.governance.access.table_access` and
:func:`~lakehouse.governance.access.check` for one (user, table) of the catalog.

What maps to what (Trino's table privileges):

- SELECT -> ``SELECT``, with the columns the principal may not see ``allow: false``,
  masks (and cell-level ``CASE``) as column ``mask`` and the row filter as ``filter``,
  both evaluated as the admin (``*_environment``) so they read the stored values;
- INSERT -> ``INSERT``; DELETE -> ``DELETE``; INSERT and DELETE -> ``UPDATE`` (an
  update deletes and inserts rows);
- ALTER and DROP -> ``OWNERSHIP`` (Trino's one privilege for both: granted only when
  both are held, never more than the policy says);
- CREATE_TABLE on a namespace -> ``OWNERSHIP`` of tables not yet in the catalog there
  (Trino asks for ownership of the new table); ALTER and DROP on a namespace -> schema
  ownership;
- DESCRIBE alone has no Trino privilege: such a table stays invisible in Trino.

Masks are written for Trino here: hash and partial in Trino's own functions (the
translator refuses them, not knowing they are the same), expressions and filters
through the project's translation step. Trino requires a mask of the column's type;
hash and partial of non-text columns are refused by ``access``.

Unknown users get nothing but ``SELECT 1``. The admin (and members of the admin
role) get everything, system information included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from filelock import FileLock
from sqlglot import exp

from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError, LakehouseError, PolicyError
from lakehouse.governance.access import TableAccess, check, quote, stale_entries, table_access
from lakehouse.governance.policy import Permission, Policy
from lakehouse.governance.trino_guard import (
    guarded_filter,
    guarded_tables_changed,
    new_columns_hidden,
)

log = logging.getLogger("lakehouse.governance")

ALL_PRIVILEGES = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]
READABLE_CATALOGS = ("system", "tpch")  # the lake's own catalog is added by name
REFRESH_PERIOD = "1s"
# Trino reloads the file at the first check a refresh period after its last load: a
# rewrite is in force for every query that starts this long after it.
IN_FORCE_SECONDS = 1.25
_MASK_SLOT = "__lakehouse_mask__"


@dataclass(frozen=True)
class LakeTable:
    """A table of the catalog: ``name`` (``ns.table``) and its ordered ``columns``
    (``{column: DuckDB type}``, '' for nested types); ``former``: names its older
    schemas had that it has no more (time travel reads them: the policy names none);
    ``schema_id``: its current schema's id; ``ids``: ``{column: Iceberg field id}``."""

    name: str
    columns: Mapping[str, str]
    former: tuple[str, ...] = ()
    schema_id: int = 0
    ids: Mapping[str, int] | None = None

    @property
    def namespace(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass
class Rules:
    """Trino's rules document and the (user, table) pairs refused for a policy error."""

    document: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    guarded: dict[str, int] = field(default_factory=dict)  # table -> schema id (trino_guard)


def literal(name: str) -> str:
    """``name`` as a Java regular expression matching only itself."""
    return re.escape(name)


def users_of(policy: Policy, admin: str) -> list[str]:
    """Users the policy names (declared users, and grant or mask principals that are not
    declared roles), admins left out; sorted."""
    roles = {p.name for p in policy.principals if p.kind == "role"}
    named = {p.name for p in policy.principals if p.kind == "user"}
    named |= {g.principal for g in policy.grants} | {m.principal for m in policy.masks}
    return sorted(n for n in named - roles if not policy.is_admin(n, admin))


def admins_of(policy: Policy, admin: str) -> list[str]:
    return sorted({admin} | {p.name for p in policy.principals if policy.is_admin(p.name, admin)})


def build_rules(policy: Policy, tables: Sequence[LakeTable], *, admin: str, catalog: str) -> Rules:
    """Trino's rules document for ``policy`` over ``tables`` (pure; no server)."""
    admins = "|".join(literal(a) for a in admins_of(policy, admin))
    users = users_of(policy, admin)
    namespaces = sorted({t.namespace for t in tables})
    rules = Rules({})
    table_rules: list[dict[str, Any]] = [{"user": admins, "privileges": ALL_PRIVILEGES}]
    new_table_rules: list[dict[str, Any]] = []
    schema_rules: list[dict[str, Any]] = [{"user": admins, "owner": True}]
    for user in users:
        for table in tables:
            table_rules.append(_table_rule(policy, user, table, admin, catalog, rules))
        for namespace in sorted(set(namespaces) | _create_namespaces(policy, user)):
            new_table_rules += _new_tables_rule(policy, user, namespace, admin, catalog)
            if _holds(policy, user, admin, namespace=namespace, needs=("ALTER", "DROP")):
                schema_rules.append(_scope(user, catalog, schema=namespace) | {"owner": True})
    if users:  # the tpch sample catalog is public data
        known = "|".join(literal(u) for u in users)
        table_rules.append({"user": known, "catalog": "tpch", "privileges": ["SELECT"]})
    rules.document = {
        "catalogs": _catalog_rules(admins, users, catalog),
        "schemas": schema_rules,
        "tables": table_rules + new_table_rules,
        "system_information": [{"user": admins, "allow": ["read", "write"]}],
        "queries": [{"user": admins, "allow": ["execute", "view", "kill"]}, {"allow": ["execute"]}],
        "procedures": [{"user": admins, "privileges": ["EXECUTE", "GRANT_EXECUTE"]}],
        "impersonation": [{"original_user": admins, "new_user": ".*"}],
    }
    return rules


def _catalog_rules(admins: str, users: list[str], catalog: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [{"user": admins, "allow": "all"}]
    if users:
        known = "|".join(literal(u) for u in users)
        rules.append({"user": known, "catalog": literal(catalog), "allow": "all"})
        rules.append({"user": known, "catalog": "|".join(READABLE_CATALOGS), "allow": "read-only"})
    rules.append({"catalog": ".*", "allow": "none"})  # unknown users, and the rest
    return rules


def _scope(user: str, catalog: str, schema: str, table: str | None = None) -> dict[str, Any]:
    scope = {"user": literal(user), "catalog": literal(catalog), "schema": literal(schema)}
    return scope | ({"table": literal(table)} if table is not None else {})


def _holds(policy: Policy, user: str, admin: str, *, needs: Sequence[str],
           table: str | None = None, namespace: str | None = None) -> bool:  # fmt: skip
    try:
        for permission in needs:
            check(policy, user, Permission(permission), admin=admin, table=table,
                  namespace=namespace)  # fmt: skip
    except AccessDeniedError:
        return False
    return True


def _privileges(policy: Policy, user: str, table: str, admin: str) -> list[str]:
    """Trino privileges other than SELECT that the policy gives ``user`` on ``table``."""
    held = {p for p in ("INSERT", "DELETE", "ALTER", "DROP")
            if _holds(policy, user, admin, table=table, needs=(p,))}  # fmt: skip
    privileges: list[str] = [p for p in ("INSERT", "DELETE") if p in held]
    if {"INSERT", "DELETE"} <= held:
        privileges.append("UPDATE")
    if {"ALTER", "DROP"} <= held:
        privileges.append("OWNERSHIP")
    return privileges


def _table_rule(policy: Policy, user: str, table: LakeTable, admin: str, catalog: str,
                rules: Rules) -> dict[str, Any]:  # fmt: skip
    problems = rules.problems
    namespace, name = table.name.rsplit(".", 1)
    rule = _scope(user, catalog, namespace, name)
    stale = stale_entries(policy, table.name, list(table.columns), table.ids)
    if stale and not policy.is_admin(user, admin):
        first = stale[0]
        problems.append(f"{user} on {table.name}: {first.entry} names column {first.column}, "
                        f"which {first.change}")  # fmt: skip
        return rule | {"privileges": []}  # fail closed: the entry protects nothing now
    privileges = _privileges(policy, user, table.name, admin)
    try:
        access = table_access(policy, user, table.name, list(table.columns), table.columns,
                              admin=admin, ids=table.ids)  # fmt: skip
        select: dict[str, Any] | None = _select_rule(access, table, admin)
    except AccessDeniedError:
        select = None  # no SELECT (an unrestricted one has an empty rule)
    except (PolicyError, LakehouseError) as exc:
        problems.append(f"{user} on {table.name}: {exc.message}")
        return rule | {"privileges": []}  # a policy that cannot be enforced gives nothing
    if select is not None:
        privileges.insert(0, "SELECT")
        # A rename made directly in Trino or Spark moves a name these rules hide or mask
        # to another column: every rule that hides, masks or filters is guarded.
        restricted = not access.unrestricted or len(access.columns) != len(table.columns)
        if restricted or new_columns_hidden(policy, user, table.name, list(table.columns),
                                            admin=admin):  # fmt: skip
            visible = [c for c in table.columns if c in {v.name for v in access.columns}]
            select["filter"] = guarded_filter(select.get("filter"), table.name, visible,
                                              catalog)  # fmt: skip
            select["filter_environment"] = {"user": admin}
            rules.guarded[table.name] = table.schema_id
    return rule | {"privileges": privileges} | (select or {})


def _select_rule(access: TableAccess, table: LakeTable, admin: str) -> dict[str, Any]:
    environment = {"user": admin}
    shown = {c.name: c for c in access.columns}
    columns: list[dict[str, Any]] = []
    for column in table.columns:
        seen = shown.get(column)
        if seen is None:
            columns.append({"name": column, "allow": False})
        elif seen.expression != quote(column) or seen.mask is not None:
            mask = trino_expression(seen.expression, table, seen.mask, column)
            columns.append({"name": column, "mask": mask, "mask_environment": environment})
    # Trino's FOR VERSION AS OF reads an old schema: a column dropped or renamed since
    # is named by no policy entry any more, so it stays hidden from governed users.
    columns += [{"name": former, "allow": False} for former in table.former]
    rule: dict[str, Any] = {"columns": columns} if columns else {}
    if access.row_filter is not None:
        rule["filter"] = trino_expression(access.row_filter, table)
        rule["filter_environment"] = environment
    return rule


def _create_namespaces(policy: Policy, user: str) -> set[str]:
    """Namespaces the policy names in a grant to ``user`` (or its roles)."""
    who = set(policy.identities(user))
    return {g.resource.namespace for g in policy.grants
            if g.principal in who and g.resource.namespace is not None}  # fmt: skip


def _new_tables_rule(policy: Policy, user: str, namespace: str, admin: str,
                     catalog: str) -> list[dict[str, Any]]:  # fmt: skip
    """The rule for tables created in ``namespace`` after these rules were written:
    what an all-tables or tag grant gives any table there (SELECT waits for the next
    rules, which know the columns), and ownership with CREATE_TABLE."""
    unseen = f"{namespace}.\x00new table"  # no real table has this name
    privileges = _privileges(policy, user, unseen, admin)
    if _holds(policy, user, admin, namespace=namespace, needs=("CREATE_TABLE",)):
        privileges = [p for p in privileges if p != "OWNERSHIP"] + ["OWNERSHIP"]
    if not privileges:
        return []
    return [_scope(user, catalog, namespace) | {"table": ".*", "privileges": privileges}]


def trino_expression(expression: str, table: LakeTable, mask: str | None = None,
                     column: str | None = None) -> str:  # fmt: skip
    """A DuckDB-dialect expression over ``table``'s columns, written for Trino.

    Hash and partial masks are spelled in Trino's functions with DuckDB's answers
    (lower-case hex SHA-256 of the UTF-8 text; all but the last four characters as
    ``*``); the rest goes through the translation step, which refuses what it cannot
    write faithfully (raised as LakehouseError).
    """
    from lakehouse.engines.translate import translate

    slot = None
    columns = dict(table.columns)
    if mask in ("hash", "partial") and column is not None:
        from lakehouse.governance.access import _masked

        duck = _masked((mask, None), column, list(columns), columns.get(column))
        expression = expression.replace(duck, quote(_MASK_SLOT))
        columns[_MASK_SLOT] = "VARCHAR"
        slot = builtin_mask(mask, column)
    source = ".".join(quote(part) for part in table.name.rsplit(".", 1))
    written = translate(f"SELECT {expression} AS v FROM {source}", "trino",
                        schema={table.name: columns}).sql  # fmt: skip
    tree = sqlglot.parse_one(written, read="trino")
    assert isinstance(tree, exp.Select)
    value = tree.expressions[0].unalias().sql("trino")
    if slot is not None:
        value = value.replace(exp.to_identifier(_MASK_SLOT, quoted=True).sql("trino"), slot)
    return value


def builtin_mask(kind: str, column: str) -> str:
    """Trino's spelling of lakehouse's ``hash`` or ``partial`` mask of ``column``."""
    name = exp.to_identifier(column, quoted=True).sql("trino")
    if kind == "hash":
        return f"lower(to_hex(sha256(to_utf8({name}))))"
    return (f"CASE WHEN length({name}) <= 4 THEN {name} "
            f"ELSE concat(rpad('', length({name}) - 4, '*'), substr({name}, length({name}) - 3)) END")  # fmt: skip


# -- where the rules live, and keeping them current ---------------------------------


def rules_path(settings: Settings) -> Path:
    return settings.home_dir / "governance" / "trino-rules.json"


def _state_path(settings: Settings) -> Path:
    return settings.home_dir / "governance" / "trino-rules.state.json"


def access_control_properties(settings: Settings) -> str:
    """``etc/access-control.properties``: the file-based plugin on the rules file."""
    lines = {
        "access-control.name": "file",
        "security.config-file": rules_path(settings),
        "security.refresh-period": REFRESH_PERIOD,
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def lake_tables(settings: Settings) -> list[LakeTable]:
    """Every table of the catalog with its columns (one catalog request per table)."""
    from lakehouse.engines.semantics import table_columns
    from lakehouse.lake import catalog as cat

    catalog = cat.open_catalog(settings)
    tables = []
    for name in cat.list_tables(catalog):
        try:
            loaded = cat.load_table(catalog, name)
            schema = loaded.schema()
        except Exception as exc:
            # One unreadable table (metadata gone, dropped since the listing) gets no
            # rule, so only the admin reaches it; the others keep theirs (this failure
            # used to fail the whole file closed, denying everyone every table).
            log.warning("governance: %s left out of Trino's rules: %s", name, exc)
            continue
        now = {f.name.lower() for f in schema.fields}
        former = sorted({f.name for old in loaded.schemas().values() for f in old.fields
                         if f.name.lower() not in now})  # fmt: skip
        ids = {f.name: f.field_id for f in schema.fields}
        tables.append(
            LakeTable(name, table_columns(schema.fields), tuple(former), schema.schema_id, ids)
        )
    return tables


def hidden_columns(settings: Settings, principal: str, table: str) -> list[str]:
    """Columns of ``table`` the policy hides from ``principal`` (to explain Trino's
    refusal of a SELECT that names them); empty when it may read none or all.
    Raises the policy's AccessDeniedError when an entry naming a column of the table
    is stale (renamed, dropped, another field now): that is why Trino refused."""
    from lakehouse.engines.semantics import table_columns
    from lakehouse.governance.access import stale_denial
    from lakehouse.governance.store import load_policy
    from lakehouse.lake import catalog as cat

    schema = cat.load_table(cat.open_catalog(settings), table).schema()
    columns = table_columns(schema.fields)
    ids = {f.name: f.field_id for f in schema.fields}
    policy, admin = load_policy(settings), settings.governance_admin
    stale = stale_entries(policy, table, list(columns), ids)
    if stale and not policy.is_admin(principal, admin):
        raise stale_denial(principal, table, stale)
    try:
        access = table_access(policy, principal, table, list(columns), columns, admin=admin,
                              ids=ids)  # fmt: skip
    except (AccessDeniedError, PolicyError):
        return []
    shown = {c.name for c in access.columns}
    return [c for c in columns if c not in shown]


def table_names(settings: Settings) -> list[str]:
    """'ns.table' of every table (one request per namespace, no table loaded)."""
    from lakehouse.lake import catalog as cat

    return cat.list_tables(cat.open_catalog(settings))


def _digest(revision: int, names: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([revision, sorted(names)]).encode()).hexdigest()


def write_rules(settings: Settings) -> Rules:
    """Regenerate the rules file from the stored policy and the catalog's tables,
    atomically (Trino picks it up within ``REFRESH_PERIOD``, no restart).

    When the catalog cannot be read, the rules written give the admin everything and
    everyone else nothing (fail closed), and are marked stale, so the next
    :func:`ensure_current` regenerates them.
    """
    from lakehouse.governance.store import load_policy

    path = rules_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        policy = load_policy(settings)
        try:
            tables = lake_tables(settings)
            digest = _digest(policy.revision, [t.name for t in tables])
        except Exception:  # the catalog is down or answers badly: fail closed
            tables, digest = [], "stale"
        rules = build_rules(policy, tables, admin=settings.governance_admin,
                            catalog=settings.catalog_name)  # fmt: skip
        _replace(path, json.dumps(rules.document, indent=1))
        state = {"digest": digest, "revision": policy.revision, "guarded": rules.guarded,
                 "tables": [t.name for t in tables], "problems": rules.problems}  # fmt: skip
        _replace(_state_path(settings), json.dumps(state))
    return rules


def ensure_current(settings: Settings, reads: Sequence[str] | None = None) -> bool:
    """Regenerate the rules when the policy's revision or the list of tables changed
    since they were written (a new table a tag grant covers), and wait until Trino
    applies them; True if regenerated.

    ``reads`` ('ns.table' names a query reads): when the rules already know each of
    them and the revision is current, the catalog is not asked (reading the policy
    file only); otherwise the tables are listed (one catalog request per namespace).
    A read table whose rule carries a column guard (:mod:`.trino_guard`) is loaded to
    compare its schema id: a changed one regenerates the rules too.
    """
    from lakehouse.governance.store import load_policy

    try:
        state = json.loads(_state_path(settings).read_text())
    except (OSError, ValueError):
        state = {}
    revision = load_policy(settings).revision
    known = set(state.get("tables", ()))
    guarded = state.get("guarded", {})
    if guarded and guarded_tables_changed(settings, guarded, reads):
        pass  # a column-list grant's table changed: its guard would refuse the query
    elif (
        state.get("revision") == revision and reads is not None and known.issuperset(reads)
    ) or state.get("digest") == _digest(revision, table_names(settings)):
        return False
    write_rules(settings)
    time.sleep(IN_FORCE_SECONDS)  # the caller's next query sees the new rules
    return True


def governed_trino_running(settings: Settings) -> bool:
    """Whether this home's Trino runs on the rules file (then a change waits for it)."""
    from lakehouse.runtimes.local import LocalRuntime
    from lakehouse.services.trino import TrinoNode

    node = TrinoNode(settings)
    if not (node.node_dir / "etc" / "access-control.properties").is_file():
        return False
    return LocalRuntime(settings).pid(node.name) is not None


def policy_changed(settings: Settings, policy: Policy) -> None:
    """The store's change listener: rewrite Trino's rules when governance is on, and
    return once Trino applies them (a revocation is in force when ``revoke`` returns)."""
    if settings.governance_enabled:
        write_rules(settings)
        if governed_trino_running(settings):
            time.sleep(IN_FORCE_SECONDS)


def _replace(path: Path, text: str) -> None:
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
