"""The permissions a library write needs (``lake.ingest``, ``lakehouse ingest``),
checked against the stored policy before anything is read or written; each decision
goes to the audit log (engine ``library``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakehouse.errors import AccessDeniedError
from lakehouse.governance.access import check
from lakehouse.governance.audit import record
from lakehouse.governance.policy import Permission
from lakehouse.governance.store import load_policy

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from lakehouse.config import Settings


def ingest_permissions(exists: bool, mode: str, key: list[str] | None) -> list[Permission]:
    """What an ingest in ``mode`` needs: CREATE_TABLE (on the namespace) for a new
    table; INSERT, plus DELETE when rows are replaced (overwrite, upsert by key)."""
    if not exists:
        return [Permission.CREATE_TABLE]
    replaces = mode in ("overwrite", "upsert") or bool(key)
    return [Permission.INSERT, *([Permission.DELETE] if replaces else [])]


def check_ingest(settings: Settings, catalog: Catalog, principal: str, table: str,
                 mode: str, key: list[str] | None) -> None:  # fmt: skip
    """Raise AccessDeniedError (audited) unless ``principal`` may ingest into ``table``
    (``ns.table``; a name ingest would reject is left to ingest's own message)."""
    from lakehouse.errors import IngestError
    from lakehouse.lake.names import normalise_table_name

    try:
        name, _ = normalise_table_name(table)
    except IngestError:
        return
    policy, admin = load_policy(settings), settings.governance_admin
    exists = catalog.table_exists(name)
    namespace = name.rsplit(".", 1)[0]
    for permission in ingest_permissions(exists, mode, key):
        where = {"table": name} if exists else {"namespace": namespace}
        try:
            check(policy, principal, permission, admin=admin, **where)
        except AccessDeniedError as denied:
            record(settings, principal, "library", denied.resource, (), (), False, None,
                   action=permission.value, reason=str(denied))  # fmt: skip
            raise
        record(settings, principal, "library", name if exists else namespace, (), (), True, None,
               action=permission.value)  # fmt: skip


def check_source(settings: Settings, principal: str, source: object) -> None:
    """Refuse (audited) an s3:// source: ingest reads it with the stack's own keys,
    which would let ``principal`` copy any object of the lake, hidden columns included."""
    if not (isinstance(source, str) and source.startswith("s3://")):
        return
    denied = AccessDeniedError(
        principal, "S3 READ", source,
        hint="Ingest a local copy: fetch the object with the S3 credentials "
        "`lakehouse env --as PRINCIPAL` exports (they carry its grants).",
    )  # fmt: skip
    record(settings, principal, "library", source, (), (), False, None, action="S3_READ",
           reason=str(denied))  # fmt: skip
    raise denied
