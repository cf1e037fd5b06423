"""Governance on the REST catalog: each principal's own catalog token.

With governance on, each principal gets a bearer token of its own for the Iceberg
REST catalog, generated once and kept in ``<home>/governance/catalog-tokens.json``
(0600); the admin keeps the stack's ``catalog_token``. The catalog learns the tokens
from ``<home>/governance/catalog-access.json`` (0600, written atomically from the
policy and the catalog's tables, holding only the tokens' digests), which it re-reads
when the file changes: no restart, the next request already follows it. What a
principal's token may do there:

- ``GET /v1/config``; list the namespaces and tables it may see (Lake Formation's
  rule, :mod:`.visibility`: DESCRIBE or SELECT of at least one column), each
  listing filtered to those;
- load a table it may read **whole and as stored** (the same tables its S3 key may
  read, :func:`.s3_access.may_read_files`): loading hands out the metadata and file
  locations, so pyiceberg then reads the table end to end with its S3 key;
- append to a table it may load and holds INSERT on. The client's commit is not
  applied as sent (its manifest list could drop the table's files): the catalog
  checks it is one append snapshot on main, reads the data files of the manifests
  the client added, checks each lies under the table's location, and appends those
  files itself (``services/catalog/CatalogAppends.java``);
- nothing else: creating, overwriting, deleting from, altering, renaming and dropping
  tables, namespaces and views is refused with 403 ``ForbiddenException`` naming the
  principal and what it lacks.

Members of the admin role get tokens with every right. A table created since the
file was written is invisible to principals until it is rewritten (fail closed).
The catalog writes each decision on a principal's request to :func:`decisions_dir`
before answering; :func:`collect` moves them into the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from filelock import FileLock

from lakehouse.config import Settings
from lakehouse.errors import PolicyError
from lakehouse.governance import s3_access
from lakehouse.governance.policy import Policy
from lakehouse.governance.s3_access import (
    PRINCIPAL_NAME,
    TableFiles,
    _replace,
    governance_dir,
    may_read_files,
    may_write_files,
)
from lakehouse.governance.visibility import visible_tables


def access_path(settings: Settings) -> Path:
    """The file the catalog reads principal tokens from (digests only; 0600)."""
    return governance_dir(settings) / "catalog-access.json"


def decisions_dir(settings: Settings) -> Path:
    """Where the catalog writes each decision on a principal's request (one JSON file
    each) until :func:`collect` moves it into the audit log."""
    return governance_dir(settings) / "audit" / "catalog"


def _tokens_path(settings: Settings) -> Path:
    return governance_dir(settings) / "catalog-tokens.json"


def header_digest(token: str) -> str:
    """SHA-256 (hex) of the ``Authorization`` header a client sends with ``token``."""
    return hashlib.sha256(f"Bearer {token}".encode()).hexdigest()


# -- tokens ------------------------------------------------------------------------


def token(settings: Settings, principal: str) -> str:
    """``principal``'s catalog token: the stack's for the admin, else its own
    (generated on first request, then the catalog's access file is rewritten).

    Raises PolicyError for a name no principal can have.
    """
    if principal == settings.governance_admin:
        return settings.catalog_token
    if not PRINCIPAL_NAME.match(principal):
        raise PolicyError(
            f"{principal!r} is not a valid principal name.",
            hint="Use letters, digits, _ . @ - (starting with a letter or _), e.g. alice.",
        )
    known = _read_tokens(settings)
    if principal in known:
        return known[principal]
    issued = _issue(settings, [principal])[principal]
    refresh(settings)
    return issued


def rotate(settings: Settings, principal: str) -> str:
    """A new token for ``principal``; the old one stops working at the catalog's next
    request. Raises PolicyError for the admin, whose token is the stack's."""
    if principal == settings.governance_admin:
        raise PolicyError("The admin's catalog token is the stack's own catalog_token.",
                          hint="Change LAKEHOUSE_CATALOG_TOKEN and restart the catalog.")  # fmt: skip
    token(settings, principal)  # checks the name
    _issue(settings, [principal], replace=True)
    refresh(settings)
    return _read_tokens(settings)[principal]


def _read_tokens(settings: Settings) -> dict[str, str]:
    try:
        data = json.loads(_tokens_path(settings).read_text())
    except FileNotFoundError:
        return {}
    return {str(name): str(value) for name, value in data.items()}


def _issue(settings: Settings, names: Iterable[str], replace: bool = False) -> dict[str, str]:
    """Tokens for ``names`` (new ones generated; all kept); returns every issued token."""
    path = _tokens_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        issued = _read_tokens(settings)
        wanted = [n for n in names if replace or n not in issued]
        for name in wanted:
            issued[name] = "lhc_" + secrets.token_urlsafe(32)
        if wanted:
            _replace(path, json.dumps(issued, indent=1))
    return issued


# -- what each token may do --------------------------------------------------------


def principal_rules(policy: Policy, principal: str, tables: Sequence[TableFiles],
                    admin: str) -> dict[str, Any]:  # fmt: skip
    """What ``principal`` may see, load and append to: ``admin`` (every right),
    ``namespaces`` and ``tables`` it may see (sorted ``ns`` / ``ns.table`` names),
    ``readable``: the tables it may load (read whole), ``appendable``: those of them
    it holds INSERT on."""
    if policy.is_admin(principal, admin):
        return {"name": principal, "admin": True, "namespaces": [], "tables": [], "readable": [],
                "appendable": []}  # fmt: skip
    columns = {t.name: t.columns for t in tables}
    seen = visible_tables(policy, principal, [t.name for t in tables], columns.__getitem__,
                          admin=admin)  # fmt: skip
    readable = [t for t in tables if t.name in seen and may_read_files(policy, principal, t, admin)]
    appendable = [t.name for t in readable if may_write_files(policy, principal, t, admin)]
    return {
        "name": principal,
        "admin": False,
        "namespaces": sorted(_namespaces(policy, principal, seen)),
        "tables": sorted(seen),
        "readable": sorted(t.name for t in readable),
        "appendable": sorted(appendable),
    }


def _namespaces(policy: Policy, principal: str, seen: Iterable[str]) -> set[str]:
    """Namespaces holding a table it sees, or named by one of its grants (and their
    parents: a nested namespace is reached through them)."""
    who = set(policy.identities(principal))
    names = {name.rsplit(".", 1)[0] for name in seen}
    names |= {g.resource.namespace for g in policy.grants
              if g.principal in who and g.resource.namespace is not None}  # fmt: skip
    return {".".join(name.split(".")[:depth]) for name in names
            for depth in range(1, name.count(".") + 2)}  # fmt: skip


def access_document(policy: Policy, tables: Sequence[TableFiles], tokens: dict[str, str],
                    admin: str) -> dict[str, Any]:  # fmt: skip
    """The catalog's access file: the policy ``revision`` and one entry per issued
    principal token (its header digest and :func:`principal_rules`)."""
    principals = [
        {"digest": header_digest(value), **principal_rules(policy, name, tables, admin)}
        for name, value in sorted(tokens.items())
        if name != admin
    ]
    return {"revision": policy.revision, "principals": principals}


# -- keeping the catalog current ---------------------------------------------------


def write_access(settings: Settings, tables: Sequence[TableFiles] | None = None) -> Path:
    """Rewrite the catalog's access file from the stored policy, the issued tokens
    (every declared user gets one) and ``tables`` (default: the catalog's, else the
    list last written); atomic, so the catalog sees the old rules or the new."""
    from lakehouse.governance.store import load_policy

    policy = load_policy(settings)
    tokens = _issue(settings, [p.name for p in policy.principals if p.kind == "user"])
    path = access_path(settings)
    with FileLock(str(path) + ".lock"):
        current = list(tables) if tables is not None else _tables(settings)
        document = access_document(policy, current, tokens, settings.governance_admin)
        document["digest"] = _digest(policy, current, tokens)
        document["tables"] = [asdict(t) for t in current]
        _replace(path, json.dumps(document, indent=1))
    return path


def _tables(settings: Settings) -> list[TableFiles]:
    """The catalog's tables, or those of the file last written when it does not answer."""
    try:
        return s3_access.lake_table_files(settings)
    except Exception:  # the catalog is down or starting: the list last seen
        try:
            state = json.loads(access_path(settings).read_text())
            return [_table_files(t) for t in state.get("tables", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []


def _table_files(data: dict[str, Any]) -> TableFiles:
    """A TableFiles as :func:`write_access` stored it (lists back to tuples)."""
    known = {f.name for f in fields(TableFiles)}
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in data.items() if k in known}  # fmt: skip
    return TableFiles(**values)


def refresh(settings: Settings) -> None:
    """Rewrite the access file, when governance is on."""
    if settings.governance_enabled:
        write_access(settings)


def ensure_current(settings: Settings) -> bool:
    """Rewrite the access file when the policy, the tokens or the catalog's tables
    changed since it was written; True if rewritten (governance on only)."""
    if not settings.governance_enabled:
        return False
    from lakehouse.governance.store import load_policy

    try:
        tables: list[TableFiles] | None = s3_access.lake_table_files(settings)
    except Exception:  # the catalog does not answer: rewrite from the last list
        tables = None
    try:
        digest = json.loads(access_path(settings).read_text()).get("digest")
    except (OSError, ValueError, AttributeError):
        digest = None
    policy = load_policy(settings)
    if tables is not None and digest == _digest(policy, tables, _read_tokens(settings)):
        return False
    write_access(settings, tables)
    return True


def policy_changed(settings: Settings, policy: Policy) -> None:
    """The store's change listener: the catalog's rules follow every policy change,
    over the tables the S3 identities were just written from for this revision (the
    listener before this one), else the catalog's (one load per table saved)."""
    if settings.governance_enabled:
        write_access(settings, _tables_listed_for_s3(settings, policy.revision))


def _tables_listed_for_s3(settings: Settings, revision: int) -> list[TableFiles] | None:
    """The tables of the S3 identities' state when written for ``revision``, else None."""
    try:
        state = json.loads((governance_dir(settings) / "s3-identities.state.json").read_text())
        if state.get("revision") != revision:
            return None
        return [_table_files(t) for t in state["tables"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _digest(policy: Policy, tables: Sequence[TableFiles], tokens: dict[str, str]) -> str:
    data = [policy.revision, sorted(json.dumps(asdict(t), sort_keys=True) for t in tables),
            sorted(header_digest(v) for v in tokens.values())]  # fmt: skip
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


# -- the catalog's decisions in the audit log --------------------------------------


def collect(settings: Settings) -> int:
    """Move the catalog's recorded decisions (engine ``catalog``, action such as
    LOAD_TABLE or DROP_TABLE, the table or namespace, allowed or the refusal) into the
    audit spool, at the time the catalog decided; how many. A process killed between
    spooling a decision and deleting its file spools it again at the next collection."""
    folder = decisions_dir(settings)
    if not settings.governance_enabled or not folder.is_dir():
        return 0
    from lakehouse.governance.audit import record

    moved = 0
    with FileLock(str(folder) + ".lock"):
        for path in sorted(folder.glob("*.json")):
            try:
                event = json.loads(path.read_text())
                at = dt.datetime.fromisoformat(event["time"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # gone, or not the catalog's: left for a look
            record(settings, str(event["principal"]), "catalog", str(event["resource"]), (), (),
                   bool(event["allowed"]), None, action=str(event["action"]),
                   reason=event.get("reason"), at=at)  # fmt: skip
            path.unlink(missing_ok=True)
            moved += 1
    return moved
