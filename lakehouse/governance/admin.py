"""Changing the governance policy: what ``lakehouse grant``, ``revoke``, ``principal``,
``filter``, ``mask``, ``tag`` and ``governance import`` call.

Every change is checked before anything is stored: against the catalog (the tables,
columns and namespaces it names exist), against the policy (principals are known,
tag values are allowed by their key, a filter exists before it is granted), and
against the actor: the admin may do everything; anyone else may grant (and revoke)
only what it holds WITH GRANT OPTION, and nothing else. A refusal is one
PolicyError (or AccessDeniedError) with a hint, and the stored policy is unchanged.
Filters, masks, LF-tags and whole-policy imports: :mod:`.admin_objects`.

The catalog is asked through :class:`LakeSchema` (a pyiceberg catalog by default),
so the checks are plain functions of the policy and the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance import store
from lakehouse.governance.access import effective_tags
from lakehouse.governance.binding import IdsOf, bound
from lakehouse.governance.policy import (
    NAMESPACE_PERMISSIONS,
    TABLE_PERMISSIONS,
    Grant,
    Permission,
    Policy,
    Principal,
    Resource,
)  # fmt: skip

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

UNCHANGED = "Nothing was changed."
POLICY_ENGINE = "policy"  # the audit log's engine of policy changes


class LakeSchema(Protocol):
    """What the checks need to know of the lake."""

    def namespace_exists(self, namespace: str) -> bool: ...

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name -> type name (``VARCHAR`` for text), or None: no such table."""


def field_ids_of(lake: LakeSchema) -> IdsOf | None:
    """The lake's ``table -> {column: Iceberg field id}`` lookup, when it has one (a
    lake without field ids binds nothing: its columns are checked by name)."""
    found = getattr(lake, "field_ids", None)
    return found if callable(found) else None


class CatalogSchema:
    """:class:`LakeSchema` of a pyiceberg catalog (each table loaded once)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._columns: dict[str, dict[str, str] | None] = {}
        self._ids: dict[str, dict[str, int]] = {}

    def namespace_exists(self, namespace: str) -> bool:
        return self.catalog.namespace_exists(namespace)

    def columns(self, table: str) -> dict[str, str] | None:
        if table not in self._columns:
            from pyiceberg.exceptions import (
                NoSuchIdentifierError,
                NoSuchNamespaceError,
                NoSuchTableError,
            )  # fmt: skip
            from pyiceberg.types import StringType

            try:
                if "." not in table:
                    raise NoSuchTableError(table)
                schema = self.catalog.load_table(table).schema()
            except (NoSuchTableError, NoSuchNamespaceError, NoSuchIdentifierError):
                self._columns[table] = None
            else:
                self._ids[table] = {f.name: f.field_id for f in schema.fields}
                self._columns[table] = {
                    f.name: "VARCHAR" if isinstance(f.field_type, StringType) else str(f.field_type).upper()
                    for f in schema.fields
                }  # fmt: skip
        return self._columns[table]

    def field_ids(self, table: str) -> dict[str, int] | None:
        """Column name -> Iceberg field id, or None: no such table."""
        return None if self.columns(table) is None else self._ids[table]


def lake_schema(settings: Settings) -> CatalogSchema:
    from lakehouse.lake.catalog import open_catalog

    return CatalogSchema(open_catalog(settings))


@dataclass(frozen=True)
class Change:
    """A stored change: the policy after it, and what it did in words."""

    policy: Policy
    summary: str


def apply_change(settings: Settings, change: Callable[[Policy], tuple[Policy, str]], *,
                 action: str, resource: str, actor: str | None = None,
                 lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """Store ``change`` (see :func:`store.update`) with the columns its entries name
    bound to their field ids in ``lake`` (:mod:`.binding`), and audit it: who (``actor``,
    default settings.acting_principal()) did ``action`` (GRANT, REVOKE, SET_MASK...)
    on ``resource``, with the summary and the new revision; a change refused because
    the actor may not make it (AccessDeniedError) is audited as denied. Bad input
    (PolicyError) changes nothing and is not an access decision: not audited."""
    from lakehouse.governance.audit import record

    said: list[str] = []
    who = settings.acting_principal(actor)

    def run(policy: Policy) -> Policy:
        changed, summary = change(policy)
        said.append(summary)
        return bound(changed, field_ids_of(lake) if lake is not None else None)

    try:
        stored = store.update(settings, run)
    except AccessDeniedError as denied:
        record(settings, who, POLICY_ENGINE, resource, (), (), False, None, action=action,
               reason=denied.message)  # fmt: skip
        raise
    record(settings, who, POLICY_ENGINE, resource, (), (), True, None, action=action,
           reason=f"{said[-1]} (policy revision {stored.revision})")  # fmt: skip
    return Change(stored, said[-1])


def refused(message: str, hint: str) -> PolicyError:
    return PolicyError(f"{message} {UNCHANGED}", hint=hint)


# -- principals --------------------------------------------------------------------------


def known_principals(policy: Policy, admin: str) -> set[str]:
    return {p.name for p in policy.principals} | {admin}


def require_principal(policy: Policy, name: str, admin: str) -> None:
    if name not in known_principals(policy, admin):
        raise refused(f"Unknown principal {name!r}.",
                      f"Add it first: `lakehouse principal add {name}` "
                      "(`lakehouse principal list` shows the known ones).")  # fmt: skip


def require_admin(policy: Policy, actor: str, admin: str, what: str) -> None:
    if not policy.is_admin(actor, admin):
        raise AccessDeniedError(actor, "ADMIN", what, hint=f"Only the governance admin "
                                f"({admin}, or a member of role admin) may {what}.")  # fmt: skip


def add_principal(settings: Settings, name: str, roles: Sequence[str] = (),
                  kind: str = "user", actor: str | None = None) -> Change:  # fmt: skip
    """Add a user (member of ``roles``) or a role; roles named but unknown are added
    as roles. Refused when ``name`` exists, or a role is named as a user's role."""
    admin = settings.governance_admin

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "add principals")
        if name in known_principals(policy, admin):
            raise refused(
                f"Principal {name!r} exists already.", "`lakehouse principal list` shows it."
            )
        if kind == "role" and roles:
            raise refused(f"Role {name!r} cannot have roles: roles do not nest.", "Drop --role.")
        added: list[Principal] = []
        for role in roles:
            found = policy.principal(role)
            if found is not None and found.kind != "role":
                raise refused(f"{role!r} is a user, not a role.", "Name a role (or a new name).")
            if found is None and role not in (p.name for p in added):
                added.append(Principal(name=role, kind="role"))
        added.append(Principal(name=name, kind=kind, roles=tuple(dict.fromkeys(roles))))  # type: ignore[arg-type]
        new_roles = [p.name for p in added[:-1]]
        said = f"added {kind} {name}" + (
            f" (new roles: {', '.join(new_roles)})" if new_roles else ""
        )
        return policy.model_copy(update={"principals": (*policy.principals, *added)}), said

    return apply_change(settings, change, action="ADD_PRINCIPAL", resource=name, actor=actor)


def remove_principal(settings: Settings, name: str, actor: str | None = None) -> Change:
    """Remove a principal with its grants and masks (and, for a role, its membership)."""
    admin = settings.governance_admin

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "remove principals")
        if policy.principal(name) is None:
            raise refused(
                f"Unknown principal {name!r}.", "`lakehouse principal list` shows the known ones."
            )
        grants = [g for g in policy.grants if g.principal != name]
        masks = [m for m in policy.masks if m.principal != name]
        principals = [replace_roles(p, [r for r in p.roles if r != name])
                      for p in policy.principals if p.name != name]  # fmt: skip
        said = (f"removed {name}, its {len(policy.grants) - len(grants)} grant(s) and "
                f"{len(policy.masks) - len(masks)} mask(s)")  # fmt: skip
        return policy.model_copy(update={"principals": tuple(principals), "grants": tuple(grants),
                                         "masks": tuple(masks)}), said  # fmt: skip

    return apply_change(settings, change, action="REMOVE_PRINCIPAL", resource=name, actor=actor)


def replace_roles(principal: Principal, roles: Sequence[str]) -> Principal:
    return principal.model_copy(update={"roles": tuple(roles)})


# -- grants -------------------------------------------------------------------------------


def check_grant(policy: Policy, grant: Grant, lake: LakeSchema, admin: str) -> None:
    """Refuse a grant naming an unknown principal, table, column, namespace, filter or
    tag value, or a permission that does not apply to its resource."""
    require_principal(policy, grant.principal, admin)
    resource = grant.resource
    wanted = set(grant.permissions) - {Permission.ALL}
    if resource.table is not None:
        columns = require_table(lake, resource.table)
        for named in (resource.columns or ()) + (resource.excluded_columns or ()):
            require_column(columns, resource.table, named)
        allowed: frozenset[Permission] = TABLE_PERMISSIONS
    elif resource.namespace is not None:
        require_namespace(lake, resource.namespace)
        allowed = TABLE_PERMISSIONS if resource.all_tables else NAMESPACE_PERMISSIONS
    elif resource.data_cells_filter is not None:
        if policy.filter_named(resource.data_cells_filter) is None:
            raise refused(f"No data cells filter named {resource.data_cells_filter!r}.",
                          "Create it with `lakehouse filter create NAME --table T --where SQL`.")  # fmt: skip
        allowed = frozenset({Permission.SELECT})
    else:
        require_tag_values(policy, resource.tags or {})
        allowed = TABLE_PERMISSIONS | NAMESPACE_PERMISSIONS
    if wanted - allowed:
        bad = ", ".join(sorted(wanted - allowed))
        raise refused(f"{bad} does not apply to {resource.describe()}.",
                      f"Permissions on it: {', '.join(sorted(allowed))} (or ALL).")  # fmt: skip


def grant(settings: Settings, wanted: Grant, *, actor: str | None = None,
          lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """Store ``wanted`` (merged into the principal's grant on the same resource with the
    same grant option). The actor (default: settings.acting_principal()) must be admin or hold it
    WITH GRANT OPTION."""
    admin = settings.governance_admin
    schema = lake or lake_schema(settings)

    def change(policy: Policy) -> tuple[Policy, str]:
        check_grant(policy, wanted, schema, admin)
        require_grantable(policy, settings.acting_principal(actor), wanted, admin)
        return merged(policy, wanted), f"granted {_words(wanted)}"

    return apply_change(settings, change, action="GRANT", resource=wanted.resource.describe(),
                        actor=actor, lake=schema)  # fmt: skip


def merged(policy: Policy, wanted: Grant) -> Policy:
    """``policy`` with ``wanted`` added; a permission held without grant option moves to
    the grant with it when ``wanted`` has it."""
    grants: list[Grant] = []
    target = None
    for held in policy.grants:
        same = (held.principal, held.resource) == (wanted.principal, wanted.resource)
        if same and held.grant_option == wanted.grant_option:
            target = held.model_copy(
                update={"permissions": (*held.permissions, *wanted.permissions)}
            )
            grants.append(Grant.model_validate(target.model_dump()))
            continue
        if same and wanted.grant_option:
            rest = tuple(p for p in held.permissions if p not in wanted.permissions)
            if not rest:
                continue
            held = held.model_copy(update={"permissions": rest})
        grants.append(held)
    if target is None:
        grants.append(wanted)
    return policy.model_copy(update={"grants": tuple(grants)})


def revoke(settings: Settings, unwanted: Grant, *, actor: str | None = None) -> Change:
    """Take ``unwanted.permissions`` on exactly ``unwanted.resource`` from its principal
    (with ``grant_option``: only the right to grant them; the permissions stay).
    Refused when the principal holds none of them there (with the grant option, for
    ``grant_option``); the summary names those it did not hold."""
    admin = settings.governance_admin
    what = "grant option for " if unwanted.grant_option else ""

    def change(policy: Policy) -> tuple[Policy, str]:
        require_grantable(policy, settings.acting_principal(actor), unwanted, admin)
        changed, taken = revoked(policy, unwanted)
        if not taken:
            raise refused(f"{unwanted.principal} holds no {what}{', '.join(unwanted.permissions)} "
                          f"on {unwanted.resource.describe()} to revoke.",
                          f"`lakehouse grants --principal {unwanted.principal}` lists what it holds; "
                          "a revoke names the resource exactly as it was granted.")  # fmt: skip
        missing = [p for p in unwanted.permissions if p not in taken]
        said = (f"revoked {'the ' if what else ''}{what}{', '.join(taken)} on {unwanted.resource.describe()} "
                f"from {unwanted.principal}")  # fmt: skip
        said += f" (it held no {what}{', '.join(missing)} there)" if missing else ""
        return changed, said

    return apply_change(settings, change, action="REVOKE", resource=unwanted.resource.describe(),
                        actor=actor)  # fmt: skip


def revoked(policy: Policy, unwanted: Grant) -> tuple[Policy, list[Permission]]:
    """``policy`` without ``unwanted``'s permissions (with ``grant_option``: without
    the right to grant them, the permissions kept), and the permissions taken."""
    kept: list[Grant] = []
    stripped: list[Grant] = []
    taken: list[Permission] = []
    for held in policy.grants:
        same = (held.principal, held.resource) == (unwanted.principal, unwanted.resource)
        hit = [p for p in held.permissions if p in unwanted.permissions]
        if not same or not hit or (unwanted.grant_option and not held.grant_option):
            kept.append(held)
            continue
        taken += [p for p in hit if p not in taken]
        rest = tuple(p for p in held.permissions if p not in hit)
        if rest:
            kept.append(held.model_copy(update={"permissions": rest}))
        if unwanted.grant_option:
            stripped.append(
                held.model_copy(update={"permissions": tuple(hit), "grant_option": False})
            )
    result = policy.model_copy(update={"grants": tuple(kept)})
    for grant in stripped:
        result = merged(result, grant)
    return result, taken


def require_grantable(policy: Policy, actor: str, wanted: Grant, admin: str) -> None:
    """Refuse unless ``actor`` is admin or holds each permission of ``wanted`` on a
    resource covering it, WITH GRANT OPTION."""
    if policy.is_admin(actor, admin):
        return
    who = set(policy.identities(actor))
    held = [g for g in policy.grants if g.principal in who and g.grant_option]
    for permission in wanted.permissions:
        if not any(
            (permission in g.permissions or Permission.ALL in g.permissions)
            and covers(g.resource, wanted.resource, policy)
            for g in held
        ):
            raise AccessDeniedError(
                actor, f"{permission} WITH GRANT OPTION", wanted.resource.describe(),
                hint=f"Ask the admin to grant {actor} {permission} on it WITH GRANT OPTION "
                f"(`lakehouse grants --principal {actor}` shows what it holds).",
            )  # fmt: skip


def covers(held: Resource, wanted: Resource, policy: Policy) -> bool:
    """Whether a grant on ``held`` includes everything a grant on ``wanted`` gives."""
    if held == wanted:
        return True
    wanted_table = wanted.table
    if wanted.data_cells_filter is not None:
        found = policy.filter_named(wanted.data_cells_filter)
        wanted_table = found.table if found else None
    if held.all_tables and held.namespace is not None:
        if wanted.all_tables and wanted.namespace == held.namespace:
            return True
        return wanted_table is not None and wanted_table.rsplit(".", 1)[0] == held.namespace
    if held.table is not None and held.table == wanted_table:
        if held.columns is None and held.excluded_columns is None:
            return True
        if wanted.table is None or (wanted.columns is None and wanted.excluded_columns is None):
            return False  # a whole table or a filter's rows exceed a column grant
        if held.columns is not None:
            return wanted.columns is not None and set(wanted.columns) <= set(held.columns)
        excluded = set(held.excluded_columns or ())
        if wanted.columns is not None:
            return not excluded & set(wanted.columns)
        return excluded <= set(wanted.excluded_columns or ())
    if held.tags is not None and wanted.tags is not None:
        return all(set(wanted.tags.get(k, ())) <= set(v) and k in wanted.tags
                   for k, v in held.tags.items())  # fmt: skip
    return False


def grants_of(
    policy: Policy, principal: str | None = None, table: str | None = None
) -> list[Grant]:
    """Grants naming ``principal`` (or one of its roles) and reaching ``table`` (the
    table itself, its namespace's all-tables grants, its filters, tag grants matching
    its tags)."""
    found = list(policy.grants)
    if principal is not None:
        who = set(policy.identities(principal))
        found = [g for g in found if g.principal in who]
    if table is not None:
        found = [g for g in found if _reaches(policy, g.resource, table)]
    return found


def _reaches(policy: Policy, resource: Resource, table: str) -> bool:
    if resource.table is not None:
        return resource.table == table
    if resource.namespace is not None:
        return resource.all_tables and table.rsplit(".", 1)[0] == resource.namespace
    if resource.data_cells_filter is not None:
        found = policy.filter_named(resource.data_cells_filter)
        return found is not None and found.table == table
    tags = resource.tags or {}
    levels = [effective_tags(policy, table)] + [
        effective_tags(policy, table, a.resource.rsplit(".", 1)[1])
        for a in policy.tags if a.resource.startswith(table + ".")
    ]  # fmt: skip
    return any(all(level.get(k) in v for k, v in tags.items()) for level in levels)


def _words(g: Grant) -> str:
    option = " WITH GRANT OPTION" if g.grant_option else ""
    return f"{', '.join(g.permissions)} on {g.resource.describe()} to {g.principal}{option}"


# -- the lake's names ------------------------------------------------------------------------


def require_table(lake: LakeSchema, table: str) -> dict[str, str]:
    columns = lake.columns(table)
    if columns is None:
        raise refused(f"No table {table} in the catalog.",
                      "`lakehouse tables` lists them; name it namespace.table.")  # fmt: skip
    return columns


def require_column(columns: Mapping[str, str], table: str, column: str) -> None:
    if column not in columns:
        raise refused(f"{table} has no column {column!r}.",
                      f"Its columns are: {', '.join(columns)}.")  # fmt: skip


def require_namespace(lake: LakeSchema, namespace: str) -> None:
    if not lake.namespace_exists(namespace):
        raise refused(f"No namespace {namespace} in the catalog.", "`lakehouse tables` lists them.")


def require_tag_values(policy: Policy, tags: Mapping[str, Iterable[str]]) -> None:
    keys = {k.key: k for k in policy.tag_keys}
    for key, values in tags.items():
        if key not in keys:
            raise refused(f"No LF-tag key {key!r}.",
                          f"Create it: `lakehouse tag-key create {key} --values a,b`.")  # fmt: skip
        bad = [v for v in values if v not in keys[key].values]
        if bad:
            raise refused(f"LF-tag {key} does not allow {', '.join(map(repr, bad))}.",
                          f"Its values are: {', '.join(keys[key].values)}.")  # fmt: skip
