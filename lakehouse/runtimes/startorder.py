"""Start services at the same time where their dependencies allow it.

Pure scheduling, no processes: :func:`run_in_dependency_order` calls a start
function per name on its own thread once every dependency named in the same
call has finished, so Trino, Spark, OpenSearch and MLflow come up side by side
once S3 and the catalog answer, instead of one after another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait


class StartCancelled(Exception):
    """Raised inside a start function when another start failed (never leaves
    :func:`run_in_dependency_order`, so no user sees it)."""


class _NotStarted(Exception):
    """A dependency failed or the run was cancelled before this one began."""


StartFunction = Callable[[str, threading.Event], None]


def run_in_dependency_order(
    names: Sequence[str], depends_on: Mapping[str, Sequence[str]], start: StartFunction
) -> None:
    """Call ``start(name, cancelled)`` for every name, each once its dependencies finished.

    ``names`` are in a valid start order (every dependency before its dependents);
    dependencies not in ``names`` are taken as already running. Names whose
    dependencies are done run at the same time, each on its own thread.

    When a start raises, ``cancelled`` is set: starts not yet begun never begin,
    and running ones are expected to stop and raise :class:`StartCancelled`. Once
    every thread has ended, the failure of the first name (in ``names`` order)
    that really failed is raised as it was. An interrupt of the caller (Ctrl-C)
    cancels the same way and is then re-raised.
    """
    cancelled = threading.Event()
    futures: dict[str, Future[None]] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="start") as pool:
        try:
            for name in names:
                before = [futures[dep] for dep in depends_on.get(name, ()) if dep in futures]
                futures[name] = pool.submit(_start_after, before, start, name, cancelled)
            wait(futures.values())
        except BaseException:
            cancelled.set()
            raise
    for future in futures.values():
        error = future.exception()
        if error is not None and not isinstance(error, (_NotStarted, StartCancelled)):
            raise error


def _start_after(
    before: list[Future[None]], start: StartFunction, name: str, cancelled: threading.Event
) -> None:
    for dependency in before:
        if dependency.exception() is not None:  # waits for it to finish
            raise _NotStarted(name)
    if cancelled.is_set():
        raise _NotStarted(name)
    try:
        start(name, cancelled)
    except BaseException:
        cancelled.set()  # the others stop now, not once they are ready
        raise


def critical_first(names: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    """``names``, those more services wait for (directly or not) first, else in order.

    Where JVMs take turns, Trino (which the aws service and the dashboards wait
    for) goes before OpenSearch (which only the sync worker waits for).
    """
    dependents: dict[str, set[str]] = {name: set() for name in names}
    for name in reversed(names):  # a dependent comes after what it depends on
        for dependency in depends_on.get(name, ()):
            if dependency in dependents:
                dependents[dependency] |= {name, *dependents[name]}
    order = {name: number for number, name in enumerate(names)}
    return sorted(names, key=lambda name: (-len(dependents[name]), order[name]))


class OrderedSlots:
    """At most ``size`` holders at once, served strictly in ``order`` (each name once).

    ``up`` lets only so many JVMs start at the same time (one per two cores): a
    JVM warming up keeps about one core busy, and on two cores Trino starting
    beside OpenSearch, under other load, missed its 90 s start-up timeout (it
    needs about 37 s alone); Python services start beside them all the same.
    Strict order: OpenSearch, free to start at once, took the one slot while the
    catalog waited for S3, and everything behind the catalog waited 40 s more.
    """

    def __init__(self, order: Sequence[str], size: int) -> None:
        self.queue = list(order)  # not served yet; a dependency comes before its dependents
        self.size = max(1, size)
        self.held: set[str] = set()
        self.changed = threading.Condition()

    def acquire(self, name: str, cancelled: threading.Event, poll_seconds: float) -> None:
        """Block until it is ``name``'s turn and a slot is free (StartCancelled once
        ``cancelled`` is set: a start failed, so one ahead may never come)."""
        with self.changed:
            while len(self.held) >= self.size or self.queue[0] != name:
                if cancelled.is_set():
                    raise StartCancelled()
                self.changed.wait(poll_seconds)
            self.queue.pop(0)
            self.held.add(name)

    def release(self, name: str) -> None:
        with self.changed:
            self.held.discard(name)
            self.changed.notify_all()


class StartBoard:
    """The one status line of ``up``: the services not ready yet."""

    def __init__(self, names: list[str], show: Callable[[str], object]) -> None:
        self.waiting = dict.fromkeys(names)
        self.show = show
        self.lock = threading.Lock()  # services report from their own threads
        show(f"Waiting for {', '.join(self.waiting)}...")

    def ready(self, name: str) -> None:
        with self.lock:
            self.waiting.pop(name, None)
            self.show(f"Waiting for {', '.join(self.waiting) or 'nothing'}...")
