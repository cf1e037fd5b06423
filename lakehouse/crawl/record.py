"""The crawl record: every file already added to a table, every run and its report.

A SQLite database under the home (``<home>/crawl/record.sqlite``), written in
transactions, so a kill at any moment leaves it whole. A batch of files is
written as *pending* before its commit, with the batch id the commit carries in
its snapshot summary (``lakehouse.crawl.batch``); it becomes *added* after the
commit landed. A crawl that finds a pending batch (the last one was killed
between commit and record) looks for the batch id in the table's snapshots:
found, the files are added; not found, the batch never landed and its files
are crawled again. So no file is ever added twice nor lost.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakehouse.config import Settings

BATCH_PROPERTY = "lakehouse.crawl.batch"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, crawler TEXT NOT NULL, path TEXT,
    started REAL NOT NULL, finished REAL, state TEXT NOT NULL, report TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS runs_by_crawler ON runs (crawler, started);
CREATE TABLE IF NOT EXISTS crawlers (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (tbl TEXT NOT NULL, uri TEXT NOT NULL, etag TEXT, size INTEGER,
    partition TEXT, batch TEXT NOT NULL, state TEXT NOT NULL, rows INTEGER,
    PRIMARY KEY (tbl, uri));
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, tbl TEXT NOT NULL, run TEXT,
    state TEXT NOT NULL);
"""


@dataclass(frozen=True)
class KnownFile:
    """A file the record holds for a table."""

    uri: str
    etag: str
    size: int
    partition: str
    rows: int | None


@dataclass(frozen=True)
class RunRow:
    """One run of a crawler as recorded."""

    id: str
    crawler: str
    path: str
    started: datetime
    finished: datetime | None
    state: str
    report: dict[str, Any] | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        return (self.finished - self.started).total_seconds() if self.finished else None


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


class CrawlRecord:
    """The record of one home's crawls (safe to open from several processes)."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.home_dir / "crawl" / "record.sqlite"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            with db:  # one transaction: committed whole, or rolled back
                yield db
        finally:
            db.close()

    # Crawlers and runs
    def remember(self, name: str, spec: dict[str, Any]) -> None:
        """Keep an ad hoc crawler's definition, so `lakehouse crawlers` lists it."""
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO crawlers VALUES (?, ?)", (name, json.dumps(spec)))

    def crawlers(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        with self._db() as db:
            rows = db.execute("SELECT name, spec FROM crawlers").fetchall()
        return {name: json.loads(spec) for name, spec in rows}

    def start_run(self, crawler: str, path: str) -> str:
        run = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]
        with self._db() as db:
            db.execute(
                "INSERT INTO runs (id, crawler, path, started, state) VALUES (?, ?, ?, ?, ?)",
                (run, crawler, path, time.time(), "RUNNING"),
            )
        return run

    def finish_run(self, run: str, state: str, report: dict[str, Any] | None,
                   error: str | None = None) -> None:  # fmt: skip
        with self._db() as db:
            db.execute(
                "UPDATE runs SET finished = ?, state = ?, report = ?, error = ? WHERE id = ?",
                (time.time(), state, json.dumps(report) if report else None, error, run),
            )

    def runs(self, crawler: str, limit: int = 20) -> list[RunRow]:
        """The crawler's runs, newest first. A RUNNING run of a process that was killed
        stays RUNNING until the next run of the crawler marks it INTERRUPTED."""
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT id, crawler, path, started, finished, state, report, error FROM runs "
                "WHERE crawler = ? ORDER BY started DESC LIMIT ?",
                (crawler, limit),
            ).fetchall()
        return [
            RunRow(
                r[0],
                r[1],
                r[2],
                _moment(r[3]) or datetime.now(UTC),
                _moment(r[4]),
                r[5],
                json.loads(r[6]) if r[6] else None,
                r[7],
            )
            for r in rows
        ]

    def last_start(self, crawler: str) -> datetime | None:
        last = self.runs(crawler, limit=1)
        return last[0].started if last else None

    def interrupt_stale(self, crawler: str) -> None:
        """Mark runs left RUNNING (their process was killed) as INTERRUPTED."""
        with self._db() as db:
            db.execute(
                "UPDATE runs SET state = 'INTERRUPTED', error = 'the crawl process ended "
                "before the run finished (killed?); the next run resumed it' "
                "WHERE crawler = ? AND state = 'RUNNING'",
                (crawler,),
            )

    # Files and batches
    def known(self, table: str) -> dict[str, KnownFile]:
        """The files added to ``table`` by uri (pending batches are not yet added)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT uri, etag, size, partition, rows FROM files WHERE tbl = ? AND state = 'added'",
                (table,),
            ).fetchall()
        return {r[0]: KnownFile(r[0], r[1] or "", r[2] or 0, r[3] or "", r[4]) for r in rows}

    def tables_under(self, path: str) -> dict[str, list[tuple[str, str]]]:
        """{table: [(uri, partition path)]} of the added files under ``path``."""
        if not self.path.exists():
            return {}
        with self._db() as db:
            rows = db.execute(
                "SELECT tbl, uri, partition FROM files WHERE state = 'added' AND "
                "substr(uri, 1, length(?)) = ? ORDER BY tbl, uri",
                (path, path),
            ).fetchall()
        found: dict[str, list[tuple[str, str]]] = {}
        for table, uri, partition in rows:
            found.setdefault(table, []).append((uri, partition or ""))
        return found

    def begin_batch(self, table: str, run: str,
                    files: Iterable[tuple[str, str, int, str, int | None]]) -> str:  # fmt: skip
        """Write (uri, etag, size, partition, rows) as pending for ``table``; the batch id."""
        batch = uuid.uuid4().hex
        with self._db() as db:
            db.execute("INSERT INTO batches VALUES (?, ?, ?, 'pending')", (batch, table, run))
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                [
                    (table, uri, etag, size, part, batch, rows)
                    for uri, etag, size, part, rows in files
                ],
            )
        return batch

    def end_batch(self, batch: str, landed: bool) -> None:
        """The batch's commit landed (its files are added) or did not (forgotten)."""
        with self._db() as db:
            if landed:
                db.execute("UPDATE files SET state = 'added' WHERE batch = ?", (batch,))
                db.execute("UPDATE batches SET state = 'added' WHERE id = ?", (batch,))
            else:
                db.execute("DELETE FROM files WHERE batch = ? AND state = 'pending'", (batch,))
                db.execute("DELETE FROM batches WHERE id = ?", (batch,))

    def pending(self, table: str) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id FROM batches WHERE tbl = ? AND state = 'pending'", (table,)
            ).fetchall()
        return [r[0] for r in rows]

    def forget(self, table: str, uris: Iterable[str]) -> None:
        """Drop files removed from ``table`` (deleted at the source) from the record."""
        with self._db() as db:
            db.executemany("DELETE FROM files WHERE tbl = ? AND uri = ?",
                           [(table, uri) for uri in uris])  # fmt: skip

    def forget_table(self, table: str) -> None:
        """Forget every file of a table that no longer exists (dropped by its user)."""
        with self._db() as db:
            db.execute("DELETE FROM files WHERE tbl = ?", (table,))
            db.execute("DELETE FROM batches WHERE tbl = ?", (table,))
