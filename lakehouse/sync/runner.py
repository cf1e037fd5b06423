"""Running integrations: one catch-up run, or following them continuously.

``follow`` runs each integration in its own thread, so a stopped or retrying
integration never holds up the others. Errors that may pass (a server
restarting) are retried with exponential backoff and shown in ``sync status``;
a change the target cannot apply, or the same unexpected error three times in a
row (:mod:`lakehouse.sync.failures`), stops that integration only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout

from lakehouse.config import Settings
from lakehouse.errors import (
    ConfigError,
    LakehouseError,
    SyncError,
    SyncStoppedError,
    SyncWaitingError,
)
from lakehouse.outages import check_answering, outage_of
from lakehouse.sync import lag_history
from lakehouse.sync.admin import drop_orphan_positions, drop_source_positions, lock_path
from lakehouse.sync.counting import DeadLetterCounter
from lakehouse.sync.deadletters import DeadLetterTable
from lakehouse.sync.failures import RepeatedFailures, may_pass, stopped_error, unexpected_error
from lakehouse.sync.generations import GenerationStore
from lakehouse.sync.iceberg_expire import Retention
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.postgres_keys import check_source_keys
from lakehouse.sync.postgres_pipeline import PassResult, PostgresPipeline
from lakehouse.sync.status import (
    HEARTBEAT_SECONDS,
    StatusStore,
    StatusWriter,
    SyncStatus,
    heartbeat_path,
)
from lakehouse.sync.waiting import FOLLOWER_WAIT_SECONDS, wait_for_follower
from lakehouse.sync.worker import TracebacksOnlyForErrors as TracebacksOnlyForErrors
from lakehouse.sync.worker import configure_worker, release_free_memory
from lakehouse.sync.writers import Writer

log = logging.getLogger("lakehouse.sync")
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
# `sync run` without --follow stops after this many passes even if changes keep coming.
MAX_CATCH_UP_PASSES = 1000
SNAPSHOT_PROGRESS_SECONDS = 1.0  # a running snapshot rewrites its status at most this often
# How often the service (following every integration) drops slots of removed ones.
ORPHAN_CHECK_SECONDS = 60.0
# A followed integration: its thread, what stops it, and the generation it runs.
Followed = tuple[threading.Thread, threading.Event, str]


class Pipeline(Protocol):
    on_state: Callable[[str], None] | None
    # Commit time (epoch seconds) of the oldest change seen waiting, not yet applied.
    pending_since: float | None

    @property
    def writer(self) -> Writer: ...

    def look_at_source(self) -> None: ...

    def run_once(self) -> PassResult: ...

    def close(self) -> None: ...


def build_pipeline(settings: Settings, integration: Integration) -> Pipeline:
    """The pipeline of an integration, wired to the lake house's servers."""
    from lakehouse.lake.catalog import open_catalog
    from lakehouse.sync.writers import IcebergWriter, OpenSearchWriter

    catalog = open_catalog(settings)
    dead_letters = DeadLetterTable(catalog, Retention.of(settings))
    writer: Writer
    if integration.target == "iceberg":
        writer = IcebergWriter(catalog, integration, settings)
    else:
        from lakehouse.services.opensearch import OpenSearchService
        from lakehouse.sync.opensearch_target import OpenSearchTarget
        from lakehouse.sync.postgres_pipeline import MAX_PARALLEL_COMMITS

        # No client-side retries: the runner's own backoff reports and retries.
        # One connection per parallel commit: opensearch-py's pool holds 1 by
        # default, so the others opened a connection, used it once and dropped it
        # ("Connection pool is full, discarding connection", ~800 lines in 5 min).
        client = OpenSearchService(settings).client(
            max_retries=0, pool_maxsize=MAX_PARALLEL_COMMITS
        )
        target = OpenSearchTarget(client, integration.name, integration.generation)
        writer = OpenSearchWriter(target, integration, settings)
    batch_rows = integration.batch_rows or settings.sync_batch_rows
    if integration.source == "postgres":
        from lakehouse.sync.postgres_pipeline import PostgresPipeline
        from lakehouse.sync.postgres_source import PostgresSource

        source = PostgresSource.for_integration(settings, integration)
        return PostgresPipeline(integration, source, writer, dead_letters, batch_rows)
    from lakehouse.sync.iceberg_pipeline import IcebergToOpenSearch

    assert isinstance(writer, OpenSearchWriter)
    return IcebergToOpenSearch(integration, catalog, writer, dead_letters)


def services_of(integration: Integration) -> tuple[list[str], list[str], list[str]]:
    """(services the source needs, services a pass cannot start without, every service
    whose outage may fail a pass). Dead letters live in the lake, so catalog and S3 may
    fail any pass.
    """
    source = ["postgres"] if integration.source == "postgres" else ["catalog", "s3"]
    needed = [*source]
    if "catalog" not in needed:
        needed.append("catalog")
    if "iceberg" in (integration.source, integration.target):
        needed.append("s3")
    if integration.target == "opensearch":
        needed.append("opensearch")
    return source, needed, [*needed, *(s for s in ("catalog", "s3") if s not in needed)]


def error_line(exc: BaseException) -> str:
    """``exc`` as one line for ``sync status``: a lakehouse error's message and its hint."""
    if isinstance(exc, LakehouseError):
        text = exc.message + (f" Hint: {exc.hint}" if exc.hint else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:2000]


def catch_up(settings: Settings, integration: Integration,
             wait_seconds: float = FOLLOWER_WAIT_SECONDS) -> PassResult:  # fmt: skip
    """What `lakehouse sync run NAME` does: passes until caught up.

    When a follower (the sync service) runs the integration, waits up to
    ``wait_seconds`` for it to finish a pass that started after this call and
    found nothing more to apply (SyncError past that): see
    :func:`lakehouse.sync.waiting.wait_for_follower`.
    """
    runner = IntegrationRunner(settings, integration)
    try:
        return runner.catch_up(wait_seconds)
    finally:
        runner.close()


class IntegrationRunner:
    """Runs one integration and reports every pass in its status file."""

    def __init__(self, settings: Settings, integration: Integration) -> None:
        self.settings = settings
        self.integration = integration
        self.store = StatusStore(settings)
        self._writer = StatusWriter(self.store)
        previous = self.store.read(integration.name)
        if previous.generation != integration.generation:  # another incarnation's report
            previous = SyncStatus(name=integration.name)
        self.status = SyncStatus(name=integration.name, generation=integration.generation,
                                 generation_started=time.time())  # fmt: skip
        self._adopt(previous)
        self._pipeline: Pipeline | None = None
        self._letters = DeadLetterCounter(settings)
        self._batch_seconds = integration.batch_seconds or settings.sync_poll_seconds
        self._source_needs, self._needed, self._suspects = services_of(integration)
        self._failures = 0  # passes failed in a row
        self._repeats = RepeatedFailures()  # the same unexpected failure in a row
        self._pending_since: float | None = None

    def _adopt(self, stored: SyncStatus) -> None:
        """Continue the counts of this generation's stored status. Call holding the lock
        (or at creation): another process may have run passes since this one started."""
        if stored.generation != self.integration.generation:
            return
        for name in ("position", "changes_applied", "dead_letters", "caught_up_from"):
            setattr(self.status, name, getattr(stored, name))
        self.status.snapshot_rows = stored.snapshot_rows_done  # not a killed snapshot's rows
        started = [t for t in (stored.generation_started, self.status.generation_started) if t]
        self.status.generation_started = min(started, default=None)

    def _took_lock(self) -> None:
        """Adopt what the previous holder reported, and recount the dead letters: a pass
        killed after recording them never reported them."""
        self._adopt(self.store.read(self.integration.name))
        self._letters.due = True

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            if self.integration.source == "postgres":  # before anything is published
                dsn = self.settings.postgres_dsn(self.integration.database_name(self.settings))
                check_source_keys(dsn, self.integration)
            self._pipeline = build_pipeline(self.settings, self.integration)
            self._pipeline.on_state = self._set_state
            if isinstance(self._pipeline, PostgresPipeline):
                self._pipeline.on_snapshot_rows = self._snapshot_progress
        return self._pipeline

    def close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.close()
            except Exception:
                log.debug("closing %s failed", self.integration.name, exc_info=True)
            self._pipeline = None

    def _set_state(self, state: str) -> None:
        if self._failures and state in ("snapshotting", "streaming"):
            return  # a pass after failures is not streaming until it commits
        if self.status.state != state:
            self.status.state = state
            self._writer.write(self.status)

    def _snapshot_progress(self, rows: int) -> None:
        """A running snapshot's rows so far, shown at most every second (the status
        would otherwise go stale, 'not running', through a long snapshot)."""
        if time.time() - self.status.updated_at >= SNAPSHOT_PROGRESS_SECONDS:
            shown = replace(self.status, state="snapshotting", snapshot_rows_read=rows)
            shown.snapshot_rows += rows
            self._writer.write(shown)
            self.status.updated_at = shown.updated_at

    def run_pass(self) -> PassResult:
        """One pass; a service down before or during it is a ServiceUnavailableError."""
        tried = f"the sync pass of {self.integration.name}"
        started = time.time()
        try:
            check_answering(self.settings, tried, self._source_needs)
            pipeline = self.pipeline()
            pipeline.look_at_source()  # what waits is known even when the target is down
            check_answering(self.settings, tried, self._needed)
            result = pipeline.run_once()
        except Exception as exc:
            outage = outage_of(self.settings, exc, tried, self._suspects)
            if outage is None:
                raise
            raise outage from exc
        self._failures = 0
        self._repeats.clear()
        self._pending_since = None
        self.status.state = "idle" if result.caught_up else "streaming"
        self.status.position = result.position or self.status.position
        self.status.changes_applied += result.changes + result.snapshot_rows
        self.status.snapshot_rows += result.snapshot_rows
        result.dead_letters = self._letters.added(self.status, result.dead_letters)
        if result.lag_seconds is not None or result.caught_up:
            self.status.lag_seconds = result.lag_seconds if not result.caught_up else 0.0
        work = result.changes + result.snapshot_rows
        self.status.rows_per_second = work / result.seconds if result.seconds and work else 0.0
        self.status.last_error = ""
        if result.caught_up:
            self.status.caught_up_from = started
        self._writer.write(self.status)
        lag_history.record_pass(self.settings, result, self.status)  # the console's lag chart
        return result

    def _lock(self) -> FileLock:
        path = Path(lock_path(self.settings, self.integration.name))
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path)

    def catch_up(self, wait_seconds: float = FOLLOWER_WAIT_SECONDS) -> PassResult:
        """Passes until the target has every change committed so far (by this process,
        or by the follower that holds the integration)."""
        lock = self._lock()
        waited = wait_for_follower(self.settings, self.integration, lock, wait_seconds)
        if waited is not None:
            return waited
        try:
            self._took_lock()
            with self._writer.kept_fresh():
                return self._catch_up()
        finally:
            lock.release()

    def superseded(self) -> bool:
        """Whether this runner's generation is no longer the integration's (deleted,
        reset or created again)."""
        current = GenerationStore(self.settings).current(self.integration.name)
        return current != self.integration.generation

    def retire(self) -> None:
        """Drop what this generation left in the source (its slot and publication, which
        a pass may have created again) and its status. Call holding the lock."""
        name = self.integration.name
        if self.integration.source == "postgres":
            from lakehouse.sync.postgres_source import PostgresSource

            source = PostgresSource.for_integration(self.settings, self.integration)
            try:
                source.drop()
            except Exception as exc:  # PostgreSQL down: the next generation's start drops it
                log.warning("%s: dropping slot %s failed: %s", name, source.slot, exc)
            finally:
                source.close()
        if self.store.read(name).generation == self.integration.generation:
            self.store.remove(name)
        if GenerationStore(self.settings).current(name) is None:  # deleted, not renewed
            Path(lock_path(self.settings, name)).unlink(missing_ok=True)

    def _catch_up(self) -> PassResult:
        total = PassResult()
        try:
            for _ in range(MAX_CATCH_UP_PASSES):
                result = self.run_pass()
                total.changes += result.changes
                total.snapshot_rows += result.snapshot_rows
                total.dead_letters += result.dead_letters
                total.position = result.position or total.position
                if result.caught_up:
                    break
        except LakehouseError as exc:
            self._record_error(exc, "failed" if isinstance(exc, SyncStoppedError) else "retrying")
            raise
        except Exception as exc:
            if not may_pass(exc):  # not an I/O failure: say so, and where it was raised
                error = unexpected_error(self.integration.name, exc)
                self._record_error(error, "retrying")
                raise error from exc
            self._record_error(exc, "retrying")  # a server went away mid-pass
            raise SyncError(
                f"{self.integration.name}: {type(exc).__name__}: {exc}",
                hint="A server it needs may be down: check `lakehouse status`, then run it "
                "again. Nothing after the last committed position was applied.",
            ) from exc
        return total

    def follow(self, stop: threading.Event) -> None:
        """Apply changes until ``stop``; waits while another process follows it."""
        lock = self._lock()
        while not stop.is_set():
            try:
                lock.acquire(timeout=HEARTBEAT_SECONDS)
                break
            except Timeout:
                continue
        else:
            return
        try:
            self._took_lock()
            with self._writer.kept_fresh():
                self._follow(stop)
            if self.superseded():
                self.retire()
        finally:
            lock.release()

    def _follow(self, stop: threading.Event) -> None:
        backoff, name = BACKOFF_START, self.integration.name
        self._drop_older_generations()
        while not stop.is_set() and not self.superseded():
            try:
                result = self.run_pass()
                backoff = BACKOFF_START
                if result.caught_up and result.changes + result.snapshot_rows:
                    release_free_memory()
                if result.caught_up:
                    # Passes start at most every batch_seconds: a pass that took that
                    # long already gathered the next batch, so it starts at once.
                    stop.wait(max(0.0, self._batch_seconds - result.seconds))
            except SyncStoppedError as exc:
                self._stop(exc, exc)
                return
            except Exception as exc:
                if self._repeats.gives_up(exc):
                    self._stop(stopped_error(name, exc, self._repeats.count), exc)
                    return
                shown = exc if may_pass(exc) else unexpected_error(name, exc, self._repeats.count)
                self._record_error(
                    shown, "waiting" if isinstance(exc, SyncWaitingError) else "retrying"
                )
                log.warning("%s: attempt %d failed, retrying in %.1f s: %s", self.integration.name,
                            self._failures, backoff, self.status.last_error)  # fmt: skip
                log.debug("%s: attempt %d", self.integration.name, self._failures, exc_info=True)
                self.close()  # reconnect everything on the next pass
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        self.close()
        if not self.superseded():
            self._set_state("stopped")

    def _stop(self, error: SyncStoppedError, cause: BaseException) -> None:
        """Stop following: state ``failed`` with ``error`` until a reset or a restart."""
        self._record_error(error, "failed")
        log.error("%s stopped: %s", self.integration.name, error, exc_info=cause)
        self.close()

    def _drop_older_generations(self) -> None:
        """Slots and publications of this name's earlier generations hold WAL for no one."""
        if self.integration.source != "postgres":
            return
        try:
            drop_source_positions(self.settings, self.integration, self.integration.slot_name())
        except Exception as exc:  # PostgreSQL down: the pass reports it
            log.debug("%s: dropping older slots failed: %s", self.integration.name, exc)

    def _record_error(self, exc: BaseException, state: str) -> None:
        """Report a failed pass; the lag is the age of the oldest change known to wait
        (None, unknown, when the pass failed before it could look)."""
        self._failures += 1
        seen = getattr(self._pipeline, "pending_since", None)
        if seen is not None:
            self._pending_since = min(self._pending_since or seen, seen)
        waited = None if self._pending_since is None else time.time() - self._pending_since
        self.status.lag_seconds = None if waited is None else max(waited, 0.0)
        self.status.state = state
        self.status.last_error = error_line(exc)
        self.status.last_error_at = time.time()
        self._writer.write(self.status)


def follow(settings: Settings, names: list[str] | None, stop: threading.Event) -> None:
    """Follow integrations until ``stop`` is set, one thread each.

    With ``names`` None, every declared integration is followed. Within a poll
    (``sync_poll_seconds``, at most half a heartbeat) a created one starts, a
    deleted, reset or paused one is let go after its current pass, and a
    reset one starts again as its new generation. A thread whose generation
    is gone drops its own slot and publication (see IntegrationRunner.retire).
    Declarations that cannot be read (a lakehouse.toml edited into an invalid
    one) raise ConfigError at the first poll; later, the integrations running go
    on as they were, and the error is logged once.
    """
    configure_worker()
    heartbeat = heartbeat_path(settings)
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    poll = min(settings.sync_poll_seconds, HEARTBEAT_SECONDS / 2)
    running: dict[str, Followed] = {}
    orphans_checked, refused = 0.0, None  # refused: the declaration error last logged
    while not stop.is_set():
        try:
            _follow_poll(settings, names, running)
            refused = ""
        except ConfigError as exc:  # lakehouse.toml broken: loud at start, then survived
            if refused is None:
                raise
            if str(exc) != refused:
                log.error("the integrations cannot be read; those running go on: %s", exc)
            refused = str(exc)
        if names is None and time.monotonic() - orphans_checked > ORPHAN_CHECK_SECONDS:
            orphans_checked = time.monotonic()
            _drop_orphans(settings)
        heartbeat.write_text(str(time.time()))
        stop.wait(poll)
    for thread, own_stop, _ in running.values():
        own_stop.set()
        thread.join(timeout=30)


def _drop_orphans(settings: Settings) -> None:
    """Slots of integrations removed while no follower ran (admin.drop_orphan_positions)."""
    try:
        for line in drop_orphan_positions(settings, IntegrationStore(settings).all().values()):
            log.warning("%s: its integration is no longer declared", line)
    except Exception as exc:  # PostgreSQL down: the next check retries
        log.debug("dropping orphan slots failed: %s", exc)


def _follow_poll(settings: Settings, names: list[str] | None,
                 running: dict[str, Followed]) -> None:  # fmt: skip
    declared = IntegrationStore(settings).all()
    generations = GenerationStore(settings)
    for name in set(running) - set(declared):
        generations.forget(name)  # removed from lakehouse.toml: its thread retires
    wanted = {n: i for n, i in declared.items()
              if (names is None or n in names) and not generations.paused(n)}  # fmt: skip
    for name in list(running):
        if name not in wanted or wanted[name].generation != running[name][2]:
            running.pop(name)[1].set()
    for name, integration in wanted.items():
        if name not in running or _reset_since_failure(settings, running, name):
            running[name] = _start(settings, integration)


def _reset_since_failure(settings: Settings, running: dict[str, Followed],
                         name: str) -> bool:  # fmt: skip
    """A failed integration stays down until `lakehouse sync reset` clears its status."""
    return not running[name][0].is_alive() and StatusStore(settings).read(name).state != "failed"


def _start(settings: Settings, integration: Integration) -> Followed:
    own_stop = threading.Event()
    runner = IntegrationRunner(settings, integration)
    thread = threading.Thread(
        target=runner.follow, args=(own_stop,), name=f"sync-{integration.name}", daemon=True
    )
    thread.start()
    return thread, own_stop, integration.generation
