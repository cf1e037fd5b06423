"""Changing the rest of the policy: data cells filters, column masks, LF-tag keys and
tags, and the whole policy at once (``lakehouse governance import`` and the policy a
project declares in ``lakehouse.toml``). Checked as :mod:`.admin` checks grants: only
the admin may, every name must exist, a refusal stores nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError
from lakehouse.governance.access import STRING_TYPES, validated
from lakehouse.governance.admin import (
    Change,
    LakeSchema,
    apply_change,
    check_grant,
    field_ids_of,
    grants_of,
    lake_schema,
    refused,
    require_admin,
    require_column,
    require_namespace,
    require_principal,
    require_table,
    require_tag_values,
)  # fmt: skip
from lakehouse.governance.binding import rebound, renamed_to
from lakehouse.governance.policy import (
    ColumnMask,
    DataCellsFilter,
    Grant,
    Policy,
    TagAssignment,
    TagKey,
)
from lakehouse.privacy import write_private

# -- data cells filters ------------------------------------------------------------------


def check_filter(cells: DataCellsFilter, lake: LakeSchema) -> DataCellsFilter:
    """``cells`` checked against the catalog, its row filter in canonical SQL (the text
    stored: never the raw input)."""
    columns = require_table(lake, cells.table)
    for named in (cells.columns or ()) + (cells.excluded_columns or ()):
        require_column(columns, cells.table, named)
    row_filter = validated(cells.row_filter, list(columns), f"filter {cells.name}",
                           predicate=True, types=columns)  # fmt: skip
    return cells.model_copy(update={"row_filter": row_filter})


def create_filter(settings: Settings, cells: DataCellsFilter, *, actor: str | None = None,
                  lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """Store a new data cells filter (refused when the name is taken, the table or a
    column unknown, or the row filter not one expression over the table's columns)."""
    admin = settings.governance_admin
    schema = lake or lake_schema(settings)

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "create data cells filters")
        if policy.filter_named(cells.name) is not None:
            raise refused(f"A data cells filter named {cells.name!r} exists already.",
                          f"Drop it first: `lakehouse filter drop {cells.name}`.")  # fmt: skip
        filters = (*policy.data_cells_filters, check_filter(cells, schema))
        return policy.model_copy(
            update={"data_cells_filters": filters}
        ), f"created filter {cells.name}"

    return apply_change(settings, change, action="CREATE_FILTER", resource=cells.name, actor=actor,
                        lake=schema)  # fmt: skip


def drop_filter(settings: Settings, name: str, *, actor: str | None = None) -> Change:
    """Remove a filter no grant names (refused otherwise: revoke those first)."""
    admin = settings.governance_admin

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "drop data cells filters")
        if policy.filter_named(name) is None:
            raise refused(
                f"No data cells filter named {name!r}.", "`lakehouse governance show` lists them."
            )
        users = sorted({g.principal for g in policy.grants if g.resource.data_cells_filter == name})
        if users:
            raise refused(f"Filter {name} is granted to {', '.join(users)}.",
                          f"Revoke it first: `lakehouse revoke SELECT ON FILTER {name} FROM {users[0]}`.")  # fmt: skip
        kept = tuple(f for f in policy.data_cells_filters if f.name != name)
        return policy.model_copy(update={"data_cells_filters": kept}), f"dropped filter {name}"

    return apply_change(settings, change, action="DROP_FILTER", resource=name, actor=actor)


# -- column masks --------------------------------------------------------------------------


def check_mask(policy: Policy, mask: ColumnMask, lake: LakeSchema, admin: str) -> ColumnMask:
    """``mask`` checked against the policy and catalog, its expression in canonical SQL."""
    require_principal(policy, mask.principal, admin)
    columns = require_table(lake, mask.table)
    require_column(columns, mask.table, mask.column)
    kind, column_type = mask.kind, columns[mask.column]
    if kind in ("hash", "partial") and not column_type.upper().startswith(STRING_TYPES):
        raise refused(f"A {kind} mask needs a text column; {mask.column} is {column_type}.",
                      "Use a null mask or an expression mask that keeps the column's type.")  # fmt: skip
    expression = validated(mask.expression, list(columns), f"the mask of {mask.column}",
                           types=columns)  # fmt: skip
    return mask.model_copy(update={"expression": expression})


def set_mask(settings: Settings, mask: ColumnMask, *, actor: str | None = None,
             lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """Store ``mask``, replacing the principal's earlier mask of that column."""
    admin = settings.governance_admin
    schema = lake or lake_schema(settings)

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "set column masks")
        checked = check_mask(policy, mask, schema, admin)
        key = (mask.table, mask.column, mask.principal)
        kept = tuple(m for m in policy.masks if (m.table, m.column, m.principal) != key)
        said = (
            f"{mask.principal} sees {mask.table}.{mask.column} as {checked.expression or mask.kind}"
        )
        return policy.model_copy(update={"masks": (*kept, checked)}), said

    return apply_change(settings, change, action="SET_MASK", resource=f"{mask.table}.{mask.column}",
                        actor=actor, lake=schema)  # fmt: skip


def unset_mask(settings: Settings, table: str, column: str, principal: str, *,
               actor: str | None = None) -> Change:  # fmt: skip
    admin = settings.governance_admin

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "remove column masks")
        key = (table, column, principal)
        kept = tuple(m for m in policy.masks if (m.table, m.column, m.principal) != key)
        if len(kept) == len(policy.masks):
            raise refused(f"{principal} has no mask on {table}.{column}.",
                          "`lakehouse governance show` lists the masks.")  # fmt: skip
        return policy.model_copy(
            update={"masks": kept}
        ), f"{principal} sees {table}.{column} unmasked"

    return apply_change(
        settings, change, action="UNSET_MASK", resource=f"{table}.{column}", actor=actor
    )


# -- LF-tags ---------------------------------------------------------------------------------


def create_tag_key(settings: Settings, key: TagKey, *, actor: str | None = None) -> Change:
    """Store a new LF-tag key or widen an existing one's values (never narrow: a
    value in use stays allowed)."""
    admin = settings.governance_admin

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "create LF-tag keys")
        if not key.values:
            raise refused(f"LF-tag key {key.key} needs at least one value.", "Give --values a,b.")
        old = next((k for k in policy.tag_keys if k.key == key.key), None)
        values = tuple(dict.fromkeys((*(old.values if old else ()), *key.values)))
        keys = [k for k in policy.tag_keys if k.key != key.key] + [
            TagKey(key=key.key, values=values)
        ]
        said = f"LF-tag {key.key} takes {', '.join(values)}"
        return policy.model_copy(update={"tag_keys": tuple(keys)}), said

    return apply_change(settings, change, action="CREATE_TAG_KEY", resource=key.key, actor=actor)


def resolve_tag_target(resource: str, lake: LakeSchema) -> str:
    """``resource`` checked to be a namespace, a table or a table's column."""
    if lake.columns(resource) is not None or lake.namespace_exists(resource):
        return resource
    table, _, column = resource.rpartition(".")
    columns = lake.columns(table) if table else None
    if columns is None:
        raise refused(f"{resource} is no namespace, table or column in the catalog.",
                      "Tag a namespace (retail), a table (retail.customers) or a column "
                      "(retail.customers.email).")  # fmt: skip
    require_column(columns, table, column)
    return resource


def assign_tags(settings: Settings, resource: str, tags: Mapping[str, str],
                remove: Sequence[str] = (), *, actor: str | None = None,
                lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """Set ``tags`` (key -> value) on a namespace, table or column, and remove the keys
    in ``remove``. Each value must be one its key allows."""
    admin = settings.governance_admin
    schema = lake or lake_schema(settings)

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "tag resources")
        require_tag_values(policy, {k: [v] for k, v in tags.items()})
        target = resolve_tag_target(resource, schema)
        old = next((a.tags for a in policy.tags if a.resource == target), {})
        absent = [k for k in remove if k not in old]
        if absent:
            raise refused(f"{target} has no tag {', '.join(absent)} to remove.",
                          "`lakehouse governance show` lists the tags.")  # fmt: skip
        new = {k: v for k, v in {**old, **tags}.items() if k not in remove}
        kept = [a for a in policy.tags if a.resource != target]
        kept += [TagAssignment(resource=target, tags=new)] if new else []
        said = f"{target} tags: " + (
            ", ".join(f"{k}={v}" for k, v in sorted(new.items())) or "none"
        )
        return policy.model_copy(update={"tags": tuple(kept)}), said

    return apply_change(settings, change, action="TAG", resource=resource, actor=actor,
                        lake=schema)  # fmt: skip


def rebind(settings: Settings, table: str, *, actor: str | None = None,
           lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """The admin's word that the policy's column names of ``table`` mean the columns
    that have those names now: each binding whose field id differs (a column dropped
    and added again, or another column renamed to the name) moves to the current
    field. Refused when nothing differs (an entry naming a column the table no longer
    has is fixed by moving the entry, not by rebinding)."""
    admin = settings.governance_admin
    schema = lake or lake_schema(settings)

    def change(policy: Policy) -> tuple[Policy, str]:
        require_admin(policy, settings.acting_principal(actor), admin, "rebind columns")
        require_table(schema, table)
        ids_of = field_ids_of(schema)
        ids = (ids_of(table) if ids_of else None) or {}
        renamed = renamed_to(policy, table, ids)
        if renamed:
            column, now = sorted(renamed.items())[0]
            raise refused(f"The column the policy names {column} of {table} is called {now} "
                          f"now; rebinding {column} would leave {now} unprotected.",
                          f"Move the entries naming {column} to {now} (`lakehouse mask set "
                          f"{table}.{now} ...`, re-grant, `lakehouse tag {table}.{now} ...`) and "
                          f"remove the old ones.")  # fmt: skip
        moved_policy, moved = rebound(policy, table, ids)
        if not moved:
            raise refused(f"Every column the policy names of {table} is the field it was "
                          f"bound to; there is nothing to rebind.",
                          "`lakehouse governance show` lists the policy's column_ids.")  # fmt: skip
        return moved_policy, f"rebound {', '.join(f'{table}.{c}' for c in moved)}"

    return apply_change(settings, change, action="REBIND", resource=table, actor=actor)


# -- the whole policy ----------------------------------------------------------------------


def check_policy(policy: Policy, lake: LakeSchema, admin: str) -> Policy:
    """``policy`` with its filters and masks in canonical SQL; refused when a part names
    what does not exist or an expression is not one row-level expression (PolicyError,
    the first problem found)."""
    roles = {p.name for p in policy.principals if p.kind == "role"}
    for principal in policy.principals:
        for role in principal.roles:
            if role not in roles:
                raise refused(f"{principal.name} is a member of {role!r}, which is no role.",
                              f"Declare it: {{ name = \"{role}\", kind = \"role\" }}.")  # fmt: skip
    for key in policy.tag_keys:
        if not key.values:
            raise refused(f"LF-tag key {key.key} has no values.", "Give it at least one.")
    for assignment in policy.tags:
        require_tag_values(policy, {k: [v] for k, v in assignment.tags.items()})
        resolve_tag_target(assignment.resource, lake)
    filters = tuple(check_filter(cells, lake) for cells in policy.data_cells_filters)
    for grant in policy.grants:
        check_grant(policy, grant, lake, admin)
    masks = tuple(check_mask(policy, mask, lake, admin) for mask in policy.masks)
    for name in {g.resource.namespace for g in policy.grants if g.resource.namespace}:
        require_namespace(lake, name)
    return policy.model_copy(update={"data_cells_filters": filters, "masks": masks})


def replace_policy(settings: Settings, policy: Policy, *, origin: str,
                   actor: str | None = None, lake: LakeSchema | None = None) -> Change:  # fmt: skip
    """Store ``policy`` in place of the current one (its revision continues), after
    checking every part of it against the catalog."""
    admin = settings.governance_admin
    schema = lake or lake_schema(settings)

    def change(current: Policy) -> tuple[Policy, str]:
        require_admin(current, actor or admin, admin, "import a policy")
        checked = check_policy(policy, schema, admin)
        said = (f"imported {origin}: {len(policy.principals)} principal(s), "
                f"{len(policy.grants)} grant(s), {len(policy.data_cells_filters)} filter(s), "
                f"{len(policy.masks)} mask(s), {len(policy.tags)} tagged resource(s)")  # fmt: skip
        return checked, said

    return apply_change(settings, change, action="IMPORT_POLICY", resource=origin, actor=actor,
                        lake=schema)  # fmt: skip


# -- the policy lakehouse.toml declares -------------------------------------------------


def declared_policy() -> tuple[Policy, str] | None:
    """The policy of the project's lakehouse.toml and where it came from: its
    ``[governance]`` table, or the file its ``policy_file`` key names (relative to
    lakehouse.toml); None when it declares none."""
    from lakehouse.config import config_file_path, read_config_file
    from lakehouse.governance.store import parse_policy, read_policy_file

    table = read_config_file("governance")
    config = config_file_path()
    if not table or config is None:
        return None
    if "policy_file" in table:
        path = config.parent / Path(str(table["policy_file"])).expanduser()
        return read_policy_file(path), str(path)
    return parse_policy(table, f"[governance] of {config}"), f"[governance] of {config}"


def apply_declared(settings: Settings, lake: LakeSchema | None = None) -> Change | None:
    """Store the declared policy when it changed since it was last stored (None
    otherwise, and when none is declared). The declaration wins when it is edited;
    changes made with the CLI in between stay until then. The policy it replaces is
    kept as ``governance/policy.before-declared.json``."""
    from lakehouse.governance.store import export_policy, load_policy, policy_path

    found = declared_policy()
    if found is None:
        return None
    policy, origin = found
    text = json.dumps(policy.model_dump(mode="json", exclude={"revision"}), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    marker = policy_path(settings).with_name("declared.sha256")
    if marker.is_file() and marker.read_text().strip() == digest:
        return None
    previous = load_policy(settings)
    change = replace_policy(
        settings, policy, origin=origin, lake=lake, actor=settings.governance_admin
    )  # the project's own declaration
    if previous.revision:
        export_policy(previous, policy_path(settings).with_name("policy.before-declared.json"))
    write_private(marker, digest + "\n")
    return change


# -- reading the policy ------------------------------------------------------------------


def reads_everything(settings: Settings, policy: Policy, who: str) -> bool:
    """Whether ``who`` reads the whole policy: the admin, or anyone with governance off."""
    return not settings.governance_enabled or policy.is_admin(who, settings.governance_admin)


def _deny_reading(settings: Settings, who: str, action: str, resource: str,
                  denied: AccessDeniedError) -> AccessDeniedError:  # fmt: skip
    """``denied``, recorded in the audit log like a refused change (engine ``policy``)."""
    from lakehouse.governance.admin import POLICY_ENGINE
    from lakehouse.governance.audit import record

    record(settings, who, POLICY_ENGINE, resource, (), (), False, None, action=action,
           reason=denied.message)  # fmt: skip
    return denied


def policy_for_reader(settings: Settings, actor: str | None = None, *,
                      what: str = "read the whole policy") -> Policy:  # fmt: skip
    """The stored policy, for the admin (and anyone while governance is off). As in Lake
    Formation, where listing others' permissions, filters and tags needs admin rights,
    a governed principal (``actor``, default the acting principal) is refused with
    AccessDeniedError, audited as a denied READ_POLICY: the policy names every other
    principal, its grants, row-filter literals and masks."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    who = settings.acting_principal(actor)
    if reads_everything(settings, policy, who):
        return policy
    denied = AccessDeniedError(
        who, "ADMIN", "the governance policy",
        message=f"{who} may not {what}: it names other principals, their grants, "
        "row filters and masks, and only the governance admin reads it.",
        hint="`lakehouse grants` shows your own grants (and your roles'); the governance "
        f"admin ({settings.governance_admin}) reads the whole policy.",
    )  # fmt: skip
    raise _deny_reading(settings, who, "READ_POLICY", "policy", denied)


def readable_grants(settings: Settings, principal: str | None = None, table: str | None = None,
                    actor: str | None = None) -> list[Grant]:  # fmt: skip
    """What ``lakehouse grants`` and ListPermissions show ``actor`` (default: the acting
    principal): for the admin (or with governance off), every grant, or those reaching
    ``principal`` and/or ``table`` (:func:`admin.grants_of`); for a governed principal,
    only grants to itself and its roles, as LF lets a principal list its own. Asking
    for another principal's is AccessDeniedError, audited as a denied LIST_GRANTS;
    an unknown ``principal`` is PolicyError."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    who = settings.acting_principal(actor)
    if reads_everything(settings, policy, who):
        if principal is not None:
            require_principal(policy, principal, settings.governance_admin)
        return grants_of(policy, principal, table)
    own = policy.identities(who)  # before require_principal: whether bob exists is not hers
    if principal is not None and principal not in own:
        denied = AccessDeniedError(
            who, "ADMIN", f"{principal}'s grants",
            message=f"{who} may list only its own grants and its roles' "
            f"({', '.join(own)}), not {principal}'s.",
            hint="`lakehouse grants` shows yours; the governance admin "
            f"({settings.governance_admin}) lists everyone's.",
        )  # fmt: skip
        raise _deny_reading(settings, who, "LIST_GRANTS", principal, denied)
    return [g for g in grants_of(policy, principal, table) if g.principal in own]


def readable_filters(settings: Settings, actor: str | None = None) -> list[DataCellsFilter]:
    """The data cells filters ``actor`` (default: the acting principal) may read: every
    one for the admin (or with governance off); for a governed principal, those it (or
    a role of it) holds WITH GRANT OPTION, as LF shows a filter's row filter only to
    the admin and to whoever may grant it (a row filter's literals can name rows it
    may not see)."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    who = settings.acting_principal(actor)
    if reads_everything(settings, policy, who):
        return list(policy.data_cells_filters)
    grantable = {g.resource.data_cells_filter for g in policy.grants
                 if g.principal in policy.identities(who) and g.grant_option}  # fmt: skip
    return [f for f in policy.data_cells_filters if f.name in grantable]


def readable_tag_keys(settings: Settings, actor: str | None = None) -> list[TagKey]:
    """The LF-tag keys (with their allowed values) ``actor`` may read: every one for the
    admin (or with governance off); for a governed principal, the keys its own and its
    roles' LF-tag grants name."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    who = settings.acting_principal(actor)
    if reads_everything(settings, policy, who):
        return list(policy.tag_keys)
    named = {key for g in policy.grants if g.principal in policy.identities(who)
             for key in (g.resource.tags or {})}  # fmt: skip
    return [k for k in policy.tag_keys if k.key in named]


def readable_filter(settings: Settings, name: str, actor: str | None = None
                    ) -> DataCellsFilter | None:  # fmt: skip
    """The filter ``name`` (None when there is none) when ``actor`` may read it
    (:func:`readable_filters`); else AccessDeniedError, audited as a denied
    READ_FILTER, whether it exists or not (its existence is not the principal's)."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    who = settings.acting_principal(actor)
    found = next((f for f in readable_filters(settings, who) if f.name == name), None)
    if found is not None or reads_everything(settings, policy, who):
        return found
    denied = AccessDeniedError(
        who, "ADMIN", f"data cells filter {name}",
        message=f"{who} may not read data cells filter {name}: a filter's row filter and "
        "columns are the governance admin's and its grantors' (WITH GRANT OPTION).",
        hint="`lakehouse grants` shows the filters granted to you, by name.",
    )  # fmt: skip
    raise _deny_reading(settings, who, "READ_FILTER", name, denied)
