"""Lake Formation, on lakehouse's governance policy (:mod:`lakehouse.governance`): a
grant made here is the grant ``lakehouse grant`` makes, enforced on every engine, and
the caller must be allowed to make it (the admin, or a holder WITH GRANT OPTION).

Principals (``DataLakePrincipalIdentifier``): ``arn:aws:iam::<account>:user/alice``
is the user ``alice``, ``arn:aws:iam::<account>:role/analyst`` the role ``analyst``
(either is added to the policy on its first grant, as LF needs no registration); a
plain name (``alice``) must already be a principal of the policy. ListPermissions
answers with the ARN form.

Resources: ``Database`` is a namespace; ``Table`` a table, or with ``TableWildcard``
every table of the database, now and later; ``TableWithColumns`` a table's
``ColumnNames``, or all but ``ColumnWildcard.ExcludedColumnNames``;
``DataCellsFilter`` a filter; ``LFTagPolicy`` an LF-tag expression (tables and
databases alike). ``PermissionsWithGrantOption`` become grants with the grant
option. Other resources and permissions (``Catalog``, ``DataLocation``,
``CREATE_DATABASE``, ...) are refused with InvalidInputException.

Operations: GrantPermissions, RevokePermissions, BatchGrantPermissions,
BatchRevokePermissions, ListPermissions, and those of
:mod:`lakehouse.aws.lakeformation_objects` (data cells filters, LF-tags).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import page
from lakehouse.aws.registry import Call, operation
from lakehouse.errors import AccessDeniedError, LakehouseError, PolicyError
from lakehouse.governance import admin, admin_objects
from lakehouse.governance.policy import Grant, Permission, Resource
from lakehouse.governance.store import load_policy

IAM_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):(?P<kind>user|role)/(?:.*/)?(?P<name>[^/]+)$"
)


def principal_of(call: Call, identifier: str) -> str:
    """The policy's principal for a DataLakePrincipalIdentifier (added when an IAM ARN
    names one the policy does not know yet)."""
    found = IAM_ARN.match(identifier)
    if found is None:
        if (
            load_policy(call.settings).principal(identifier) is None
            and identifier != call.settings.governance_admin
        ):
            raise AwsError("InvalidInputException",
                           f"Principal {identifier} is not known to the lake's policy. Name it "
                           f"by its IAM ARN (arn:aws:iam::{call.account_id}:user/{identifier} or "
                           f":role/{identifier}), which adds it, or add it with `lakehouse "
                           "principal add`.")  # fmt: skip
        return identifier
    name = found["name"]
    known = load_policy(call.settings).principal(name)
    if known is None and name != call.settings.governance_admin:
        guarded(
            lambda: admin.add_principal(
                call.settings, name, kind=found["kind"], actor=call.principal
            )
        )
    return name


def arn_of(call: Call, name: str) -> str:
    """The IAM ARN ListPermissions shows for a principal."""
    known = load_policy(call.settings).principal(name)
    kind = known.kind if known else "user"
    return f"arn:aws:iam::{call.account_id}:{kind}/{name}"


def guarded(action: Callable[[], Any]) -> Any:
    """Run a governance change; its refusals become Lake Formation's errors."""
    try:
        return action()
    except AccessDeniedError as exc:
        raise AwsError("AccessDeniedException", one_line(exc)) from exc
    except ValidationError as exc:
        raise AwsError("InvalidInputException", str(exc.errors()[0]["msg"])) from exc
    except LakehouseError as exc:
        raise AwsError("InvalidInputException", one_line(exc)) from exc


def one_line(exc: LakehouseError) -> str:
    """The error's message and its hint, as one line ("... Hint: ...")."""
    return f"{exc.message} Hint: {exc.hint}" if exc.hint else exc.message


def resource_of(resource: dict[str, Any]) -> Resource:
    """The policy's Resource for Lake Formation's Resource."""
    kinds = [k for k, v in resource.items() if v is not None]
    if len(kinds) != 1:
        raise AwsError("InvalidInputException", "A Resource names exactly one kind of resource.")
    kind, body = kinds[0], resource[kinds[0]]
    try:
        if kind == "Database":
            return Resource(namespace=body["Name"])
        if kind == "Table":
            if "TableWildcard" in body:
                return Resource(namespace=body["DatabaseName"], all_tables=True)
            return Resource(table=f"{body['DatabaseName']}.{body['Name']}")
        if kind == "TableWithColumns":
            table = f"{body['DatabaseName']}.{body['Name']}"
            if body.get("ColumnNames"):
                return Resource(table=table, columns=tuple(body["ColumnNames"]))
            excluded = (body.get("ColumnWildcard") or {}).get("ExcludedColumnNames")
            return Resource(table=table, excluded_columns=tuple(excluded) if excluded else None)
        if kind == "DataCellsFilter":
            return Resource(data_cells_filter=body["Name"])
        if kind == "LFTagPolicy":
            return Resource(tags={e["TagKey"]: tuple(e["TagValues"]) for e in body["Expression"]})
    except (KeyError, ValidationError) as exc:
        raise AwsError(
            "InvalidInputException", f"The {kind} resource is incomplete: {exc}"
        ) from exc
    raise AwsError("InvalidInputException",
                   f"lakehouse's Lake Formation grants on databases, tables, columns, data cells "
                   f"filters and LF-tag expressions; {kind} is not one of them.")  # fmt: skip


def lf_resource(call: Call, resource: Resource) -> dict[str, Any]:
    """Lake Formation's Resource for the policy's."""
    catalog = {"CatalogId": call.account_id}
    if resource.table is not None:
        database, name = resource.table.rsplit(".", 1)
        if resource.columns is not None:
            return {"TableWithColumns": {**catalog, "DatabaseName": database, "Name": name,
                                         "ColumnNames": list(resource.columns)}}  # fmt: skip
        if resource.excluded_columns is not None:
            return {"TableWithColumns": {**catalog, "DatabaseName": database, "Name": name,
                    "ColumnWildcard": {"ExcludedColumnNames": list(resource.excluded_columns)}}}  # fmt: skip
        return {"Table": {**catalog, "DatabaseName": database, "Name": name}}
    if resource.namespace is not None:
        if resource.all_tables:
            return {"Table": {**catalog, "DatabaseName": resource.namespace, "TableWildcard": {}}}
        return {"Database": {**catalog, "Name": resource.namespace}}
    if resource.data_cells_filter is not None:
        found = load_policy(call.settings).filter_named(resource.data_cells_filter)
        database, name = found.table.rsplit(".", 1) if found else ("", "")
        return {"DataCellsFilter": {"TableCatalogId": call.account_id, "DatabaseName": database,
                                    "TableName": name, "Name": resource.data_cells_filter}}  # fmt: skip
    expression = [
        {"TagKey": k, "TagValues": list(v)} for k, v in sorted((resource.tags or {}).items())
    ]
    return {"LFTagPolicy": {**catalog, "ResourceType": "TABLE", "Expression": expression}}


def permissions_of(names: list[str]) -> tuple[Permission, ...]:
    unknown = [n for n in names if n not in Permission.__members__]
    if unknown:
        raise AwsError("InvalidInputException",
                       f"Permission {', '.join(unknown)} is not one lakehouse's governance has: "
                       f"{', '.join(Permission.__members__)}.")  # fmt: skip
    return tuple(Permission(n) for n in names)


def grants_of_request(call: Call, params: dict[str, Any]) -> list[Grant]:
    """The policy grants one Grant/RevokePermissions request names: one without and
    one with the grant option (LF's PermissionsWithGrantOption)."""
    principal = principal_of(call, params["Principal"]["DataLakePrincipalIdentifier"])
    resource = resource_of(params["Resource"])
    plain = permissions_of(params.get("Permissions") or [])
    with_option = permissions_of(params.get("PermissionsWithGrantOption") or [])
    if not plain and not with_option:
        raise AwsError("InvalidInputException", "Permissions is empty.")
    if set(with_option) - set(plain):
        raise AwsError("InvalidInputException",
                       "PermissionsWithGrantOption must be a subset of Permissions.")  # fmt: skip
    found = []
    rest = tuple(p for p in plain if p not in with_option)
    if rest:
        found.append(Grant(principal=principal, permissions=rest, resource=resource))
    if with_option:
        found.append(Grant(principal=principal, permissions=with_option, resource=resource,
                           grant_option=True))  # fmt: skip
    return found


@operation("lakeformation", "GrantPermissions")
def grant_permissions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    wanted: list[Grant] = guarded(lambda: grants_of_request(call, params))
    for each in wanted:
        _grant(call, each)
    return {}


def _grant(call: Call, wanted: Grant) -> None:
    guarded(lambda: admin.grant(call.settings, wanted, actor=call.principal))


@operation("lakeformation", "RevokePermissions")
def revoke_permissions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Revokes the Permissions (with their grant option), and only the grant option of
    PermissionsWithGrantOption not also in Permissions, as LF does."""
    principal = principal_of(call, params["Principal"]["DataLakePrincipalIdentifier"])
    resource = resource_of(params["Resource"])
    plain = permissions_of(params.get("Permissions") or [])
    option = tuple(p for p in permissions_of(params.get("PermissionsWithGrantOption") or [])
                   if p not in plain)  # fmt: skip
    if not plain and not option:
        raise AwsError("InvalidInputException", "Permissions is empty.")
    for permissions, grant_option in ((plain, False), (option, True)):
        if permissions:
            _revoke(call, Grant(principal=principal, permissions=permissions, resource=resource,
                                grant_option=grant_option))  # fmt: skip
    return {}


def _revoke(call: Call, unwanted: Grant) -> None:
    guarded(lambda: admin.revoke(call.settings, unwanted, actor=call.principal))


def _batch(call: Call, params: dict[str, Any], single: Callable[[Call, dict[str, Any]], Any]
           ) -> dict[str, Any]:  # fmt: skip
    failures = []
    for entry in params["Entries"]:
        try:
            single(call, {k: v for k, v in entry.items() if k != "Id"})
        except AwsError as exc:
            failures.append({"RequestEntry": entry,
                             "Error": {"ErrorCode": exc.code, "ErrorMessage": exc.message}})  # fmt: skip
    return {"Failures": failures}


@operation("lakeformation", "BatchGrantPermissions")
def batch_grant_permissions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _batch(call, params, grant_permissions)


@operation("lakeformation", "BatchRevokePermissions")
def batch_revoke_permissions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _batch(call, params, revoke_permissions)


RESOURCE_TYPES = {"DATABASE": "Database", "TABLE": "Table", "DATA_CELLS_FILTER": "DataCellsFilter",
                  "LF_TAG_POLICY": "LFTagPolicy", "LF_TAG_POLICY_TABLE": "LFTagPolicy",
                  "LF_TAG_POLICY_DATABASE": "LFTagPolicy"}  # fmt: skip


@operation("lakeformation", "ListPermissions")
def list_permissions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Every grant, or those of one Principal and/or one Resource (a table's include
    its namespace's all-tables grants, its filters and matching tag grants). A governed
    caller lists only its own and its roles' (another Principal: AccessDeniedException),
    as ``lakehouse grants`` (:func:`admin_objects.readable_grants`)."""
    principal = None
    if params.get("Principal"):
        principal = _listed_principal(params["Principal"]["DataLakePrincipalIdentifier"])
    table = None
    if params.get("Resource"):
        resource = resource_of(params["Resource"])
        table = resource.table
    found = guarded(lambda: _readable(call, principal, table))
    if params.get("Resource") and table is None:
        found = [g for g in found if g.resource == resource]
    wanted_type = RESOURCE_TYPES.get(params.get("ResourceType", ""))
    entries = []
    for held in found:
        shown = lf_resource(call, held.resource)
        if (
            wanted_type
            and wanted_type not in shown
            and not (wanted_type == "Table" and "TableWithColumns" in shown)
        ):
            continue
        entries.append({
            "Principal": {"DataLakePrincipalIdentifier": arn_of(call, held.principal)},
            "Resource": shown, "Permissions": [str(p) for p in held.permissions],
            "PermissionsWithGrantOption": [str(p) for p in held.permissions] if held.grant_option else [],
        })  # fmt: skip
    chosen, token = page(entries, params)
    return {"PrincipalResourcePermissions": chosen, "NextToken": token}


def _listed_principal(identifier: str) -> str:
    """The principal a ListPermissions asks about (an ARN's name; never added, as a
    read changes nothing)."""
    found = IAM_ARN.match(identifier)
    return found["name"] if found else identifier


def _readable(call: Call, principal: str | None, table: str | None) -> list[Grant]:
    try:
        return admin_objects.readable_grants(call.settings, principal, table, call.principal)
    except PolicyError:  # an unknown principal (asked by the admin) holds nothing, as in LF
        return []


# Importing it registers the data cells filter and LF-tag operations.
from lakehouse.aws import lakeformation_objects  # noqa: E402, F401
