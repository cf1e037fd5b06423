"""Stop services at the same time where their dependencies allow it.

Pure scheduling, no processes: :func:`stop_in_reverse_order` calls a stop
function per name on its own thread once every name that depends on it has
stopped, so PostgreSQL, OpenSearch and the JVMs stop side by side while S3,
which they all use, stops last. One after another, ``down`` waited for the sum
of the stops (SeaweedFS alone takes about 2 s); now it waits for the longest
chain of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait


def stop_in_reverse_order(
    names: Sequence[str], depends_on: Mapping[str, Sequence[str]], stop: Callable[[str], bool]
) -> list[str]:
    """Call ``stop(name)`` for every name, each once every name that depends on it
    (directly) has finished stopping; the names whose ``stop`` returned True, in
    ``names`` order.

    ``names`` are in a valid stop order (every dependent before what it depends on);
    ``depends_on`` maps a name to the names it needs, names not in ``names`` are
    ignored. Names nothing waits for anymore stop at the same time, each on its own
    thread. A stop that raises does not hold the others back (a dependency still
    stops once its dependents have finished, failed or not): every stop is
    attempted, then the first failure in ``names`` order is raised as it was.
    """
    dependents: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for dependency in depends_on.get(name, ()):
            if dependency in dependents and dependency != name:
                dependents[dependency].append(name)
    futures: dict[str, Future[bool]] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="stop") as pool:
        for name in names:
            if late := [dependent for dependent in dependents[name] if dependent not in futures]:
                raise ValueError(f"{name} comes before {', '.join(late)}, which depend on it")
            before = [futures[dependent] for dependent in dependents[name]]
            futures[name] = pool.submit(_stop_after, before, stop, name)
        wait(futures.values())
    for future in futures.values():
        error = future.exception()
        if error is not None:
            raise error
    return [name for name in names if futures[name].result()]


def _stop_after(before: list[Future[bool]], stop: Callable[[str], bool], name: str) -> bool:
    wait(before)  # a dependent that failed to stop is not waited for twice
    return stop(name)
