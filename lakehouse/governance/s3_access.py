"""Governance on S3: each principal's own S3 credentials (credential vending).

Each principal gets an access key and secret of its own, generated once and kept in
``<home>/governance/s3-credentials.json`` (0600). SeaweedFS serves them as S3
identities from ``<home>/governance/s3-identities.json`` (``weed mini -s3.config``),
regenerated from the policy and the catalog's tables and reloaded without a restart
(SIGHUP; measured: the next request after the signal already sees the change).

What an identity may do (SeaweedFS's actions on ``bucket/prefix/*``):

- ``Read`` and ``List`` of a table's locations (its data and metadata prefixes) when
  the principal may SELECT the whole table as stored: every column, now and later,
  unmasked, every row. A table with a row filter, a masked or hidden column, or a
  column-limited grant gives NO file access: the raw files hold every row and column;
- ``Write`` of a table's locations when the principal holds INSERT on it. SeaweedFS's
  Write also overwrites and deletes objects there (it has no put-only action);
- the admin keeps the stack's own key (every action); members of the admin role get
  keys of their own with every action.

Anything else is refused with S3's ``AccessDenied`` (HTTP 403). The catalog's table
list is read when the policy changes, at ``lakehouse env --as`` and at S3's start; a
new table is unreadable until then (fail closed), the last list seen is used while
the catalog is down.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock

from lakehouse.config import Settings
from lakehouse.errors import AccessDeniedError, PolicyError
from lakehouse.governance.access import check, quote, table_access
from lakehouse.governance.policy import Permission, Policy

ALL_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")
# A column no table has: visible unmasked only when a column added later would be too.
FUTURE_COLUMN = "__lakehouse_future_column__"
PRINCIPAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]{0,127}$")
# Table properties that move data or metadata files away from the table's location.
LOCATION_PROPERTIES = ("write.data.path", "write.metadata.path", "write.object-storage.path")


@dataclass(frozen=True)
class S3Credentials:
    """An S3 access key id and its secret."""

    access_key: str
    secret_key: str


@dataclass(frozen=True)
class TableFiles:
    """A catalog table: ``name`` (``ns.table``), its ``columns`` in order and the
    ``locations`` (``s3://bucket/prefix``) holding its files; ``former``: columns of
    its older schemas it has no more, by name and field id (a column renamed, or
    dropped and added again under its name, counts: older files still hold values
    the policy no longer names); ``ids``:
    the columns' Iceberg field ids, in the same order (empty: not known)."""

    name: str
    columns: tuple[str, ...]
    locations: tuple[str, ...]
    former: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()


def governance_dir(settings: Settings) -> Path:
    return settings.home_dir / "governance"


def identities_path(settings: Settings) -> Path:
    """SeaweedFS's identity file (``-s3.config``); holds secrets, 0600."""
    return governance_dir(settings) / "s3-identities.json"


def _credentials_path(settings: Settings) -> Path:
    return governance_dir(settings) / "s3-credentials.json"


def _state_path(settings: Settings) -> Path:
    return governance_dir(settings) / "s3-identities.state.json"


# -- credentials -------------------------------------------------------------------


def credentials(settings: Settings, principal: str) -> S3Credentials:
    """``principal``'s S3 credentials: the stack's key for the admin, else its own
    (generated on first request, then the identities are regenerated so it works).

    Raises PolicyError for a name no principal can have.
    """
    if principal == settings.governance_admin:
        return S3Credentials(settings.access_key, settings.secret_key)
    if not PRINCIPAL_NAME.match(principal):
        raise PolicyError(
            f"{principal!r} is not a valid principal name.",
            hint="Use letters, digits, _ . @ - (starting with a letter or _), e.g. alice.",
        )
    known = _read_issued(settings)
    if principal in known:
        return known[principal]
    issued = _issue(settings, [principal])[principal]
    refresh(settings)
    return issued


def rotate(settings: Settings, principal: str) -> S3Credentials:
    """Replace ``principal``'s key and secret (the old pair stops working at once).

    Raises PolicyError for the admin, whose key is the stack's (settings)."""
    if principal == settings.governance_admin:
        raise PolicyError("The admin's S3 key is the stack's own key.",
                          hint="Change LAKEHOUSE_ACCESS_KEY/SECRET_KEY and restart S3.")  # fmt: skip
    _issue(settings, [principal], replace=True)
    refresh(settings)
    return _read_issued(settings)[principal]


def issued(settings: Settings) -> dict[str, S3Credentials]:
    """Every principal's vended credentials so far (the admin's are the stack's key)."""
    return _read_issued(settings)


def _read_issued(settings: Settings) -> dict[str, S3Credentials]:
    try:
        data = json.loads(_credentials_path(settings).read_text())
    except FileNotFoundError:
        return {}
    return {name: S3Credentials(**pair) for name, pair in data.items()}


def _issue(
    settings: Settings, names: Iterable[str], replace: bool = False
) -> dict[str, S3Credentials]:
    """Keys for ``names`` (new ones generated; all kept); returns every issued key."""
    path = _credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        issued = _read_issued(settings)
        wanted = [n for n in names if replace or n not in issued]
        for name in wanted:
            issued[name] = S3Credentials(
                "LH" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
            )
        if wanted:
            _replace(path, json.dumps({n: asdict(c) for n, c in issued.items()}, indent=1))
    return issued


# -- what each identity may do -----------------------------------------------------


def may_read_files(policy: Policy, principal: str, table: TableFiles, admin: str) -> bool:
    """True when ``principal`` may SELECT every row and column of ``table`` as stored,
    and any column added later too (the raw files show all of them). Never for a
    table that dropped or renamed a column: its older files still hold values the
    policy no longer names."""
    if table.former:
        return False
    columns = [*table.columns, FUTURE_COLUMN]
    ids = dict(zip(table.columns, table.ids, strict=True)) if table.ids else None
    try:
        access = table_access(policy, principal, table.name, columns, admin=admin, ids=ids)
    except (AccessDeniedError, PolicyError):
        return False
    shown = {c.name for c in access.columns if c.expression == quote(c.name) and c.mask is None}
    return access.row_filter is None and shown == set(columns)


def may_write_files(policy: Policy, principal: str, table: TableFiles, admin: str) -> bool:
    """True when ``principal`` holds INSERT on ``table``."""
    try:
        check(policy, principal, Permission.INSERT, admin=admin, table=table.name)
    except AccessDeniedError:
        return False
    return True


def _prefixes(table: TableFiles) -> list[str]:
    """``bucket/prefix/*`` of each location (SeaweedFS matches ``/*`` as a subtree)."""
    found = []
    for location in table.locations:
        url = urlparse(location)
        if url.scheme in ("s3", "s3a", "s3n") and url.netloc:
            found.append(f"{url.netloc}/{url.path.strip('/')}/*")
    return list(dict.fromkeys(found))


def actions(policy: Policy, principal: str, tables: Sequence[TableFiles], admin: str) -> list[str]:
    """SeaweedFS's actions for ``principal`` over ``tables`` (sorted, each once)."""
    if policy.is_admin(principal, admin):
        return list(ALL_ACTIONS)
    granted: set[str] = set()
    for table in tables:
        if may_read_files(policy, principal, table, admin):
            granted.update(f"{a}:{p}" for a in ("Read", "List") for p in _prefixes(table))
        if may_write_files(policy, principal, table, admin):
            granted.update(f"Write:{p}" for p in _prefixes(table))
    return sorted(granted)


def identities_document(settings: Settings, policy: Policy, tables: Sequence[TableFiles],
                        issued: dict[str, S3Credentials]) -> dict[str, Any]:  # fmt: skip
    """SeaweedFS's ``-s3.config`` document: the admin with the stack's key, then one
    identity per issued principal (an identity without actions can do nothing)."""
    admin = settings.governance_admin
    identities = [_identity(admin, S3Credentials(settings.access_key, settings.secret_key),
                            list(ALL_ACTIONS))]  # fmt: skip
    for name, pair in sorted(issued.items()):
        if name != admin:
            identities.append(_identity(name, pair, actions(policy, name, tables, admin)))
    return {"identities": identities}


def _identity(name: str, pair: S3Credentials, allowed: list[str]) -> dict[str, Any]:
    return {"name": name, "actions": allowed,
            "credentials": [{"accessKey": pair.access_key, "secretKey": pair.secret_key}]}  # fmt: skip


# -- keeping SeaweedFS current -----------------------------------------------------


def lake_table_files(settings: Settings) -> list[TableFiles]:
    """Every catalog table with its columns and file locations (one request per table)."""
    from lakehouse.lake import catalog as cat

    catalog = cat.open_catalog(settings)
    found = []
    for name in cat.list_tables(catalog):
        table = cat.load_table(catalog, name)
        extra = [table.properties[key] for key in LOCATION_PROPERTIES if key in table.properties]
        fields = table.schema().fields
        now = {(f.field_id, f.name.lower()) for f in fields}  # a rename or a re-add counts
        former = tuple(sorted({f.name for old in table.schemas().values() for f in old.fields
                               if (f.field_id, f.name.lower()) not in now}))  # fmt: skip
        locations = tuple(dict.fromkeys([table.location(), *extra]))
        found.append(TableFiles(name, tuple(f.name for f in fields), locations, former,
                                tuple(f.field_id for f in fields)))  # fmt: skip
    return found


def _tables(settings: Settings) -> list[TableFiles]:
    """The catalog's tables, or the last list seen when the catalog does not answer."""
    try:
        return lake_table_files(settings)
    except Exception:  # the catalog is down (e.g. S3 starts first): the list it last gave
        try:
            state = json.loads(_state_path(settings).read_text())
        except (OSError, ValueError):
            return []
        return [TableFiles(t["name"], tuple(t["columns"]), tuple(t["locations"]),
                           tuple(t.get("former", ())), tuple(t.get("ids", ())))
                for t in state.get("tables", [])]  # fmt: skip


def write_identities(settings: Settings, tables: Sequence[TableFiles] | None = None) -> Path:
    """Regenerate SeaweedFS's identity file from the stored policy, the issued keys
    (every declared user gets one) and ``tables`` (default: the catalog's); atomic."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    users = [p.name for p in policy.principals if p.kind == "user"]
    issued = _issue(settings, users)
    path = identities_path(settings)
    with FileLock(str(path) + ".lock"):
        current = list(tables) if tables is not None else _tables(settings)
        document = identities_document(settings, policy, current, issued)
        _replace(path, json.dumps(document, indent=1))
        state = {"digest": _digest(policy, current), "revision": policy.revision,
                 "tables": [asdict(t) for t in current]}  # fmt: skip
        _replace(_state_path(settings), json.dumps(state))
    return path


def reload(settings: Settings) -> bool:
    """Make a running local SeaweedFS re-read its identity file (SIGHUP; no restart).
    False when S3 is not running here (it reads the file when it starts)."""
    from lakehouse.runtimes.local import LocalRuntime

    pid = LocalRuntime(settings).pid("s3")
    if pid is None:
        return False
    os.kill(pid, signal.SIGHUP)
    return True


def refresh(settings: Settings) -> None:
    """Regenerate and reload, when governance is on."""
    if settings.governance_enabled:
        write_identities(settings)
        reload(settings)


def ensure_current(settings: Settings) -> bool:
    """Regenerate and reload when the policy or the catalog's tables (names, columns,
    locations) changed since the identities were written, or the catalog does not
    answer (then from the last list seen); True if regenerated."""
    from lakehouse.governance.store import load_policy

    tables: list[TableFiles] | None
    try:
        tables = lake_table_files(settings)
    except Exception:  # the catalog is down or answers badly
        tables = None
    try:
        digest = json.loads(_state_path(settings).read_text()).get("digest")
    except (OSError, ValueError):
        digest = None
    if tables is not None and digest == _digest(load_policy(settings), tables):
        return False
    write_identities(settings, tables)
    reload(settings)
    return True


def policy_changed(settings: Settings, policy: Policy) -> None:
    """The store's change listener: identities follow every policy change."""
    refresh(settings)


def _digest(policy: Policy, tables: Sequence[TableFiles]) -> str:
    data = [policy.revision,
            sorted((t.name, t.columns, t.locations, t.former, t.ids) for t in tables)]  # fmt: skip
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
