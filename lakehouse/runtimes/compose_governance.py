"""Governance on the docker runtime: what compose enforces, and what it refuses.

Enforced, from the same files as the local runtime:

- **Trino** runs its file-based access control on the rules file that
  :mod:`lakehouse.governance.trino_rules` writes into the home from the stored
  policy. The home's governance folder is mounted read-only *as a folder*: the
  rules are replaced by a rename, and a bind mount of the file alone would keep
  showing the replaced file, so Trino would never see a revocation. The
  properties are the local runtime's (same plugin, same refresh period) with the
  path inside the container, so a grant or revoke made on the host is in force
  there within the same second. (The folder also holds the principals' S3 keys;
  the Trino container already holds the stack's key, which opens every file.)
- **Trino's audit** needs no wiring: :mod:`lakehouse.governance.trino_audit` reads
  the decisions from Trino's REST API on the published port, as it does locally.

Not enforceable in compose, so refused or said at ``lakehouse up``:

- the **console**, the **aws** APIs and **Jupyter** run in containers with a home
  of their own (the ``lakehouse-home`` volume) and no governance settings: they
  would serve every table to whoever asks. ``up`` refuses them, starting nothing.
- **S3**: MinIO (and the SeaweedFS override) know only the stack's key; the
  principals' own keys are not served there (MinIO has users and prefix policies,
  but they would have to be re-applied at every policy change, which nothing in
  compose does: a revoked key would keep reading). A principal's key is refused
  (fails closed); ``up`` says so (:data:`NOTICE`).
- **The catalog** is the stock fixture image, which checks no bearer token (the
  local runtime's launcher checks the stack's and the principals' tokens): any
  local process may list, create, change and drop tables through it. What is
  protected: it hands no S3 key out with a table (``include-credentials`` false),
  and a principal holds no key S3 accepts. ``up`` says so (:data:`NOTICE`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

# The lakehouse-image containers' home; Trino sees the host home's governance folder
# under it, so the rules' path is the one the governance code computes for that home.
CONTAINER_HOME = "/lakehouse-home"
# Rendered by `lakehouse compose render` next to coordinator.properties.
ACCESS_CONTROL_FILE = "services/trino/compose/access-control.properties"
ACCESS_CONTROL_MOUNT = "/etc/trino/access-control.properties"
# The trinodb/trino image runs as its `trino` user, uid 1000 (unverified here: no engine).
TRINO_IMAGE_UID = 1000
UNENFORCEABLE = {
    "console": "runs in a container with a home of its own and no governance settings: "
    "it would show every table to whoever opens it",
    "aws": "Athena, Glue and Lake Formation would answer from that other home (another "
    "policy, no principals' keys) and run ungoverned",
    "jupyter": "its kernels hold the stack's key and run every query ungoverned",
}
NOTICE = (
    "Governance on the docker runtime: Trino enforces the policy, but S3 (MinIO) knows "
    "only the stack's key, so the principals' own S3 keys (`lakehouse env --as NAME`) are "
    "refused there, and the catalog (the stock apache/iceberg-rest-fixture image) checks "
    "no token, so any local process may list, create, change and drop every table "
    "through its REST API.\n"
    "Hint: for per-principal S3 keys and catalog tokens, run the stack with the local "
    "runtime (`lakehouse up --runtime local`)."
)


class GovernanceUnenforceableError(LakehouseError):
    """The docker runtime was asked for a part it cannot govern."""


def in_container(settings: Settings) -> Settings:
    """``settings`` as the containers see them: the home at :data:`CONTAINER_HOME`."""
    return settings.model_copy(update={"home": Path(CONTAINER_HOME)})


def trino_access_control(settings: Settings) -> str:
    """``access-control.properties`` for the Trino image: the local runtime's, on the
    rules file's path inside the container."""
    from lakehouse.governance.trino_rules import access_control_properties

    return access_control_properties(in_container(settings))


def trino_volumes(settings: Settings) -> list[str]:
    """The coordinator's governance mounts (none with governance off): the host home's
    governance folder, read-only, where the properties say the rules are."""
    if not settings.governance_enabled:
        return []
    from lakehouse.governance.trino_rules import rules_path

    host = rules_path(settings).parent.absolute()
    inside = rules_path(in_container(settings)).parent
    # "$" would be replaced by compose from the caller's environment.
    return [
        f"{str(host).replace('$', '$$')}:{inside}:ro",
        f"./{ACCESS_CONTROL_FILE}:{ACCESS_CONTROL_MOUNT}:ro",
    ]


def refusal(
    targets: Sequence[str], defined: Collection[str]
) -> GovernanceUnenforceableError | None:
    """The error for the ``targets`` compose cannot govern, or None; its hint names
    the other targets compose ``defined`` (services compose.yaml has)."""
    refused = [name for name in UNENFORCEABLE if name in targets]
    if not refused:
        return None
    reasons = "; ".join(f"{name}: {UNENFORCEABLE[name]}" for name in refused)
    # Names `--services` takes (compose's scalable worker follows `trino_workers`).
    allowed = [n for n in targets if n in defined and n not in UNENFORCEABLE
               and n != "trino-worker"]  # fmt: skip
    return GovernanceUnenforceableError(
        f"With governance on, the docker runtime cannot enforce the policy in "
        f"{', '.join(refused)}, so nothing was started ({reasons}).",
        hint=f"Start the rest alone (`lakehouse up --runtime docker --services "
        f"{','.join(allowed) or 's3,catalog,trino'}`), or run the whole governed stack with "
        f"the local runtime (`lakehouse up --runtime local`), which enforces it everywhere.",
    )


def rules_reader_problem(uid: int, platform: str) -> GovernanceUnenforceableError | None:
    """Why Trino's container could not read rules written by ``uid`` (None if it can).

    The rules are private to their writer (0600 in a 0700 folder). On Linux a bind
    mount keeps the host's owner, so only a writer with the image's uid is readable
    there; elsewhere Docker Desktop's file sharing maps ownership (unverified).
    """
    if platform != "linux" or uid == TRINO_IMAGE_UID:
        return None
    return GovernanceUnenforceableError(
        f"With governance on, Trino's container (uid {TRINO_IMAGE_UID}) must read the rules "
        f"file this user (uid {uid}) writes, private to it: Trino would not start.",
        hint=f"Run lakehouse as a user with uid {TRINO_IMAGE_UID}, or run Trino with the local "
        "runtime (`lakehouse up --runtime local`).",
    )


def host_uid() -> int:
    return os.getuid()


def check_targets(settings: Settings, targets: Sequence[str]) -> None:
    """Raise before anything starts when governance is on and ``targets`` hold a part
    compose cannot govern (see the module's docstring)."""
    if not settings.governance_enabled:
        return
    from lakehouse.runtimes.compose import render

    error = refusal(targets, render(settings)["services"])
    if error is None and "trino" in targets:
        error = rules_reader_problem(host_uid(), sys.platform)
    if error is not None:
        raise error


def write_trino_rules(settings: Settings) -> None:
    """Write the rules file the coordinator mounts (before it starts: Trino refuses to
    start without it; when the catalog does not answer yet, only the admin reads)."""
    if settings.governance_enabled:
        from lakehouse.governance.trino_rules import write_rules

        write_rules(settings)
