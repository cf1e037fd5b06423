"""When a follower stops retrying: the same unexpected error, pass after pass.

A follower retries a failed pass for ever when the failure may pass: a server
that is down or restarting (an outage, or a connection that broke), or one of
lakehouse's own errors, which say what to fix and succeed once it is fixed.
Any other exception is unexpected (a table property no writer can read, a bug).
Retried as it was, it failed the same way every few seconds for ever and showed
raw in `sync status`. Now, after MAX_IDENTICAL_FAILURES in a row, the integration
stops (state ``failed``) with a message saying what was tried, the exception and
where to look, until `lakehouse sync reset NAME` or a restart of the follower.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from pyiceberg import exceptions as iceberg_errors

from lakehouse.errors import LakehouseError, SyncError, SyncStoppedError
from lakehouse.outages import is_io_error
from lakehouse.services.sync import LOG_FILE_VARIABLE

# Identical unexpected failures in a row after which a follower stops: one could be a
# fluke (a race with another writer), three the same way from the same line will not
# pass by waiting; more only fills the log and delays the message that says so.
MAX_IDENTICAL_FAILURES = 3
# Where a failure was raised, shown relative to this package's parent (lakehouse/...).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

Fingerprint = tuple[str, str, int]
# Client errors that say the server is busy, restarting or in a state that passes, not
# that the request is wrong: PostgreSQL's operational errors (a slot still active for a
# killed follower's backend, a shutdown, a deadlock, a cancelled statement), a broken
# connection, and the catalog's 5xx, 429 and commit conflicts.
TRANSIENT = (
    psycopg.OperationalError, psycopg.InterfaceError,
    iceberg_errors.ServerError, iceberg_errors.ServiceUnavailableError,
    iceberg_errors.TooManyRequestsError, iceberg_errors.CommitFailedException,
    iceberg_errors.CommitStateUnknownException, iceberg_errors.WaitingForLockException,
)  # fmt: skip


def may_pass(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may succeed: lakehouse's own errors (outages among them),
    a client's I/O failure and a server's passing state (TRANSIENT, also as the cause)
    are retried for ever; anything else is unexpected."""
    if isinstance(exc, LakehouseError) or is_io_error(exc):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def fingerprint(exc: BaseException) -> Fingerprint:
    """What makes two failures the same: the exception's type and the line that raised
    it (its text may differ, e.g. by the row it was about)."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = (frame.tb_frame.f_code.co_filename, frame.tb_lineno) if frame else ("", 0)
    return f"{type(exc).__module__}.{type(exc).__qualname__}", *where


def raised_at(exc: BaseException) -> str:
    """``lakehouse/lake/rewrite.py:394``: the line that raised ``exc`` (or '')."""
    _, path, line = fingerprint(exc)
    if not path:
        return ""
    shown = Path(path)
    if shown.is_relative_to(PACKAGE_ROOT):
        shown = shown.relative_to(PACKAGE_ROOT)
    return f"{shown}:{line}"


class RepeatedFailures:
    """Counts the same unexpected failure in a row; anything else starts the count over."""

    def __init__(self, limit: int = MAX_IDENTICAL_FAILURES) -> None:
        self.limit = limit
        self.count = 0
        self._last: Fingerprint | None = None

    def gives_up(self, exc: BaseException) -> bool:
        """Note a failed pass; True when it is the ``limit``-th identical unexpected one."""
        if may_pass(exc):
            self.clear()
            return False
        seen = fingerprint(exc)
        self.count = self.count + 1 if seen == self._last else 1
        self._last = seen
        return self.count >= self.limit

    def clear(self) -> None:
        """A pass succeeded (or failed in a way that may pass)."""
        self.count = 0
        self._last = None


def _described(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    at = raised_at(exc)
    return f"{type(exc).__name__}: {text}" + (f" (raised at {at})" if at else "")


def _log_hint() -> str:
    path = os.environ.get(LOG_FILE_VARIABLE)
    where = f"{path} (`lakehouse logs sync`)" if path else "the follower's output"
    return f"The traceback is in {where}."


def unexpected_error(name: str, exc: BaseException, attempt: int | None = None) -> SyncError:
    """An unexpected failure of a pass of ``name``, as `sync status` shows it: the
    ``attempt``-th in a row of a follower, or (None) of a single run."""
    if attempt is None:
        return SyncError(
            f"The sync pass of {name} failed with an unexpected {_described(exc)}; nothing "
            "after the last committed position was applied.",
            hint=f"`lakehouse --verbose sync run {name}` shows the traceback. A server "
            "restarting can cause this; if it repeats, fix the cause or report it as a bug "
            "in lakehouse with the traceback.",
        )
    return SyncError(
        f"The sync pass of {name} failed with an unexpected {_described(exc)}; attempt "
        f"{attempt} of {MAX_IDENTICAL_FAILURES} before it stops retrying.",
        hint=f"{_log_hint()} A server restarting can cause this; if it repeats, fix the "
        "cause or report it as a bug in lakehouse with the traceback.",
    )


def stopped_error(name: str, exc: BaseException, count: int) -> SyncStoppedError:
    """Why a follower stopped retrying ``name`` after ``count`` identical failures."""
    return SyncStoppedError(
        f"The sync pass of {name} failed {count} times in a row with the same unexpected "
        f"{_described(exc)}; it stopped retrying.",
        hint=f"{_log_hint()} Fix the cause (or report it as a bug in lakehouse with the "
        f"traceback), then `lakehouse sync reset {name}` (it snapshots again) or restart "
        "the sync service (`lakehouse down --services sync`, then `lakehouse up`) to try "
        "again.",
    )
