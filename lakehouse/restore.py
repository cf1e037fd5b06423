"""Restore a backup written by :func:`lakehouse.backup.backup` into a running stack.

Everything is checked before anything changes: the manifest's shape
(:mod:`lakehouse.backup_manifest`), that every file lies inside the backup
directory with its recorded size and checksum, that every object is in the
stack's warehouse bucket, and that each table's metadata file parses. Then the
objects are uploaded under their keys and each table's metadata file is
registered in the catalog (snapshot ids, history and rows are the backup's).

A table being replaced (``force``) is never missing: the backup's metadata is
registered under a staging name first (the catalog reads it; a failure there
changes nothing), then the old table is renamed aside, the staged one renamed
into place (on failure the old one is renamed back) and the old one dropped
without purging files. Any failure is a BackupError whose hint says what state
the stack is in.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

from lakehouse.backup import (
    MANIFEST,
    OBJECTS_DIR,
    BackupSummary,
    Progress,
    _in_parallel,
    _no_progress,
    _s3_errors,
    sha256_of,
)
from lakehouse.backup_manifest import (
    CATALOG_FILE,
    DAMAGED_HINT,
    FORMAT,
    VERSION,
    BackupError,
    Manifest,
    ObjectFile,
    TableRecord,
    object_key,
    parse_manifest,
)
from lakehouse.config import Settings

NOT_A_BACKUP = "Pass the directory `lakehouse backup` wrote."


def read_manifest(source: Path) -> Manifest:
    """The manifest of the backup at ``source``; BackupError unless it is well formed."""
    path = source / MANIFEST
    if not source.is_dir():
        raise BackupError(f"{source} does not exist or is not a directory.", hint=NOT_A_BACKUP)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(
            f"{source} is not a lakehouse backup: {MANIFEST} is missing or unreadable ({exc}).",
            hint=NOT_A_BACKUP,
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path} is not a lakehouse backup manifest.", hint=NOT_A_BACKUP)
    if data.get("version") != VERSION:
        raise BackupError(
            f"{source} is a version {data.get('version')!r} backup; this lakehouse reads "
            f"version {VERSION}.",
            hint="Restore it with the lakehouse release that wrote it "
            f"({data.get('lakehouse_version', 'unknown')}).",
        )
    return parse_manifest(data, str(path))


def local_object(source: Path, uri: str) -> Path:
    """Where the backup at ``source`` keeps ``uri``; BackupError if that is outside it."""
    path = source / OBJECTS_DIR / Path(*object_key(uri))
    # resolve() follows symbolic links too: a link out of the backup is refused.
    if not path.resolve().is_relative_to((source / OBJECTS_DIR).resolve()):
        raise BackupError(f"The backup at {source} is damaged: {uri} resolves outside it.",
                          hint=DAMAGED_HINT)  # fmt: skip
    return path


def verify(source: Path, manifest: Manifest) -> None:
    """Every file of the backup is inside it, present, with its recorded size and checksum."""
    files = [(source / CATALOG_FILE, manifest.catalog.bytes, manifest.catalog.sha256)]
    files += [(local_object(source, o.uri), o.bytes, o.sha256) for o in manifest.objects]
    for path, size, sha256 in files:
        if not path.is_file() or path.stat().st_size != size or sha256_of(path) != sha256:
            raise BackupError(
                f"The backup at {source} is damaged: {path} is missing or differs from its checksum.",
                hint=DAMAGED_HINT,
            )


def check_metadata(source: Path, manifest: Manifest) -> None:
    """Each table's metadata file in the backup parses as Iceberg table metadata."""
    from pyiceberg.exceptions import ValidationError
    from pyiceberg.serializers import Compressor, FromByteStream

    for table in manifest.tables:
        location = table.metadata_location
        try:
            with local_object(source, location).open("rb") as stream:
                compression = Compressor.get_compressor(location)
                FromByteStream.table_metadata(stream, compression=compression)
        # pyiceberg turns pydantic's errors into its own ValidationError (not a ValueError).
        except (OSError, ValueError, EOFError, ValidationError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackupError(
                f"The backup at {source} is damaged: table {table.identifier}'s metadata file "
                f"{location} is not Iceberg table metadata ({reason}).",
                hint=DAMAGED_HINT,
            ) from exc


def require_same_bucket(settings: Settings, manifest: Manifest) -> None:
    """Every object of the backup lives in the stack's warehouse bucket."""
    buckets = {object_key(o.uri)[0] for o in manifest.objects}
    if buckets - {settings.warehouse_bucket}:
        raise BackupError(
            f"The backup's tables live in bucket(s) {', '.join(sorted(buckets))}; this stack's "
            f"warehouse is {settings.warehouse}.",
            hint="Table metadata names its files by absolute URI: restore into a stack with "
            f"LAKEHOUSE_WAREHOUSE_BUCKET={sorted(buckets)[0]}. Nothing was changed.",
        )


def restore(
    settings: Settings, source: Path, force: bool = False, progress: Progress | None = None
) -> BackupSummary:
    """Restore the backup at ``source`` into the running stack of ``settings``.

    The stack's S3 and catalog must be up. Refuses (BackupError, nothing changed) a
    stack that already has tables unless ``force`` (then same-named tables are
    replaced, never left missing), a damaged backup, or a warehouse bucket other
    than the backup's. A failure while uploading or registering is a BackupError
    whose hint says which tables were restored and that running it again is safe.
    """
    from lakehouse.client import Lakehouse

    report = progress or _no_progress
    manifest = read_manifest(source)
    require_same_bucket(settings, manifest)
    verify(source, manifest)
    check_metadata(source, manifest)
    with Lakehouse(settings) as lake:
        existing = lake.tables()
        if existing and not force:
            raise BackupError(
                f"The stack at {settings.home_dir} already has {len(existing)} table(s) "
                f"({', '.join(existing[:5])}{', ...' if len(existing) > 5 else ''}).",
                hint="Restore into a fresh stack started with `lakehouse up --services "
                "s3,catalog --no-sample` (--no-sample: no tables), with its own home and, "
                "beside a running stack, its own ports in a lakehouse.toml (README.md, Backup "
                "and restore, shows one); or pass --force to replace same-named tables.",
            )
        _upload(lake, settings, source, manifest, report)
        register_all(lake.catalog, manifest.tables, report)
    return BackupSummary(source, len(manifest.tables), len(manifest.objects), manifest.counts.bytes)


def _upload(
    lake: Any, settings: Settings, source: Path, manifest: Manifest, report: Progress
) -> None:
    """Upload the objects the bucket lacks; refuse (nothing uploaded) a key holding other bytes."""

    def compare(entry: ObjectFile) -> str:
        bucket, key = object_key(entry.uri)
        with _s3_errors(settings, entry.uri, None) as missing:  # None: absent is fine
            if _same_object(lake.s3, bucket, key, entry, local_object(source, entry.uri)):
                return "same"
        return "missing" if missing else "other"

    objects = {o.uri: o for o in manifest.objects}
    states = _in_parallel(lambda uri: compare(objects[uri]), list(objects), "comparing", report)
    other = [uri for uri, state in zip(objects, states, strict=True) if state == "other"]
    if other:
        raise BackupError(
            f"{len(other)} of the backup's files already exist in the stack's S3 with other "
            f"content ({', '.join(other[:3])}{', ...' if len(other) > 3 else ''}); overwriting "
            "them would change the data of whatever reads them. Nothing was changed.",
            hint="Restore into a fresh stack (README.md, Backup and restore).",
        )

    def upload(uri: str) -> None:
        bucket, key = object_key(uri)
        with _s3_errors(settings, uri, "(restore)"):
            lake.s3.fput_object(bucket, key, str(local_object(source, uri)))

    todo = [uri for uri, state in zip(objects, states, strict=True) if state == "missing"]
    try:
        _in_parallel(upload, todo, "uploading table files", report)
    except BackupError as exc:
        raise BackupError(
            f"{exc.message} No table was changed; some of the backup's files may already be "
            "in S3, referenced by no table.",
            hint=f"{exc.hint} Running the restore again is safe.",
        ) from exc


def _same_object(s3: Any, bucket: str, key: str, entry: ObjectFile, local: Path) -> bool:
    """Whether S3 holds exactly the backup's bytes at ``key`` (S3Error NoSuchKey if absent)."""
    stat = s3.stat_object(bucket, key)
    if stat.size != entry.bytes:
        return False
    etag = (stat.etag or "").strip('"')
    if len(etag) == 32 and "-" not in etag:  # a single-part upload: the ETag is the MD5
        return bool(etag == md5_of(local))
    digest = hashlib.sha256()  # a multipart ETag says nothing about the bytes: read them
    response = s3.get_object(bucket, key)
    try:
        for block in response.stream(1 << 20):
            digest.update(block)
    finally:
        response.close()
        response.release_conn()
    return digest.hexdigest() == entry.sha256


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def register_all(catalog: Any, tables: list[TableRecord], report: Progress) -> None:
    """Register each table; on a failure, one BackupError saying which were restored."""
    for done, table in enumerate(tables):
        report("registering tables", done + 1, len(tables))
        try:
            register(catalog, table)
        except BackupError:
            raise
        except Exception as exc:  # any catalog failure: the user must learn the stack's state
            restored = ", ".join(t.identifier for t in tables[:done]) or "none"
            pending = ", ".join(t.identifier for t in tables[done + 1 :]) or "none"
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackupError(
                f"Registering table {table.identifier} failed ({type(exc).__name__}: {reason}). "
                f"It is unchanged, as before the restore. Restored: {restored}. "
                f"Not restored: {pending}.",
                hint="The backup's files are in S3. Check the catalog (`lakehouse status`), "
                "then run `lakehouse restore PATH --force` again: it replaces the tables "
                "already restored with the same data.",
            ) from exc


def register(catalog: Any, table: TableRecord) -> None:
    """Point ``table``'s name at the backup's metadata file; an existing table is swapped.

    The existing table is never missing: on any failure it keeps its name, or the
    BackupError names the one table left under a temporary name.
    """
    identifier, location = table.identifier, table.metadata_location
    catalog.create_namespace_if_not_exists(table.namespace)
    if not catalog.table_exists(identifier):
        catalog.register_table(identifier, location)
        return
    token = secrets.token_hex(4)
    staged, replaced = f"{identifier}__restoring_{token}", f"{identifier}__replaced_{token}"
    catalog.register_table(staged, location)  # the catalog reads the metadata here
    try:
        catalog.rename_table(identifier, replaced)
    except Exception:
        catalog.drop_table(staged)  # no purge: the files are the backup's
        raise
    try:
        catalog.rename_table(staged, identifier)
    except Exception:
        _rename_back(catalog, replaced, identifier)
        catalog.drop_table(staged)
        raise
    try:
        catalog.drop_table(replaced)  # no purge: the restored table may share its files
    except Exception as exc:
        raise BackupError(
            f"Table {identifier} was restored, but the table it replaced is left as "
            f"{replaced} ({type(exc).__name__}).",
            hint=f"Drop it without purging files: Lakehouse().catalog.drop_table('{replaced}') "
            "(an engine's DROP TABLE may delete files the restored table reads).",
        ) from exc


def _rename_back(catalog: Any, replaced: str, identifier: str) -> None:
    try:
        catalog.rename_table(replaced, identifier)
    except Exception as exc:
        raise BackupError(
            f"Restoring {identifier} failed, and so did renaming the original back: it is "
            f"now named {replaced}, with its data intact ({type(exc).__name__}: {exc}).",
            hint=f"Rename it back with Lakehouse().catalog.rename_table('{replaced}', "
            f"'{identifier}') once the catalog answers (`lakehouse status`).",
        ) from exc
