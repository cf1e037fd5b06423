"""Which files of a failed commit are deleted: only those surely referenced by nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException
from pyiceberg.io import FileIO, InputFile, OutputFile

from lakehouse.lake.attempt import (
    CONFLICTS,
    RecordingIO,
    discard_uncommitted,
    discarding_on_failure,
    retry_conflicts,
)


class MemoryIO(FileIO):
    """Pure bookkeeping: what was opened for writing and what was deleted."""

    def __init__(self) -> None:
        super().__init__({})
        self.deleted: list[str] = []

    def new_input(self, location: str) -> InputFile:
        raise NotImplementedError

    def new_output(self, location: str) -> OutputFile:
        return None  # type: ignore[return-value]

    def delete(self, location: str | InputFile | OutputFile) -> None:
        self.deleted.append(str(location))


class Metadata:
    def __init__(self, ids: set[int]) -> None:
        self.ids = ids

    def snapshot_by_id(self, snapshot_id: int) -> Any:
        return object() if snapshot_id in self.ids else None


class Catalog:
    """Answers load_table with a table holding ``ids``, or raises ``error``."""

    def __init__(self, ids: set[int] = frozenset(), error: Exception | None = None) -> None:  # type: ignore[assignment]
        self.ids, self.error = set(ids), error

    def load_table(self, identifier: Any) -> Any:
        if self.error is not None:
            raise self.error
        table = type("T", (), {})()
        table.metadata = Metadata(self.ids)
        return table


def written(*paths: str) -> tuple[MemoryIO, RecordingIO]:
    inner = MemoryIO()
    recorder = RecordingIO(inner)
    for path in paths:
        recorder.new_output(path)
    return inner, recorder


FILES = ("s3://w/t/data/a.parquet", "s3://w/t/metadata/m.avro")


@pytest.mark.parametrize("error", [CommitFailedException("409"), *[c("x") for c in CONFLICTS[1:]]])
def test_a_refused_commit_deletes_every_file_it_wrote(error: Exception) -> None:
    inner, recorder = written(*FILES)
    discard_uncommitted(Catalog(), "ns.t", recorder, {7}, error)  # type: ignore[arg-type]
    assert inner.deleted == list(FILES)


def test_a_failure_before_any_snapshot_was_staged_deletes_the_files() -> None:
    inner, recorder = written(*FILES)
    discard_uncommitted(Catalog(), "ns.t", recorder, set(), OSError("S3 write failed"))  # type: ignore[arg-type]
    assert inner.deleted == list(FILES)


def test_an_unknown_outcome_that_did_not_land_deletes_the_files() -> None:
    inner, recorder = written(*FILES)
    error = CommitStateUnknownException("502")
    discard_uncommitted(Catalog({1, 2}), "ns.t", recorder, {7}, error)  # type: ignore[arg-type]
    assert inner.deleted == list(FILES)


def test_an_unknown_outcome_that_landed_keeps_the_files() -> None:
    inner, recorder = written(*FILES)
    error = requests.ConnectionError("reset")
    discard_uncommitted(Catalog({7}), "ns.t", recorder, {7}, error)  # type: ignore[arg-type]
    assert inner.deleted == []
    assert not getattr(error, "__notes__", [])


@pytest.mark.parametrize(("landed", "raised"), [({7}, False), ({1, 2}, True)])
def test_a_lost_answer_to_a_commit_that_landed_is_a_success_not_an_error(
    monkeypatch: pytest.MonkeyPatch, landed: set[int], raised: bool
) -> None:
    # Raising after the commit landed would make the caller retry and write twice.
    monkeypatch.setattr("lakehouse.lake.attempt._staged_snapshots", lambda tx: {7})
    inner, recorder = written(*FILES)
    outcome = "returned"
    try:
        with discarding_on_failure(Catalog(landed), "ns.t", recorder, None):  # type: ignore[arg-type]
            raise requests.ConnectionError("reset after the catalog committed")
    except requests.ConnectionError:
        outcome = "raised"
    assert outcome == ("raised" if raised else "returned")
    assert inner.deleted == ([] if not raised else list(FILES))


@pytest.mark.parametrize(
    ("catalog", "error"),
    [
        (Catalog(error=requests.ConnectionError("refused")), requests.ConnectionError("reset")),
        (Catalog(set()), requests.ReadTimeout("no answer")),  # may still land
    ],
)
def test_when_the_outcome_cannot_be_known_the_files_stay_and_the_error_says_so(
    catalog: Catalog, error: Exception
) -> None:
    inner, recorder = written(*FILES)
    discard_uncommitted(catalog, "ns.t", recorder, {7}, error)  # type: ignore[arg-type]
    assert inner.deleted == []
    assert "2 file(s)" in error.__notes__[0] and FILES[0] in error.__notes__[0]


def test_conflicts_are_retried_then_raised_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lakehouse.lake.attempt.time.sleep", lambda seconds: None)
    calls = []

    def always_conflicting() -> None:
        calls.append(1)
        raise CommitFailedException("branch main has changed")

    with pytest.raises(CommitFailedException) as raised:
        retry_conflicts(always_conflicting, tries=3)
    assert len(calls) == 3 and "3 times" in raised.value.__notes__[0]
    outcomes = iter([CommitFailedException("lost"), "landed"])

    def second_time_lucky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry_conflicts(second_time_lucky) == "landed"
