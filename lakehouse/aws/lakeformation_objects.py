"""Lake Formation's data cells filters and LF-tags, on the governance policy.

A data cells filter is the policy's filter of that name (names are unique across the
lake, where LF's are unique per table); its ``RowFilter.FilterExpression`` is SQL
over the table's columns (``country = 'DE'``), checked and stored as
``lakehouse filter create`` stores it. LF-tags are the policy's tag keys; tagging a
``Database``, ``Table`` or ``TableWithColumns`` resource tags the namespace, table or
each named column.

Operations: CreateDataCellsFilter, GetDataCellsFilter, ListDataCellsFilter,
DeleteDataCellsFilter, CreateLFTag, GetLFTag, ListLFTags, UpdateLFTag (adding
values), DeleteLFTag, AddLFTagsToResource, RemoveLFTagsFromResource,
GetResourceLFTags.
"""

from __future__ import annotations

from typing import Any

from lakehouse.aws.errors import AwsError
from lakehouse.aws.glue import page
from lakehouse.aws.lakeformation import guarded
from lakehouse.aws.registry import Call, operation
from lakehouse.governance import admin, admin_objects
from lakehouse.governance.access import effective_tags
from lakehouse.governance.policy import DataCellsFilter, Policy, TagKey
from lakehouse.governance.store import load_policy


def lf_filter(call: Call, cells: DataCellsFilter) -> dict[str, Any]:
    database, table = cells.table.rsplit(".", 1)
    found: dict[str, Any] = {"TableCatalogId": call.account_id, "DatabaseName": database,
                             "TableName": table, "Name": cells.name}  # fmt: skip
    if cells.row_filter is None:
        found["RowFilter"] = {"AllRowsWildcard": {}}
    else:
        found["RowFilter"] = {"FilterExpression": cells.row_filter}
    if cells.columns is not None:
        found["ColumnNames"] = list(cells.columns)
    else:
        found["ColumnWildcard"] = {"ExcludedColumnNames": list(cells.excluded_columns or ())}
    return found


def _filter(call: Call, params: dict[str, Any]) -> DataCellsFilter:
    found = load_policy(call.settings).filter_named(params["Name"])
    table = f"{params['DatabaseName']}.{params['TableName']}"
    if found is None or found.table != table:
        raise AwsError("EntityNotFoundException",
                       f"Data cells filter {params['Name']} of table {table} not found.")  # fmt: skip
    return found


@operation("lakeformation", "CreateDataCellsFilter")
def create_data_cells_filter(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    data = params["TableData"]
    row_filter = (data.get("RowFilter") or {}).get("FilterExpression")
    excluded = (data.get("ColumnWildcard") or {}).get("ExcludedColumnNames")
    if load_policy(call.settings).filter_named(data["Name"]) is not None:
        raise AwsError(
            "AlreadyExistsException", f"Data cells filter {data['Name']} already exists."
        )

    def create() -> Any:
        cells = DataCellsFilter(
            name=data["Name"], table=f"{data['DatabaseName']}.{data['TableName']}",
            row_filter=row_filter or None,
            columns=tuple(data["ColumnNames"]) if data.get("ColumnNames") else None,
            excluded_columns=tuple(excluded) if excluded else None,
        )  # fmt: skip
        return admin_objects.create_filter(call.settings, cells, actor=call.principal)

    guarded(create)
    return {}


@operation("lakeformation", "GetDataCellsFilter")
def get_data_cells_filter(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The admin's, and a grantor's (WITH GRANT OPTION) of the filter; anyone else gets
    AccessDeniedException (:func:`admin_objects.readable_filter`)."""
    guarded(lambda: admin_objects.readable_filter(call.settings, params["Name"], call.principal))
    return {"DataCellsFilter": lf_filter(call, _filter(call, params))}


@operation("lakeformation", "ListDataCellsFilter")
def list_data_cells_filter(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The filters the caller may read (:func:`admin_objects.readable_filters`)."""
    filters = admin_objects.readable_filters(call.settings, call.principal)
    table = params.get("Table")
    if table:
        wanted = f"{table['DatabaseName']}.{table['Name']}"
        filters = [f for f in filters if f.table == wanted]
    chosen, token = page(sorted(filters, key=lambda f: f.name), params)
    return {"DataCellsFilters": [lf_filter(call, f) for f in chosen], "NextToken": token}


@operation("lakeformation", "DeleteDataCellsFilter")
def delete_data_cells_filter(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Refused while a grant names the filter (revoke it first)."""
    name = _filter(call, params).name
    guarded(lambda: admin_objects.drop_filter(call.settings, name, actor=call.principal))
    return {}


def _tag_key(policy: Policy, key: str) -> TagKey:
    found = next((k for k in policy.tag_keys if k.key == key), None)
    if found is None:
        raise AwsError("EntityNotFoundException", f"Tag key {key} not found.")
    return found


@operation("lakeformation", "CreateLFTag")
def create_lf_tag(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if any(k.key == params["TagKey"] for k in load_policy(call.settings).tag_keys):
        raise AwsError("AlreadyExistsException", f"Tag key {params['TagKey']} already exists.")
    guarded(lambda: admin_objects.create_tag_key(
        call.settings, TagKey(key=params["TagKey"], values=tuple(params["TagValues"])),
        actor=call.principal))  # fmt: skip
    return {}


@operation("lakeformation", "GetLFTag")
def get_lf_tag(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """A key the caller may read (:func:`admin_objects.readable_tag_keys`); another
    is AccessDeniedException for a governed caller, whether it exists or not."""
    policy = load_policy(call.settings)
    readable = {k.key for k in admin_objects.readable_tag_keys(call.settings, call.principal)}
    if params["TagKey"] not in readable and not _reads_all(call, policy):
        raise AwsError("AccessDeniedException", f"{call.principal} may not read LF-tag "
                       f"{params['TagKey']}: only those its own grants name. Hint: the "
                       "governance admin reads every LF-tag.")  # fmt: skip
    key = _tag_key(policy, params["TagKey"])
    return {"CatalogId": call.account_id, "TagKey": key.key, "TagValues": list(key.values)}


@operation("lakeformation", "ListLFTags")
def list_lf_tags(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    readable = admin_objects.readable_tag_keys(call.settings, call.principal)
    keys = sorted(readable, key=lambda k: k.key)
    chosen, token = page(keys, params)
    tags = [{"CatalogId": call.account_id, "TagKey": k.key, "TagValues": list(k.values)}
            for k in chosen]  # fmt: skip
    return {"LFTags": tags, "NextToken": token} if tags else {}  # the model: LFTags or none


@operation("lakeformation", "UpdateLFTag")
def update_lf_tag(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Adds values; removing values is refused (a value may be in use by tags and
    grants; lakehouse never narrows a key)."""
    key = _tag_key(load_policy(call.settings), params["TagKey"])
    if params.get("TagValuesToDelete"):
        raise AwsError("InvalidInputException",
                       "Removing LF-tag values is not supported: tags and grants may use them. "
                       "Remove the tags and grants, then DeleteLFTag and CreateLFTag.")  # fmt: skip
    added = tuple(params.get("TagValuesToAdd") or ())
    guarded(lambda: admin_objects.create_tag_key(
        call.settings, TagKey(key=key.key, values=added), actor=call.principal))  # fmt: skip
    return {}


@operation("lakeformation", "DeleteLFTag")
def delete_lf_tag(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Refused while a resource carries the key or a grant names it."""
    name = params["TagKey"]

    def change(policy: Policy) -> tuple[Policy, str]:
        admin.require_admin(policy, call.principal, call.settings.governance_admin,
                            "delete LF-tag keys")  # fmt: skip
        _tag_key(policy, name)
        used = [a.resource for a in policy.tags if name in a.tags]
        used += [g.principal for g in policy.grants if name in (g.resource.tags or {})]
        if used:
            raise admin.refused(f"LF-tag {name} is in use ({', '.join(sorted(set(used)))}).",
                                "Remove it from those resources and revoke those grants first.")  # fmt: skip
        kept = tuple(k for k in policy.tag_keys if k.key != name)
        return policy.model_copy(update={"tag_keys": kept}), f"deleted LF-tag {name}"

    guarded(lambda: admin.apply_change(call.settings, change, action="DELETE_TAG_KEY",
                                       resource=name, actor=call.principal))  # fmt: skip
    return {}


def tag_targets(resource: dict[str, Any]) -> list[str]:
    """The namespaces, tables or columns an LF Resource names, in the policy's words."""
    if resource.get("Database"):
        return [resource["Database"]["Name"]]
    if resource.get("Table") and resource["Table"].get("Name"):
        return [f"{resource['Table']['DatabaseName']}.{resource['Table']['Name']}"]
    body = resource.get("TableWithColumns")
    if body and body.get("ColumnNames"):
        table = f"{body['DatabaseName']}.{body['Name']}"
        return [f"{table}.{c}" for c in body["ColumnNames"]]
    raise AwsError("InvalidInputException",
                   "LF-tags go on a Database, a Table (by name) or a TableWithColumns with "
                   "ColumnNames.")  # fmt: skip


def _retag(call: Call, params: dict[str, Any], remove: bool) -> dict[str, Any]:
    failures = []
    for pair in params["LFTags"]:
        for target in tag_targets(params["Resource"]):
            try:
                _retag_one(call, target, pair, remove)
            except AwsError as exc:
                failures.append({"LFTag": {"CatalogId": call.account_id, **pair},
                                 "Error": {"ErrorCode": exc.code, "ErrorMessage": exc.message}})  # fmt: skip
    return {"Failures": failures}


def _retag_one(call: Call, target: str, pair: dict[str, Any], remove: bool) -> None:
    key, values = pair["TagKey"], pair.get("TagValues") or []
    if remove:
        guarded(lambda: admin_objects.assign_tags(call.settings, target, {}, remove=[key],
                                                  actor=call.principal))  # fmt: skip
        return
    if len(values) != 1:
        raise AwsError("InvalidInputException", "A resource takes one value per LF-tag key.")
    guarded(lambda: admin_objects.assign_tags(call.settings, target, {key: values[0]},
                                              actor=call.principal))  # fmt: skip


@operation("lakeformation", "AddLFTagsToResource")
def add_lf_tags_to_resource(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _retag(call, params, remove=False)


@operation("lakeformation", "RemoveLFTagsFromResource")
def remove_lf_tags_from_resource(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _retag(call, params, remove=True)


def _pairs(call: Call, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"CatalogId": call.account_id, "TagKey": k, "TagValues": [v]}
            for k, v in sorted(tags.items())]  # fmt: skip


def _listed(field: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """``{field: pairs}``, or nothing when there are none (LF's lists hold at least one)."""
    return {field: pairs} if pairs else {}


@operation("lakeformation", "GetResourceLFTags")
def get_resource_lf_tags(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The tags of a database, table or its columns; with ShowAssignedLFTags only
    those set on the resource itself, else inherited ones too (as LF shows them). A
    governed caller reads them only on what it may see (:func:`_require_seen`)."""
    policy = load_policy(call.settings)
    if not _reads_all(call, policy):
        _require_seen(call, policy, params["Resource"])
    assigned = {a.resource: a.tags for a in policy.tags}
    only_own = params.get("ShowAssignedLFTags", False)
    resource = params["Resource"]
    if resource.get("Database"):
        name = resource["Database"]["Name"]
        return _listed("LFTagOnDatabase", _pairs(call, assigned.get(name, {})))
    targets = tag_targets(resource)
    table = targets[0] if resource.get("Table") else targets[0].rsplit(".", 1)[0]
    own = assigned.get(table, {}) if only_own else effective_tags(policy, table)
    answer = _listed("LFTagsOnTable", _pairs(call, own))
    if resource.get("TableWithColumns"):
        columns = []
        for target in targets:
            column = target.rsplit(".", 1)[1]
            tags = assigned.get(target, {}) if only_own else effective_tags(policy, table, column)
            columns.append({"Name": column, **_listed("LFTags", _pairs(call, tags))})
        answer["LFTagsOnColumns"] = columns
    return answer


def _reads_all(call: Call, policy: Policy) -> bool:
    return admin_objects.reads_everything(call.settings, policy, call.principal)


def _require_seen(call: Call, policy: Policy, resource: dict[str, Any]) -> None:
    """AccessDeniedException unless a governed caller sees the resource: a table it
    may DESCRIBE or SELECT a column of (and the columns it may SELECT), a database it
    holds a grant in (tags say what is sensitive)."""
    from lakehouse.governance.visibility import require_visible

    who, targets = call.principal, tag_targets(resource)
    if resource.get("Database"):
        if targets[0] not in _namespaces_held(policy, who):
            raise AwsError("AccessDeniedException", f"{who} holds no permission in database "
                           f"{targets[0]}; its LF-tags are the governance admin's.")  # fmt: skip
        return
    table = targets[0] if resource.get("Table") else targets[0].rsplit(".", 1)[0]
    columns = admin.lake_schema(call.settings).columns(table) or {}
    seen = guarded(lambda: require_visible(policy, who, table, list(columns),
                                           admin=call.settings.governance_admin))  # fmt: skip
    hidden = [name for name in (t.rsplit(".", 1)[1] for t in targets) if name not in seen]
    if resource.get("TableWithColumns") and hidden:
        raise AwsError("AccessDeniedException", f"{who} may not SELECT {', '.join(hidden)} of "
                       f"{table}, so not read their LF-tags.")  # fmt: skip


def _namespaces_held(policy: Policy, who: str) -> set[str]:
    """The namespaces a grant of ``who`` (or its roles) names, or names a table of."""
    held = set()
    for grant in (g for g in policy.grants if g.principal in policy.identities(who)):
        cells = policy.filter_named(grant.resource.data_cells_filter or "")
        table = grant.resource.table or (cells.table if cells else None)
        held.add(grant.resource.namespace or (table.rsplit(".", 1)[0] if table else None))
    return {n for n in held if n}
