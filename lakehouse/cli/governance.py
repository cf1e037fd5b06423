"""`lakehouse grant`, `revoke`, `grants`, `principal`, `filter`, `mask`, `tag`,
`tag-key`, `governance` and `audit`: flags and formatting over
lakehouse.governance.admin, admin_objects, demo and audit.

Grants read like Lake Formation's (and SQL's)::

    lakehouse grant SELECT ON TABLE retail.customers EXCLUDING email TO analyst
    lakehouse grant SELECT,INSERT ON ALL TABLES IN landing TO data_engineer WITH GRANT OPTION
    lakehouse grant SELECT ON TAG pii=false,domain=sales TO analyst
    lakehouse revoke SELECT ON FILTER eu_customers FROM eu_analyst
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from lakehouse.cli.common import csv_list, err, friendly_errors, settings_of
from lakehouse.errors import PolicyError

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.governance.admin import Change
    from lakehouse.governance.policy import Policy


def _settings(ctx: click.Context) -> Settings:
    return settings_of(ctx)


def _acting(ctx: click.Context, actor: str | None) -> str:
    """Who makes the change: --as, else LAKEHOUSE_PRINCIPAL, else the admin (as for queries)."""
    return _settings(ctx).acting_principal(actor)


def _said(change: Change) -> None:
    click.echo(f"{change.summary} (policy revision {change.policy.revision})")


AS_OPTION = click.option(
    "--as", "actor", metavar="PRINCIPAL",
    help="Who makes the change (default: LAKEHOUSE_PRINCIPAL, else the governance admin); "
    "a non-admin may grant "
    "only what it holds WITH GRANT OPTION.",
)  # fmt: skip


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("statement", nargs=-1, required=True)
@AS_OPTION
@click.pass_context
@friendly_errors
def grant(ctx: click.Context, statement: tuple[str, ...], actor: str | None) -> None:
    """Grant permissions: PERMISSIONS ON RESOURCE TO PRINCIPAL [WITH GRANT OPTION].

    RESOURCE is TABLE t [COLUMNS a,b | EXCLUDING a,b], NAMESPACE ns, ALL TABLES IN ns,
    FILTER name or TAG k=v[,k2=v2]. PERMISSIONS: SELECT, INSERT, DELETE, ALTER, DROP,
    DESCRIBE, CREATE_TABLE or ALL, comma-separated."""
    from lakehouse.governance import admin
    from lakehouse.governance.statements import parse_statement

    _said(admin.grant(_settings(ctx), parse_statement(statement), actor=_acting(ctx, actor)))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("statement", nargs=-1, required=True)
@AS_OPTION
@click.pass_context
@friendly_errors
def revoke(ctx: click.Context, statement: tuple[str, ...], actor: str | None) -> None:
    """Revoke: [GRANT OPTION FOR] PERMISSIONS ON RESOURCE FROM PRINCIPAL (the resource
    exactly as granted; see `lakehouse grant --help`)."""
    from lakehouse.governance import admin
    from lakehouse.governance.statements import parse_statement

    _said(
        admin.revoke(
            _settings(ctx), parse_statement(statement, "revoke"), actor=_acting(ctx, actor)
        )
    )


@click.command()
@click.option("--principal", help="Only grants reaching this principal (its own and its roles').")
@click.option("--table", help="Only grants reaching this table (ns.table).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the grants.")
@click.pass_context
@friendly_errors
def grants(ctx: click.Context, principal: str | None, table: str | None, as_json: bool) -> None:
    """The stored grants: principal, permissions, resource, grant option. A governed
    principal (LAKEHOUSE_PRINCIPAL) sees only its own and its roles'."""
    from lakehouse.cli.display import print_table
    from lakehouse.governance.admin_objects import readable_grants

    found = readable_grants(_settings(ctx), principal, table)
    if as_json:
        click.echo(
            json.dumps([g.model_dump(mode="json", exclude_defaults=True) for g in found], indent=2)
        )
        return
    rows = [(g.principal, ", ".join(g.permissions), g.resource.describe(),
             "yes" if g.grant_option else "no") for g in found]  # fmt: skip
    print_table(["principal", "permissions", "resource", "grant option"], rows)


@click.group()
def principal() -> None:
    """Users and roles the policy names."""


@principal.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="A role the user is a member of (repeatable; made when new).",
)
@click.option("--kind", type=click.Choice(["user", "role"]), default="user", show_default=True)
@AS_OPTION
@click.pass_context
@friendly_errors
def principal_add(ctx: click.Context, name: str, roles: tuple[str, ...], kind: str,
                  actor: str | None) -> None:  # fmt: skip
    """Add a user (or, with --kind role, a role)."""
    from lakehouse.governance.admin import add_principal

    _said(add_principal(_settings(ctx), name, roles, kind, actor=_acting(ctx, actor)))


@principal.command("remove")
@click.argument("name")
@AS_OPTION
@click.pass_context
@friendly_errors
def principal_remove(ctx: click.Context, name: str, actor: str | None) -> None:
    """Remove a principal with its grants and masks."""
    from lakehouse.governance.admin import remove_principal

    _said(remove_principal(_settings(ctx), name, actor=_acting(ctx, actor)))


@principal.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def principal_list(ctx: click.Context, as_json: bool) -> None:
    """The principals: name, kind, roles (the admin first; the governance admin's)."""
    from lakehouse.cli.display import print_table
    from lakehouse.governance.admin_objects import policy_for_reader

    settings = _settings(ctx)
    policy = policy_for_reader(settings, what="list the principals")
    rows = [(settings.governance_admin, "admin", "")] + [
        (p.name, p.kind, ", ".join(p.roles)) for p in policy.principals
        if p.name != settings.governance_admin
    ]  # fmt: skip
    if as_json:
        click.echo(
            json.dumps(
                [dict(zip(("name", "kind", "roles"), r, strict=True)) for r in rows], indent=2
            )
        )
        return
    print_table(["principal", "kind", "roles"], rows)


@click.group("filter")
def filter_group() -> None:
    """Data cells filters: the rows (and columns) of one table, granted by name."""


@filter_group.command("create")
@click.argument("name")
@click.option("--table", required=True, help="namespace.table")
@click.option(
    "--where",
    "row_filter",
    help="Row filter, DuckDB SQL over the table's columns (default: every row).",
)
@click.option("--columns", help="Comma-separated columns shown (default: all).")
@click.option("--excluding", help="Comma-separated columns hidden (instead of --columns).")
@AS_OPTION
@click.pass_context
@friendly_errors
def filter_create(ctx: click.Context, name: str, table: str, row_filter: str | None,
                  columns: str | None, excluding: str | None, actor: str | None) -> None:  # fmt: skip
    """Create a data cells filter; grant it with `lakehouse grant SELECT ON FILTER NAME TO P`."""
    from lakehouse.governance.admin_objects import create_filter
    from lakehouse.governance.policy import DataCellsFilter

    cells = _validated(DataCellsFilter, name=name, table=table, row_filter=row_filter,
                       columns=_tuple(columns), excluded_columns=_tuple(excluding))  # fmt: skip
    _said(create_filter(_settings(ctx), cells, actor=_acting(ctx, actor)))


@filter_group.command("drop")
@click.argument("name")
@AS_OPTION
@click.pass_context
@friendly_errors
def filter_drop(ctx: click.Context, name: str, actor: str | None) -> None:
    """Drop a data cells filter that no grant names."""
    from lakehouse.governance.admin_objects import drop_filter

    _said(drop_filter(_settings(ctx), name, actor=_acting(ctx, actor)))


@click.group()
def mask() -> None:
    """Column masks: what a principal sees instead of a column's values."""


@mask.command("set")
@click.argument("column", metavar="TABLE.COLUMN")
@click.argument("kind", type=click.Choice(["hash", "partial", "null"]), required=False)
@click.option("--principal", required=True, help="The user or role that sees the mask.")
@click.option("--expression", help="A custom mask: DuckDB SQL over the table's columns.")
@AS_OPTION
@click.pass_context
@friendly_errors
def mask_set(ctx: click.Context, column: str, kind: str | None, principal: str,
             expression: str | None, actor: str | None) -> None:  # fmt: skip
    """Mask TABLE.COLUMN for PRINCIPAL: hash (SHA-256), partial (all but the last 4
    characters as *), null, or --expression SQL."""
    from lakehouse.governance.admin_objects import set_mask
    from lakehouse.governance.policy import ColumnMask

    if (kind is None) == (expression is None):
        raise PolicyError("Give a mask kind (hash, partial, null) or --expression, not both. "
                          "Nothing was changed.", hint="lakehouse mask set retail.customers.email "
                          "hash --principal marketing")  # fmt: skip
    table, name = _split_column(column)
    masked = _validated(ColumnMask, table=table, column=name, principal=principal,
                        kind=kind or "expression", expression=expression)  # fmt: skip
    _said(set_mask(_settings(ctx), masked, actor=_acting(ctx, actor)))


@mask.command("unset")
@click.argument("column", metavar="TABLE.COLUMN")
@click.option("--principal", required=True)
@AS_OPTION
@click.pass_context
@friendly_errors
def mask_unset(ctx: click.Context, column: str, principal: str, actor: str | None) -> None:
    """Show TABLE.COLUMN unmasked to PRINCIPAL again."""
    from lakehouse.governance.admin_objects import unset_mask

    table, name = _split_column(column)
    _said(unset_mask(_settings(ctx), table, name, principal, actor=_acting(ctx, actor)))


@click.command()
@click.argument("resource")
@click.argument("tags", nargs=-1)
@click.option("--remove", multiple=True, metavar="KEY", help="Remove this tag key (repeatable).")
@AS_OPTION
@click.pass_context
@friendly_errors
def tag(ctx: click.Context, resource: str, tags: tuple[str, ...], remove: tuple[str, ...],
        actor: str | None) -> None:  # fmt: skip
    """Put LF-tags (key=value) on a namespace, a table or a column (ns.table.column)."""
    from lakehouse.governance.admin_objects import assign_tags
    from lakehouse.governance.statements import parse_tag_expression

    pairs = parse_tag_expression(",".join(tags), "tag") if tags else {}
    multi = [k for k, v in pairs.items() if len(v) != 1]
    if multi or not (pairs or remove):
        raise PolicyError("Give key=value pairs (one value each) or --remove KEY. Nothing was changed.",
                          hint="lakehouse tag retail.customers.email pii=true")  # fmt: skip
    _said(assign_tags(_settings(ctx), resource, {k: v[0] for k, v in pairs.items()}, remove,
                      actor=_acting(ctx, actor)))  # fmt: skip


@click.group("tag-key")
def tag_key() -> None:
    """LF-tag keys and the values they allow."""


@tag_key.command("create")
@click.argument("key")
@click.option(
    "--values", required=True, help="Comma-separated allowed values (added to an existing key's)."
)
@AS_OPTION
@click.pass_context
@friendly_errors
def tag_key_create(ctx: click.Context, key: str, values: str, actor: str | None) -> None:
    """Create an LF-tag key (or allow more values for one)."""
    from lakehouse.governance.admin_objects import create_tag_key
    from lakehouse.governance.policy import TagKey

    created = _validated(TagKey, key=key, values=tuple(csv_list(values) or ()))
    _said(create_tag_key(_settings(ctx), created, actor=_acting(ctx, actor)))


@click.group()
def governance() -> None:
    """The governance policy as a whole: show, export, import, the demo scenario.

    Enforcement is the setting governance_enabled (lakehouse.toml or
    LAKEHOUSE_GOVERNANCE_ENABLED=true, then `lakehouse up`): the policy can be edited
    either way."""


@governance.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def governance_show(ctx: click.Context, as_json: bool) -> None:
    """The stored policy and whether it is enforced (the governance admin's)."""
    from lakehouse.governance.admin_objects import policy_for_reader

    settings = _settings(ctx)
    data = show_policy(policy_for_reader(settings), settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    import yaml

    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    if not settings.governance_enabled:
        err.print("Not enforced: set governance_enabled = true in lakehouse.toml "
                  "(or LAKEHOUSE_GOVERNANCE_ENABLED=true) and run `lakehouse up`.")  # fmt: skip


@governance.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
@friendly_errors
def governance_export(ctx: click.Context, file: str) -> None:
    """Write the policy to FILE (.json, .yaml or .yml), for review and git (the
    governance admin's)."""
    from pathlib import Path

    from lakehouse.governance.admin_objects import policy_for_reader
    from lakehouse.governance.store import export_policy

    policy = policy_for_reader(_settings(ctx), what="export the policy")
    export_policy(policy, Path(file))
    click.echo(f"exported revision {policy.revision} to {file}")


@governance.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@AS_OPTION
@click.pass_context
@friendly_errors
def governance_import(ctx: click.Context, file: str, actor: str | None) -> None:
    """Replace the policy with FILE's (.json, .yaml, or .toml: its [governance] table),
    after checking every name in it against the catalog."""
    from pathlib import Path

    from lakehouse.governance.admin_objects import replace_policy
    from lakehouse.governance.store import read_policy_file

    policy = read_policy_file(Path(file))
    _said(replace_policy(_settings(ctx), policy, origin=file, actor=_acting(ctx, actor)))


@governance.command("rebind")
@click.argument("table")
@AS_OPTION
@click.pass_context
@friendly_errors
def governance_rebind(ctx: click.Context, table: str, actor: str | None) -> None:
    """Let the policy's column names of TABLE mean the columns that have those names
    now (after a column was dropped and added again, or another column renamed to
    its name, TABLE is refused to every principal until an admin says so)."""
    from lakehouse.governance.admin_objects import rebind

    _said(rebind(_settings(ctx), table, actor=_acting(ctx, actor)))


@governance.command("demo")
@click.pass_context
@friendly_errors
def governance_demo(ctx: click.Context) -> None:
    """Load the workshop's governed scenario (analyst, eu_analyst, marketing,
    data_engineer) over the retail sample."""
    from lakehouse.governance.demo import load_demo

    settings = _settings(ctx)
    _said(load_demo(settings))
    if not settings.governance_enabled:
        err.print("Stored, not enforced: set governance_enabled = true (lakehouse.toml or "
                  "LAKEHOUSE_GOVERNANCE_ENABLED=true) and run `lakehouse up`.")  # fmt: skip


def show_policy(policy: Policy, settings: Settings) -> dict[str, Any]:
    """The policy as plain data, with whether it is enforced and who the admin is."""
    from lakehouse.governance.binding import stale_report

    data = policy.model_dump(mode="json", exclude_defaults=True)
    try:
        stale = stale_report(settings, policy)
    except Exception as exc:  # the catalog is down: the policy is still shown
        stale = [f"not checked: the catalog did not answer ({type(exc).__name__})"]
    shown = {"enforced": settings.governance_enabled, "admin": settings.governance_admin, **data}
    return shown | ({"stale": stale} if stale else {})


def _tuple(value: str | None) -> tuple[str, ...] | None:
    listed = csv_list(value)
    return tuple(listed) if listed else None


def _split_column(text: str) -> tuple[str, str]:
    table, _, column = text.rpartition(".")
    if "." not in table:
        raise PolicyError(f"{text!r} is not namespace.table.column. Nothing was changed.",
                          hint="For example retail.customers.email.")  # fmt: skip
    return table, column


def _validated(model: Any, **fields: Any) -> Any:
    """``model(**fields)``; PolicyError with pydantic's reasons when invalid."""
    from pydantic import ValidationError

    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or model.__name__}: {e['msg']}"
                             for e in exc.errors(include_url=False))  # fmt: skip
        raise PolicyError(f"Invalid {model.__name__}: {problems}. Nothing was changed.",
                          hint="See the command's --help.") from None  # fmt: skip


COMMANDS = (grant, revoke, grants, principal, filter_group, mask, tag, tag_key, governance)


def at_up(settings: Settings, services: list[str], demo: bool) -> None:
    """`lakehouse up`'s governance step, once the catalog answers: store the policy
    lakehouse.toml declares (when it changed), load the demo if asked, and commit
    audit records spooled while the lake was down. A refusal is printed; the stored
    policy is then unchanged and the stack stays up."""
    from lakehouse.errors import LakehouseError
    from lakehouse.governance import audit
    from lakehouse.governance.admin_objects import apply_declared
    from lakehouse.governance.demo import load_demo

    if not {"s3", "catalog"} <= set(services):
        return

    def demo_as_admin(settings: Settings) -> Change:  # who starts the stack holds its keys
        return load_demo(settings, actor=settings.governance_admin)

    steps = [("the declared policy", apply_declared)] + (
        [("the demo", demo_as_admin)] if demo else []
    )
    for what, step in steps:
        try:
            change = step(settings)
        except LakehouseError as exc:
            err.print(f"Governance: {what} was not stored: {exc}")
            continue
        if change is not None:
            err.print(f"Governance: {change.summary} (policy revision {change.policy.revision})")
    try:
        from lakehouse.governance.trino_audit import collect

        collect(settings)  # Trino's decisions since the last collection
        audit.flush(settings)
    except Exception as exc:  # the records stay spooled for the next flush
        err.print(f"Governance: audit records stay spooled: {exc}")


def converge_enforcers(home: str | None) -> None:
    """Before every command: Trino's rules and the S3 identities catch up with a policy
    change whose writer was killed after storing it (lakehouse.governance.converge).
    Free when governance is off or they are current; a failure is said, not raised
    (the command itself may not need them)."""
    from lakehouse.config import load_settings
    from lakehouse.errors import LakehouseError

    try:
        settings = load_settings(home=home)
    except LakehouseError:
        return  # the command reports a broken configuration itself
    if not settings.governance_enabled:
        return
    from lakehouse.governance.converge import converge

    try:
        converge(settings)
    except Exception as exc:  # e.g. a read-only home: the command goes on, and says why
        err.print(f"Governance: Trino's rules or the S3 identities lag the policy and could "
                  f"not be rewritten: {exc}")  # fmt: skip
