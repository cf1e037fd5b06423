"""Where the policy lives: ``<home>/governance/policy.json``, private to the user.

Every change goes through :func:`update`: under a file lock, it reads the stored
policy, applies the change, validates the result as a whole, bumps ``revision`` and
replaces the file atomically, so a crash leaves the old policy or the new one, never
half of either, and two writers never lose each other's change. Enforcers that keep
derived state (Trino's rules file) compare ``revision``.

Export and import use JSON or YAML (``.json``, ``.yaml``/``.yml``) or TOML on import
(``.toml``, e.g. a ``[governance]`` table of ``lakehouse.toml``).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from pydantic import ValidationError

from lakehouse.config import Settings
from lakehouse.errors import PolicyError
from lakehouse.governance.policy import Policy


def policy_path(settings: Settings) -> Path:
    return settings.home_dir / "governance" / "policy.json"


def load_policy(settings: Settings) -> Policy:
    """The stored policy; an empty one (revision 0) when none was stored.

    Raises PolicyError when the file exists but is not a valid policy.
    """
    path = policy_path(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Policy()
    return parse_policy(json.loads(text), str(path))


def parse_policy(data: Any, origin: str) -> Policy:
    """A Policy from plain data; PolicyError naming ``origin`` and every problem."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise PolicyError(
            f"{origin} is not a valid governance policy: {problems}",
            hint="Compare it with `lakehouse governance export` of a working stack.",
        ) from None


# Enforcers that keep derived state (Trino's rules file) register here; each is called
# with the settings and the stored policy after every change, in the changing process.
ON_CHANGE: list[Callable[[Settings, Policy], None]] = []


def update(settings: Settings, change: Callable[[Policy], Policy]) -> Policy:
    """Apply ``change`` to the stored policy atomically; returns the stored result.

    ``change`` raises PolicyError to refuse (nothing is stored then). The
    ``ON_CHANGE`` listeners run after the store, outside its lock.
    """
    path = policy_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        current = load_policy(settings)
        changed = change(current)
        stored = parse_policy(
            changed.model_dump(mode="json") | {"revision": current.revision + 1},
            "the changed policy",
        )
        _write(path, stored)
    for listener in ON_CHANGE:
        listener(settings, stored)
    return stored


def _write(path: Path, policy: Policy) -> None:
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(policy.model_dump(mode="json", exclude_defaults=True), handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


def export_policy(policy: Policy, path: Path) -> None:
    """Write ``policy`` (without its revision) as JSON or YAML, by suffix."""
    data = policy.model_dump(mode="json", exclude_defaults=True, exclude={"revision"})
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    elif path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        raise PolicyError(f"Cannot export a policy as {path.suffix or 'a file without a suffix'}.",
                          hint="Name the file .json, .yaml or .yml.")  # fmt: skip


def read_policy_file(path: Path) -> Policy:
    """A policy from a JSON, YAML or TOML file (TOML: the file's ``[governance]``
    table when it has one). PolicyError when unreadable or invalid."""
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
            data = data.get("governance", data)
        else:
            data = json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PolicyError(f"Cannot read the policy file {path}: {exc}",
                          hint="Give a readable .json, .yaml or .toml file.") from None  # fmt: skip
    return parse_policy(data or {}, str(path))
