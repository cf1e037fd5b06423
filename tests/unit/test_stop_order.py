"""`down`'s scheduling: a service stops after those depending on it, side by side
with those unrelated to it, and every stop is attempted."""

from __future__ import annotations

import threading

import pytest

from lakehouse.runtimes.stoporder import stop_in_reverse_order

# The stack's shape: sync needs catalog, postgres and opensearch; catalog needs s3.
DEPENDS_ON = {
    "s3": (),
    "catalog": ("s3",),
    "postgres": (),
    "opensearch": (),
    "trino": ("catalog",),
    "sync": ("catalog", "postgres", "opensearch"),
}
STOP_ORDER = ["sync", "trino", "opensearch", "postgres", "catalog", "s3"]


class Recorder:
    """A stop function that records when each stop began and ended."""

    def __init__(self, fail: str | None = None, not_running: str | None = None) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.fail, self.not_running = fail, not_running

    def __call__(self, name: str) -> bool:
        with self.lock:
            self.events.append(("begin", name))
        if name in ("sync", "trino"):  # slow to stop, as real ones are: an early start shows
            threading.Event().wait(0.2)
        if name == self.fail:
            with self.lock:
                self.events.append(("end", name))
            raise OSError(f"cannot stop {name}")
        with self.lock:
            self.events.append(("end", name))
        return name != self.not_running

    def at(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


def test_each_stops_only_after_every_service_depending_on_it_ended() -> None:
    recorder = Recorder(not_running="postgres")
    stopped = stop_in_reverse_order(STOP_ORDER, DEPENDS_ON, recorder)
    assert stopped == ["sync", "trino", "opensearch", "catalog", "s3"]  # postgres was not up
    for name, needs in DEPENDS_ON.items():
        for dependency in needs:
            assert recorder.at("end", name) < recorder.at("begin", dependency), recorder.events


def test_services_nothing_waits_for_stop_at_the_same_time() -> None:
    # Each of the two waits until the other has begun: one after another, it times out.
    both = threading.Barrier(2, timeout=10)

    def stop(name: str) -> bool:
        both.wait()
        return True

    assert stop_in_reverse_order(["postgres", "opensearch"], DEPENDS_ON, stop) == [
        "postgres",
        "opensearch",
    ]


def test_a_failed_stop_still_lets_every_other_stop_and_is_raised_after() -> None:
    recorder = Recorder(fail="sync")
    with pytest.raises(OSError, match="cannot stop sync"):
        stop_in_reverse_order(STOP_ORDER, DEPENDS_ON, recorder)
    assert {name for kind, name in recorder.events if kind == "end"} == set(STOP_ORDER)
    assert recorder.at("end", "sync") < recorder.at("begin", "catalog")


def test_a_subset_ignores_dependencies_outside_it() -> None:
    recorder = Recorder()
    assert stop_in_reverse_order(["catalog"], DEPENDS_ON, recorder) == ["catalog"]


def test_an_order_with_a_dependency_before_its_dependent_is_refused() -> None:
    with pytest.raises(ValueError, match="s3 comes before catalog"):
        stop_in_reverse_order(["s3", "catalog"], DEPENDS_ON, Recorder())
