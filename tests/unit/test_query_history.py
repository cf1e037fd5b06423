"""The query history (lakehouse.engines.history): bounded, atomic, shared by processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.config import Settings, load_settings
from lakehouse.engines.history import (
    TEXT_LIMIT,
    QueryHistory,
    QueryRecord,
    run_recorded,
    viewer_filter,
)
from lakehouse.errors import LakehouseError, QueryError


def _record(text: str, at: float = 1.0) -> QueryRecord:
    return QueryRecord(text=text, engine="duckdb", started_at=at, seconds=0.1, rows=1)


def test_entries_come_back_newest_first(tmp_path: Path) -> None:
    history = QueryHistory(load_settings(home=tmp_path))
    for number in range(3):
        history.record(_record(f"SELECT {number}", at=number))
    assert [e.text for e in history.entries()] == ["SELECT 2", "SELECT 1", "SELECT 0"]
    assert [e.text for e in history.entries(limit=1)] == ["SELECT 2"]


def test_only_the_newest_are_kept(tmp_path: Path) -> None:
    history = QueryHistory(load_settings(home=tmp_path), limit=5)
    for number in range(12):
        history.record(_record(f"SELECT {number}"))
    assert [e.text for e in history.entries()] == [f"SELECT {n}" for n in range(11, 6, -1)]
    assert len(history.path.read_text().splitlines()) == 5


def test_text_is_kept_exactly(tmp_path: Path) -> None:
    history = QueryHistory(load_settings(home=tmp_path))
    text = "SELECT 'naïve\n\"quoted\"', '</script>'  -- ✓\n"
    history.record(_record(text))
    assert history.entries()[0].text == text


def test_a_line_that_is_not_a_record_is_skipped(tmp_path: Path) -> None:
    history = QueryHistory(load_settings(home=tmp_path))
    history.record(_record("SELECT 1"))
    with history.path.open("a") as f:
        f.write("not json\n[1, 2]\n")
    history.record(_record("SELECT 2"))
    assert [e.text for e in history.entries()] == ["SELECT 2", "SELECT 1"]


def test_clear_removes_everything(tmp_path: Path) -> None:
    history = QueryHistory(load_settings(home=tmp_path))
    history.record(_record("SELECT 1"))
    assert history.clear() == 1 and history.entries() == []


def _record_many(home: str, prefix: str, count: int) -> None:
    history = QueryHistory(load_settings(home=Path(home)))
    for number in range(count):
        history.record(_record(f"{prefix} {number}"))


def test_two_processes_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_record_many, args=(str(tmp_path), name, 40)) for name in "ab"
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    texts = {e.text for e in QueryHistory(load_settings(home=tmp_path)).entries()}
    assert texts == {f"{name} {n}" for name in "ab" for n in range(40)}


class _Lake:
    """A stand-in for Lakehouse.sql: records what was asked, answers or raises."""

    def __init__(self, settings: Settings, answer: pa.Table | Exception) -> None:
        self.settings = settings
        self.answer = answer
        self.asked: list[tuple[str, str, dict[str, object]]] = []

    def sql(self, query: str, engine: str = "duckdb", **options: object) -> pa.Table:
        self.asked.append((query, engine, options))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_run_recorded_records_a_result(tmp_path: Path) -> None:
    lake = _Lake(load_settings(home=tmp_path), pa.table({"n": [1, 2, 3]}))
    result = run_recorded(lake, "SELECT n FROM t", "trino", as_of="5")  # type: ignore[arg-type]
    assert result.num_rows == 3
    assert lake.asked == [("SELECT n FROM t", "trino", {"as_of": "5"})]
    (entry,) = QueryHistory(lake.settings).entries()
    assert (entry.text, entry.engine, entry.rows, entry.ok) == ("SELECT n FROM t", "trino", 3, True)
    assert (entry.as_of, entry.native) == ("5", False)
    assert entry.seconds >= 0 and entry.started_at > 0


def test_run_recorded_records_an_error_with_its_hint_and_raises_it(tmp_path: Path) -> None:
    error = QueryError("duckdb", "SELEC 1", "syntax error at SELEC", hint="Check the SQL.")
    lake = _Lake(load_settings(home=tmp_path), error)
    with pytest.raises(QueryError):
        run_recorded(lake, "SELEC 1")  # type: ignore[arg-type]
    (entry,) = QueryHistory(lake.settings).entries()
    assert (entry.ok, entry.rows, entry.hint) == (False, None, "Check the SQL.")
    assert "syntax error at SELEC" in entry.error


def test_a_history_that_cannot_be_written_does_not_fail_the_query(tmp_path: Path) -> None:
    (tmp_path / "queries").write_text("a file where the directory should be")
    lake = _Lake(load_settings(home=tmp_path), pa.table({"n": [1]}))
    assert run_recorded(lake, "SELECT 1").num_rows == 1  # type: ignore[arg-type]
    with pytest.raises(LakehouseError, match="Could not record the query"):
        QueryHistory(lake.settings).record(_record("SELECT 1"))


def test_a_huge_query_is_kept_cut_and_says_so(tmp_path: Path) -> None:
    lake = _Lake(load_settings(home=tmp_path), pa.table({"n": [1]}))
    text = "SELECT 1 " + "-" * TEXT_LIMIT
    run_recorded(lake, text)  # type: ignore[arg-type]
    (entry,) = QueryHistory(lake.settings).entries()
    assert entry.text_cut and entry.text == text[:TEXT_LIMIT]


def test_records_of_an_older_version_still_read(tmp_path: Path) -> None:
    history = QueryHistory(load_settings(home=tmp_path))
    history.path.parent.mkdir(parents=True)
    history.path.write_text(
        '{"text": "SELECT 1", "engine": "duckdb", "started_at": 1.0, "seconds": 0.1, '
        '"rows": 1, "error": "", "hint": "", "retired_field": 3}\n'
    )
    (entry,) = history.entries()
    assert (entry.text, entry.as_of, entry.native) == ("SELECT 1", "", False)


def _by(principal: str, text: str, at: float) -> QueryRecord:
    return QueryRecord(text=text, engine="duckdb", started_at=at, seconds=0.1, rows=1,
                       principal=principal)  # fmt: skip


def test_each_entry_records_who_ran_it(tmp_path: Path) -> None:
    lake = _Lake(load_settings(home=tmp_path, principal="alice"), pa.table({"n": [1]}))
    run_recorded(lake, "SELECT 1")  # type: ignore[arg-type]
    run_recorded(lake, "SELECT 2", principal="bob")  # type: ignore[arg-type]
    admin = _Lake(load_settings(home=tmp_path), pa.table({"n": [1]}))
    run_recorded(admin, "SELECT 3")  # type: ignore[arg-type]
    got = [(e.text, e.principal) for e in QueryHistory(lake.settings).entries()]
    assert got == [("SELECT 3", admin.settings.governance_admin), ("SELECT 2", "bob"),
                   ("SELECT 1", "alice")]  # fmt: skip


def test_a_governed_principal_sees_and_clears_only_its_own_queries(tmp_path: Path) -> None:
    on = load_settings(home=tmp_path, governance_enabled=True)
    history = QueryHistory(on)
    history.path.parent.mkdir(parents=True)
    history.path.write_text(  # an entry of an older version: nobody's own
        '{"text": "SELECT secret FROM old", "engine": "duckdb", "started_at": 1.0, '
        '"seconds": 0.1, "rows": 1}\n'
    )
    for number, who in enumerate(("alice", "admin", "bob", "alice"), start=2):
        history.record(_by(who, f"SELECT {number} -- {who}", float(number)))
    assert viewer_filter(on, "alice") == "alice"
    mine = history.entries(only=viewer_filter(on, "alice"))
    assert [e.text for e in mine] == ["SELECT 5 -- alice", "SELECT 2 -- alice"]
    assert viewer_filter(on, on.governance_admin) is None  # the admin sees everyone's
    assert len(history.entries(only=viewer_filter(on, on.governance_admin))) == 5
    off = load_settings(home=tmp_path, governance_enabled=False)
    assert viewer_filter(off, "alice") is None  # governance off: as before
    assert history.clear(only="alice") == 2
    assert [e.principal for e in history.entries()] == ["bob", "admin", ""]
    assert history.clear() == 3 and history.entries() == []
