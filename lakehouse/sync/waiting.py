"""`lake.sync(name)` while a follower (the sync service) holds the integration.

Only one process runs an integration at a time (a file lock). Rather than
refuse, a catch-up waits for the follower: it is done when the follower
reports a pass that started after the call and found nothing more to apply,
so every change committed before the call is in the target. Should the
follower let go meanwhile (stopped, failed), the caller takes the lock and
runs the passes itself.
"""

from __future__ import annotations

import time

from filelock import FileLock, Timeout

from lakehouse.config import Settings
from lakehouse.errors import SyncError
from lakehouse.sync.integrations import Integration
from lakehouse.sync.postgres_pipeline import PassResult
from lakehouse.sync.status import StatusStore, SyncStatus

# How long `lake.sync` waits for a follower to catch up before giving up.
FOLLOWER_WAIT_SECONDS = 300.0
CHECK_SECONDS = 0.1


def wait_for_follower(settings: Settings, integration: Integration, lock: FileLock,
                      wait_seconds: float) -> PassResult | None:  # fmt: skip
    """None with ``lock`` acquired (nobody else runs the integration), or what the
    follower applied while this waited (lock not held): the changes of its status
    since the call (the follower counts each dead letter once, so their difference
    does too). SyncError when the follower has not caught up within ``wait_seconds``.
    """
    store = StatusStore(settings)
    asked = time.time()
    before = _own(store.read(integration.name), integration)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lock.acquire(timeout=0)
            return None
        except Timeout:
            pass
        now = _own(store.read(integration.name), integration)
        if now.caught_up_from is not None and now.caught_up_from >= asked:
            snapshot_rows = now.snapshot_rows_done - before.snapshot_rows_done
            return PassResult(
                changes=now.changes_applied - before.changes_applied - snapshot_rows,
                snapshot_rows=snapshot_rows, dead_letters=now.dead_letters - before.dead_letters,
                position=now.position, lag_seconds=0.0, seconds=time.time() - asked,
            )  # fmt: skip
        if time.monotonic() > deadline:
            raise SyncError(
                f"{integration.name} is followed by process {now.pid or '?'}, which has not "
                f"caught up within {wait_seconds:.0f} s (state: {now.state}"
                f"{'; last error: ' + now.last_error if now.last_error else ''}).",
                hint="`lakehouse sync status` shows why; `lakehouse logs sync` the details.",
            )
        time.sleep(CHECK_SECONDS)


def _own(status: SyncStatus, integration: Integration) -> SyncStatus:
    """The status if this generation wrote it, else an empty one."""
    if status.generation != integration.generation:
        return SyncStatus(name=integration.name, pid=status.pid)
    return status
