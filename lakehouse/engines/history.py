"""The user's query history: what `lakehouse query` and the console ran.

Recording happens in those callers (:func:`run_recorded`), not in
``Lakehouse.sql``: the library's ``sql`` is also the hot path of programs
(training, notebooks, benchmarks, scripts of thousands of statements), whose
queries are not the user's history and should not pay a file write each, nor
fail because the home is read-only.

The history is one JSON-lines file, ``<home>/queries/history.jsonl``, newest
last, holding at most ``HISTORY_LIMIT`` entries. Each entry names the principal
that ran it: with governance on, a principal other than the admin sees only its
own entries (another's SQL text can hold table names and literals it may not
see), and the admin sees everyone's (:func:`viewer_filter`). Every write rewrites the file
under a file lock and replaces it atomically, so two processes (the CLI and the
console) never lose each other's entries and a reader never sees half a line.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.client import Lakehouse
    from lakehouse.config import Settings

log = logging.getLogger(__name__)
HISTORY_LIMIT = 500
# A longer query is kept cut to this many characters and marked ``text_cut``
# (500 whole 1 MiB scripts would make every write rewrite half a gigabyte).
TEXT_LIMIT = 100_000
LOCK_SECONDS = 10.0


@dataclass(frozen=True)
class QueryRecord:
    """One query as it ran.

    ``started_at`` is epoch seconds; ``seconds`` the wall time; ``rows`` the
    result's rows (None when it failed); ``error`` the error's message and
    ``hint`` its hint (both "" when it succeeded); ``text_cut`` says ``text``
    holds only the first ``TEXT_LIMIT`` characters. ``as_of`` (the snapshot id
    or timestamp read, "" for the current one) and ``native`` are the options
    it ran with, so running it again gives the same answer.
    """

    text: str
    engine: str
    started_at: float
    seconds: float
    rows: int | None
    error: str = ""
    hint: str = ""
    text_cut: bool = False
    as_of: str = ""
    native: bool = False
    principal: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def started(self) -> datetime:
        """``started_at`` as a local, timezone-aware time."""
        return datetime.fromtimestamp(self.started_at).astimezone()


class QueryHistory:
    """Reads and appends to ``<home>/queries/history.jsonl`` (newest ``limit`` kept)."""

    def __init__(self, settings: Settings, limit: int = HISTORY_LIMIT) -> None:
        self.path = settings.home_dir / "queries" / "history.jsonl"
        self.limit = limit

    def record(self, entry: QueryRecord) -> None:
        """Append ``entry``, dropping the oldest beyond the limit, atomically.

        Raises LakehouseError when the home cannot be written.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=LOCK_SECONDS):
                lines = self._lines()[-(self.limit - 1) :] if self.limit > 1 else []
                lines.append(json.dumps(asdict(entry), ensure_ascii=False))
                staging = self.path.with_suffix(f".{os.getpid()}.tmp")
                staging.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                os.replace(staging, self.path)
        except OSError as exc:  # filelock's Timeout is an OSError too
            raise LakehouseError(
                f"Could not record the query in {self.path}: {exc}",
                hint="Check that the lake house home is writable (see `lakehouse env`).",
            ) from exc

    def entries(self, limit: int | None = None, only: str | None = None) -> list[QueryRecord]:
        """The newest ``limit`` entries (all when None), newest first; with ``only``,
        just the entries that principal ran (see :func:`viewer_filter`).

        A line that is not a record (written by hand, another version) is
        skipped with a warning in the log.
        """
        records = []
        for number, line in enumerate(self._lines(), start=1):
            record = _parse(line)
            if record is None:
                log.warning("%s line %d is not a query record; skipped", self.path, number)
                continue
            if only is None or record.principal == only:
                records.append(record)
        records.reverse()
        return records if limit is None else records[:limit]

    def clear(self, only: str | None = None) -> int:
        """Remove every entry (with ``only``, just that principal's); returns how many."""
        with FileLock(str(self.path) + ".lock", timeout=LOCK_SECONDS):
            lines = self._lines()
            if only is None:
                self.path.unlink(missing_ok=True)
                return len(lines)
            kept = [line for line in lines if (_parse(line) or _NOBODY).principal != only]
            staging = self.path.with_suffix(f".{os.getpid()}.tmp")
            staging.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(staging, self.path)
        return len(lines) - len(kept)

    def _lines(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]


def viewer_filter(settings: Settings, principal: str | None = None) -> str | None:
    """Whose entries ``principal`` (default: the settings' acting principal) sees:
    None for everyone's (governance off, or the governance admin or a member of its
    role), else its own name. A policy that cannot be read counts as governed."""
    who = settings.acting_principal(principal)
    if not settings.governance_enabled:
        return None
    from lakehouse.governance.store import load_policy

    try:
        return None if load_policy(settings).is_admin(who, settings.governance_admin) else who
    except LakehouseError:
        return who


def _parse(line: str) -> QueryRecord | None:
    try:
        data: dict[str, Any] = json.loads(line)
        known = set(QueryRecord.__dataclass_fields__)
        return QueryRecord(**{k: v for k, v in data.items() if k in known})
    except (ValueError, TypeError, AttributeError):  # not JSON, not an object, wrong fields
        return None


_NOBODY = QueryRecord(text="", engine="", started_at=0.0, seconds=0.0, rows=None)


def run_recorded(
    lake: Lakehouse, query: str, engine: str = "duckdb", history: QueryHistory | None = None,
    **options: Any,
) -> pa.Table:  # fmt: skip
    """``lake.sql(query, engine, **options)``, recorded in the history whether it
    succeeds or fails (a LakehouseError is recorded with its hint, then raised).

    A failure to write the history is logged, never raised: the query's own
    result or error is what the caller asked for.
    """
    history = history or QueryHistory(lake.settings)
    started, clock = time.time(), time.monotonic()
    as_of = "" if options.get("as_of") is None else str(options["as_of"])
    native = bool(options.get("native"))
    who = lake.settings.acting_principal(options.get("principal"))
    try:
        result = lake.sql(query, engine=engine, **options)
    except LakehouseError as exc:
        entry = _entry(query, engine, started, clock, None, exc)
        _record_quietly(history, replace(entry, as_of=as_of, native=native, principal=who))
        raise
    entry = _entry(query, engine, started, clock, result.num_rows, None)
    _record_quietly(history, replace(entry, as_of=as_of, native=native, principal=who))
    return result


def _entry(
    query: str, engine: str, started: float, clock: float, rows: int | None,
    error: LakehouseError | None,
) -> QueryRecord:  # fmt: skip
    return QueryRecord(
        text=query[:TEXT_LIMIT],
        engine=engine,
        started_at=started,
        seconds=round(time.monotonic() - clock, 6),
        rows=rows,
        error=error.message if error else "",
        hint=(error.hint or "") if error else "",
        text_cut=len(query) > TEXT_LIMIT,
    )


def _record_quietly(history: QueryHistory, entry: QueryRecord) -> None:
    try:
        history.record(entry)
    except LakehouseError as exc:
        log.warning("%s", exc)
