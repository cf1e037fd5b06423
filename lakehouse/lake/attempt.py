"""One commit attempt: the files it writes, what is left of it when it fails, its retries.

A writer writes data files, manifests and a manifest list, then asks the
catalog to commit a snapshot naming them. When that commit does not land, the
files are referenced by nothing: orphans that cost space for ever and that no
reader can tell from data. Every file an attempt writes goes through a
``RecordingIO``, so whatever path wrote it (pyiceberg's append, the keyed
rewrite, manifest merging), ``discard_uncommitted`` knows it. It deletes them
only when the commit surely did not land:

* the attempt failed before asking the catalog, or the catalog refused the
  commit (409 CommitFailedException, a ValidationException, a table created or
  dropped meanwhile): delete;
* the outcome is unknown (5xx, connection reset, the catalog killed mid-commit):
  reload the table; delete only if none of the attempt's snapshots is in it. If
  the catalog cannot be reached, or the request may still be in flight (a read
  timeout), the files stay and the error says so (a maintenance pass removes
  orphans).

A conflict is not an error of the input: ``retry_conflicts`` re-plans the
whole write on the new table state, with backoff, a bounded number of times.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import requests
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.io import FileIO, InputFile, OutputFile
from pyiceberg.table import Table, Transaction
from pyiceberg.table.update import AddSnapshotUpdate

from lakehouse.lake.commit import LakeTransaction

log = logging.getLogger("lakehouse.lake")
T = TypeVar("T")

# Another writer won the race: the table changed, was created or dropped meanwhile.
CONFLICTS = (CommitFailedException, ValidationException, TableAlreadyExistsError, NoSuchTableError)
# Tries of one write before giving up, and the backoff between them (seconds).
COMMIT_TRIES = 12
FIRST_WAIT = 0.05
MAX_WAIT = 2.0


class RecordingIO(FileIO):
    """The table's FileIO that remembers every location opened for writing."""

    def __init__(self, inner: FileIO) -> None:
        super().__init__(inner.properties)
        self.inner = inner
        self.written: list[str] = []  # list.append is atomic: writer threads may share it

    def new_input(self, location: str) -> InputFile:
        return self.inner.new_input(location)

    def new_output(self, location: str) -> OutputFile:
        self.written.append(location)
        return self.inner.new_output(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        self.inner.delete(location)


@contextmanager
def recording(table: Table) -> Iterator[RecordingIO]:
    """``table.io`` records what it writes inside the block (the table must be this
    writer's own object: another thread using it would be recorded too)."""
    recorder = RecordingIO(table.io)
    table.io = recorder
    try:
        yield recorder
    finally:
        table.io = recorder.inner


@contextmanager
def committing(table: Table) -> Iterator[LakeTransaction]:
    """A transaction on ``table``, committed when the block ends.

    If the block or the commit raises, the files written for it are removed when
    the commit surely did not land (see ``discard_uncommitted``), and the error
    is re-raised: CommitFailedException and the other ``CONFLICTS`` mean retry.
    """
    with recording(table) as recorder:
        tx = LakeTransaction(table)
        with discarding_on_failure(table.catalog, table.name(), recorder, tx):
            yield tx
            tx.commit_transaction()


@contextmanager
def discarding_on_failure(
    catalog: Catalog, identifier: str | tuple[str, ...], recorder: RecordingIO, tx: Transaction
) -> Iterator[None]:
    """Run the block; if it raises, ``discard_uncommitted`` the files it wrote."""
    try:
        yield
    except BaseException as exc:
        landed = discard_uncommitted(catalog, identifier, recorder, _staged_snapshots(tx), exc)
        if landed and isinstance(exc, Exception):
            # The error came after the catalog had taken the commit (a lost answer):
            # the write is done. Raising would invite a retry that writes it twice.
            log.warning("the commit's answer was lost (%s), but the table holds its "
                        "snapshot: the write landed", type(exc).__name__)  # fmt: skip
            return
        raise


def discard_uncommitted(
    catalog: Catalog,
    identifier: str | tuple[str, ...],
    recorder: RecordingIO,
    snapshot_ids: set[int],
    error: BaseException,
) -> bool:
    """Delete the files ``recorder`` saw written unless the commit may have landed.

    ``snapshot_ids`` are the snapshots the attempt staged and ``error`` what it
    raised. Files kept because the outcome cannot be known are logged and noted
    on ``error`` (``add_note``), with their count and where they are. Returns
    True when the table holds one of ``snapshot_ids``: the commit landed.
    """
    if not recorder.written and not snapshot_ids:
        return False
    reason = _reason_to_keep(catalog, identifier, snapshot_ids, error)
    if reason == "committed":
        return True
    if reason is None:
        _delete_all(recorder)
    else:
        note = (f"{len(recorder.written)} file(s) this write left (e.g. {recorder.written[0]}) "
                f"were kept: {reason}; removing orphan files later deletes them.")  # fmt: skip
        log.warning(note)
        error.add_note(note)
    return False


def _reason_to_keep(
    catalog: Catalog, identifier: str | tuple[str, ...], snapshot_ids: set[int],
    error: BaseException,
) -> str | None:  # fmt: skip
    """None when the attempt's files are surely unreferenced; else why they stay
    ("committed" when the commit landed after all)."""
    if isinstance(error, CONFLICTS) or not snapshot_ids:
        return None  # refused by the catalog, or failed before asking it
    if isinstance(error, requests.ReadTimeout):
        return "the catalog did not answer in time, so the commit may still land"
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return None
    except Exception as exc:  # any failure to ask means: cannot tell
        return f"the catalog could not be asked whether the commit landed ({type(exc).__name__})"
    if any(table.metadata.snapshot_by_id(sid) is not None for sid in snapshot_ids):
        return "committed"
    return None


def _staged_snapshots(tx: Transaction) -> set[int]:
    return {u.snapshot.snapshot_id for u in tx._updates if isinstance(u, AddSnapshotUpdate)}


def _delete_all(recorder: RecordingIO) -> None:
    left = 0
    for path in recorder.written:
        try:
            recorder.inner.delete(path)
        except FileNotFoundError:
            continue  # never created, or pyiceberg removed it already
        except OSError:
            left += 1
    if left:
        log.warning("%d file(s) of a failed commit could not be deleted (S3 unreachable?); "
                    "removing orphan files later deletes them", left)  # fmt: skip


def retry_conflicts(write: Callable[[], T], tries: int = COMMIT_TRIES) -> T:
    """``write()``, run again while it loses a race to another writer (``CONFLICTS``).

    Each run must plan from the table's state as the catalog has it then. Waits
    grow from FIRST_WAIT to MAX_WAIT seconds, jittered so racing writers spread
    out. After ``tries`` runs the last conflict is raised, with a note saying so.
    """
    for attempt in range(tries):
        try:
            return write()
        except CONFLICTS as exc:
            if attempt == tries - 1:
                exc.add_note(f"lost the race to other writers {tries} times in a row")
                raise
            wait = min(FIRST_WAIT * 2**attempt, MAX_WAIT)
            time.sleep(random.uniform(wait / 2, wait))
    raise AssertionError("unreachable")  # pragma: no cover
