"""The shape of a backup's ``manifest.json``, checked strictly before a restore.

A manifest is trusted by nothing: it may have been edited, truncated or written by
hand. :func:`parse_manifest` turns any malformed one into one BackupError
("damaged manifest: <what>") and guarantees, for what it accepts, that every
object URI names a plain key (no ``..``, ``.`` or empty segments, no absolute
path), that URIs and table names are unique, that the counts add up and that
every table's metadata file is one of the backup's objects (so it is checked
against its checksum before anything is uploaded).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse.errors import LakehouseError

FORMAT = "lakehouse-backup"
VERSION = 1
CATALOG_FILE = "catalog.db"
S3_SCHEMES = ("s3", "s3a", "s3n")
# S3's rule for bucket names (lowercase letters, digits, dots, hyphens; 3-63 long).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DAMAGED_HINT = "Restore from another copy of the backup; nothing was changed in the lake."

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Size = Annotated[int, Field(ge=0)]
Name = Annotated[str, Field(min_length=1)]


class BackupError(LakehouseError):
    """A backup or restore could not be made; the message says what state the lake is in."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CatalogFile(_Strict):
    """The copy of the catalog database: always ``catalog.db`` beside the manifest."""

    file: Literal["catalog.db"]
    bytes: Size
    sha256: Sha256


class ObjectFile(_Strict):
    """One S3 object of the backup, stored at ``objects/<bucket>/<key>``."""

    uri: str
    bytes: Size
    sha256: Sha256

    @model_validator(mode="after")
    def _plain_key(self) -> ObjectFile:
        object_key(self.uri)
        return self


class TableRecord(_Strict):
    """One table of the backed-up catalog and the metadata file it points at."""

    namespace: Name
    name: Name
    metadata_location: str

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.name}"


class Counts(_Strict):
    tables: Size
    objects: Size
    bytes: Size


class Manifest(_Strict):
    """A whole manifest; constructing one checks every cross-reference."""

    format: Literal["lakehouse-backup"]
    version: Literal[1]
    created_at: str
    lakehouse_version: str
    catalog: CatalogFile
    tables: list[TableRecord]
    counts: Counts
    objects: list[ObjectFile]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        keys = [object_key(o.uri) for o in self.objects]
        if len(set(keys)) != len(keys):
            raise ValueError("an object is listed twice")
        identifiers = [t.identifier for t in self.tables]
        if len(set(identifiers)) != len(identifiers):
            raise ValueError("a table is listed twice")
        actual = Counts(
            tables=len(self.tables),
            objects=len(self.objects),
            bytes=sum(o.bytes for o in self.objects),
        )
        if actual != self.counts:
            raise ValueError(f"counts {self.counts.model_dump()} != listed {actual.model_dump()}")
        uris = {o.uri for o in self.objects}
        for table in self.tables:
            if table.metadata_location not in uris:
                raise ValueError(
                    f"table {table.identifier}'s metadata_location {table.metadata_location} "
                    "is not one of the backup's objects"
                )
        return self


def object_key(uri: str) -> tuple[str, str]:
    """('bucket', 'key') of ``s3://bucket/key``; ValueError unless both are plain names.

    A plain key has no empty, ``.`` or ``..`` segment and no NUL or backslash, so
    ``objects/<bucket>/<key>`` stays inside the backup directory.
    """
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or scheme not in S3_SCHEMES:
        raise ValueError(f"{uri!r} is not an s3:// URI")
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ValueError(f"{uri!r} has an invalid bucket name")
    segments = key.split("/")
    if any(s in ("", ".", "..") or "\\" in s or "\0" in s for s in segments):
        raise ValueError(f"{uri!r} is not a plain object key (empty, '.' or '..' part)")
    return bucket, key


def parse_manifest(data: Any, where: str) -> Manifest:
    """A strict Manifest from parsed JSON; BackupError naming the first fault otherwise.

    ``where`` (the manifest's path) starts the message.
    """
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise BackupError(f"{where}: damaged manifest: {_first_fault(exc)}",
                          hint=DAMAGED_HINT) from None  # fmt: skip


def _first_fault(exc: ValidationError) -> str:
    """'objects.0.sha256: Field required' (and how many more faults there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    place = ".".join(str(part) for part in first["loc"]) or "manifest"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{place}: {message}{more}"
