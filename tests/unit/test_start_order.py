"""The start scheduler of `up` (pure logic: start functions are fakes, no processes)."""

from __future__ import annotations

import threading
import time

import pytest

from lakehouse.errors import ServiceStartError
from lakehouse.runtimes.startorder import (
    OrderedSlots,
    StartCancelled,
    critical_first,
    run_in_dependency_order,
)

DEPENDS_ON = {"catalog": ["s3"], "trino": ["catalog"], "spark": ["catalog"], "aws": ["trino"]}
NAMES = ["s3", "catalog", "trino", "spark", "aws"]


def failure(name: str) -> ServiceStartError:
    return ServiceStartError(name, "exited during start-up", ["x"], "refused", "", "hint")


class Recorder:
    """Start functions that log begin/end and can be told to fail or to block."""

    def __init__(
        self, fail: frozenset[str] = frozenset(), block: frozenset[str] = frozenset()
    ) -> None:
        self.fail, self.block = fail, block
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.overlapped: set[frozenset[str]] = set()

    def __call__(self, name: str, cancelled: threading.Event) -> None:
        with self.lock:
            self.events.append(("begin", name))
            self.overlapped.update(frozenset({name, other}) for other in self.running)
            self.running.add(name)
        try:
            time.sleep(0.05)
            if name in self.fail:
                raise failure(name)
            if name in self.block:
                while not cancelled.wait(0.01):  # only cancellation ends it
                    pass
                raise StartCancelled()
        finally:
            with self.lock:
                self.running.discard(name)
                self.events.append(("end", name))

    def began(self, name: str) -> bool:
        return ("begin", name) in self.events

    def index(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


def test_each_start_waits_for_its_dependencies_and_independent_ones_overlap() -> None:
    recorder = Recorder()
    run_in_dependency_order(NAMES, DEPENDS_ON, recorder)
    for name, dependencies in DEPENDS_ON.items():
        for dependency in dependencies:
            assert recorder.index("end", dependency) < recorder.index("begin", name)
    assert frozenset({"trino", "spark"}) in recorder.overlapped
    assert frozenset({"s3", "catalog"}) not in recorder.overlapped
    assert sorted(name for kind, name in recorder.events if kind == "begin") == sorted(NAMES)


def test_a_failure_skips_its_dependents_cancels_the_rest_and_is_raised_as_it_was() -> None:
    recorder = Recorder(fail=frozenset({"trino"}), block=frozenset({"spark"}))
    with pytest.raises(ServiceStartError) as raised:
        run_in_dependency_order(NAMES, DEPENDS_ON, recorder)
    assert raised.value.service == "trino"
    assert not recorder.began("aws")  # depends on the failed one
    assert recorder.began("spark") and ("end", "spark") in recorder.events  # cancelled


def test_the_first_failure_in_start_order_wins_over_a_later_one() -> None:
    recorder = Recorder(fail=frozenset({"trino", "spark"}))
    with pytest.raises(ServiceStartError) as raised:
        run_in_dependency_order(NAMES, DEPENDS_ON, recorder)
    assert raised.value.service == "trino"


def test_dependencies_outside_the_names_are_taken_as_running() -> None:
    recorder = Recorder()
    run_in_dependency_order(["trino", "aws"], DEPENDS_ON, recorder)
    assert recorder.index("end", "trino") < recorder.index("begin", "aws")


def test_slots_are_served_strictly_in_order_and_never_to_more_than_size() -> None:
    slots = OrderedSlots(["catalog", "trino", "opensearch"], size=1)
    never = threading.Event()
    granted: list[str] = []

    def take(name: str) -> None:
        slots.acquire(name, never, 0.01)
        granted.append(name)

    early = threading.Thread(target=take, args=("opensearch",))
    early.start()
    time.sleep(0.1)
    assert granted == []  # free to start, but the catalog and Trino come first
    take("catalog")
    trino = threading.Thread(target=take, args=("trino",))
    trino.start()
    time.sleep(0.1)
    assert granted == ["catalog"]  # the only slot is held
    slots.release("catalog")
    trino.join(5)
    assert granted == ["catalog", "trino"]
    slots.release("trino")
    early.join(5)
    assert granted == ["catalog", "trino", "opensearch"]


def test_a_cancelled_wait_for_a_slot_raises() -> None:
    slots = OrderedSlots(["trino", "spark"], size=1)
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(StartCancelled):
        slots.acquire("spark", cancelled, 0.01)
    assert slots.held == set() and slots.queue == ["trino", "spark"]


def test_the_services_more_others_wait_for_take_their_turn_first() -> None:
    names = ["s3", "catalog", "opensearch", "trino", "spark", "sync", "aws", "dashboards"]
    depends_on = {
        "catalog": ["s3"], "trino": ["catalog"], "spark": ["catalog"], "aws": ["trino"],
        "dashboards": ["trino"], "sync": ["catalog", "opensearch"],
    }  # fmt: skip
    first = critical_first(names, depends_on)
    assert first[:2] == ["s3", "catalog"]
    assert first.index("trino") < first.index("opensearch") < first.index("spark")
    assert sorted(first) == sorted(names)
