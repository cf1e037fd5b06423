"""Glue Data Catalog, backed by the lake's Iceberg REST catalog (one source of truth).

A Glue database is an Iceberg namespace: ``Description`` is its ``comment``
property, ``LocationUri`` its ``location``, ``Parameters`` the other properties.
Glue keeps names in lower case and finds them in any case; so does this. Tables are
in :mod:`lakehouse.aws.glue_tables` (Iceberg) and :mod:`lakehouse.aws.glue_hive`
(Hive-style tables: files at an S3 location, read in place by Trino's ``hive``
catalog). Deleting a database or table removes it from the catalog and leaves its
files on S3, as Glue does.

Operations: GetDatabases, GetDatabase, CreateDatabase, UpdateDatabase,
DeleteDatabase, GetCatalogs, GetCatalog (the account's one catalog), and the table
operations of the modules named above.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchNamespaceError

from lakehouse.aws.errors import AwsError
from lakehouse.aws.registry import Call, operation
from lakehouse.errors import AccessDeniedError

# Namespace properties that are Glue fields of their own, not Parameters.
DESCRIPTION, LOCATION = "comment", "location"
DEFAULT_PAGE = 100


def catalog(call: Call) -> RestCatalog:
    """The lake's catalog for this call. Glue reads and changes metadata unfiltered,
    so with governance on only the admin (and admin-role principals) may use it: a
    governed principal gets AccessDeniedException, never an unfiltered listing."""
    try:
        return call.lake().catalog
    except AccessDeniedError as exc:
        raise AwsError("AccessDeniedException", f"{exc} Glue's catalog API is the governance "
                       "admin's: query through Athena, which applies the policy.") from exc  # fmt: skip


def not_found(what: str) -> AwsError:
    return AwsError("EntityNotFoundException", f"{what} not found.")


def glue_name(name: str, what: str) -> str:
    """A name as Glue stores it (lower case); InvalidInputException if Glue refuses it."""
    if not name or len(name) > 255 or any(ord(c) < 32 for c in name) or "." in name:
        raise AwsError("InvalidInputException",
                       f"{what} name '{name}' is not valid: 1 to 255 characters, no '.' and "
                       "no control characters.")  # fmt: skip
    return name.lower()


def namespaces(call: Call) -> list[str]:
    """The lake's top-level namespaces, sorted."""
    return sorted(".".join(ns) for ns in catalog(call).list_namespaces())


def find_database(call: Call, name: str) -> str:
    """The namespace Glue's ``name`` means (exact, else case-insensitive);
    EntityNotFoundException when there is none."""
    known = namespaces(call)
    if name in known:
        return name
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    raise not_found(f"Database {name}")


def page(items: list[Any], params: dict[str, Any], default: int = DEFAULT_PAGE
         ) -> tuple[list[Any], str | None]:  # fmt: skip
    """One page of ``items`` after the request's NextToken, at most MaxResults long,
    and the token of the next page (None on the last)."""
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            if start < 0:  # a forged token: items[-5:] would repeat the last items
                raise ValueError(start)
        except (ValueError, KeyError, TypeError) as exc:
            raise AwsError("InvalidInputException", "Invalid NextToken.") from exc
    size = params.get("MaxResults") or default
    end = start + size
    following = None
    if end < len(items):
        following = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
    return items[start:end], following


def name_matcher(expression: str | None) -> re.Pattern[str] | None:
    """Glue's table-name Expression: a regular expression over the whole name, case
    insensitive, where a ``*`` not after ``.`` means any characters (``sales*``,
    ``*orders*``, ``a|b``, as awswrangler's name_contains sends it)."""
    if not expression:
        return None
    pattern = re.sub(r"(?<!\.)\*", ".*", expression)
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise AwsError("InvalidInputException",
                       f"Expression '{expression}' is not a valid pattern: {exc}.") from exc  # fmt: skip


def database_of(call: Call, name: str, properties: dict[str, str]) -> dict[str, Any]:
    """Glue's Database for a namespace and its properties."""
    parameters = {k: v for k, v in properties.items() if k not in (DESCRIPTION, LOCATION)}
    return {
        "Name": name, "Description": properties.get(DESCRIPTION),
        "LocationUri": properties.get(LOCATION), "Parameters": parameters,
        "CatalogId": call.account_id,
        "CreateTableDefaultPermissions": [{
            "Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
            "Permissions": ["ALL"]}],
    }  # fmt: skip


def properties_of(database_input: dict[str, Any]) -> dict[str, str]:
    """Namespace properties for a DatabaseInput."""
    properties = dict(database_input.get("Parameters") or {})
    if database_input.get("Description") is not None:
        properties[DESCRIPTION] = database_input["Description"]
    if database_input.get("LocationUri"):
        properties[LOCATION] = database_input["LocationUri"]
    return properties


@operation("glue", "GetDatabases")
def get_databases(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    lake = catalog(call)
    names, token = page(namespaces(call), params)
    found = [database_of(call, n, lake.load_namespace_properties(n)) for n in names]
    return {"DatabaseList": found, "NextToken": token}


@operation("glue", "GetDatabase")
def get_database(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = find_database(call, params["Name"])
    return {"Database": database_of(call, name, catalog(call).load_namespace_properties(name))}


@operation("glue", "CreateDatabase")
def create_database(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    wanted = params["DatabaseInput"]
    name = glue_name(wanted["Name"], "Database")
    if any(n.lower() == name for n in namespaces(call)):
        raise AwsError("AlreadyExistsException", "Database already exists.")
    try:
        catalog(call).create_namespace(name, properties_of(wanted))
    except NamespaceAlreadyExistsError as exc:
        raise AwsError("AlreadyExistsException", "Database already exists.") from exc
    return {}


@operation("glue", "UpdateDatabase")
def update_database(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Replaces the database's definition, as Glue does: properties the input leaves
    out are removed. Renaming is refused (Iceberg namespaces cannot be renamed)."""
    name = find_database(call, params["Name"])
    wanted = params["DatabaseInput"]
    if wanted["Name"].lower() != name.lower():
        raise AwsError("InvalidInputException",
                       f"Renaming database {name} to {wanted['Name']} is not supported: the "
                       "lake's namespaces cannot be renamed. Create the new database and move "
                       "the tables.")  # fmt: skip
    lake = catalog(call)
    current = lake.load_namespace_properties(name)
    new = properties_of(wanted)
    removals = {k for k in current if k not in new and k != LOCATION}
    lake.update_namespace_properties(name, removals=removals, updates=new)
    return {}


@operation("glue", "DeleteDatabase")
def delete_database(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Removes the database and every table in it from the catalog, as Glue does; the
    tables' files stay on S3."""
    name = find_database(call, params["Name"])
    lake = catalog(call)
    for identifier in lake.list_tables(name):
        lake.drop_table(identifier)
    glue_hive.drop_database(call, name)
    try:
        lake.drop_namespace(name)
    except NoSuchNamespaceError as exc:
        raise not_found(f"Database {name}") from exc
    return {}


@operation("glue", "GetCatalogs")
def get_catalogs(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"CatalogList": [_catalog_entry(call)]}


@operation("glue", "GetCatalog")
def get_catalog(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if params["CatalogId"] not in (call.account_id, "awsdatacatalog", "AwsDataCatalog"):
        raise not_found(f"Catalog {params['CatalogId']}")
    return {"Catalog": _catalog_entry(call)}


def _catalog_entry(call: Call) -> dict[str, Any]:
    return {
        "CatalogId": call.account_id, "Name": call.account_id,
        "ResourceArn": f"arn:aws:glue:{call.region}:{call.account_id}:catalog",
        "Description": "The lake's Iceberg REST catalog",
    }  # fmt: skip


# Importing these registers the table operations.
from lakehouse.aws import glue_hive, glue_hive_partitions, glue_tables  # noqa: E402, F401
