"""One crawl run: list the prefix, crawl each dataset, record and report the run.

A run registers what it can and reports the rest: a file that cannot be read,
clashes with its table or does not fit its folder layout is listed with the
reason and left out (nothing of it reaches the catalog), and the run's state
is PARTIAL. A run that cannot start (no bucket, nothing under the prefix, the
catalog down) raises CrawlError (or ServiceUnavailableError) and is recorded
FAILED. Runs of one crawler never overlap: a second one waits for the first.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from filelock import FileLock, Timeout

from lakehouse.config import Settings
from lakehouse.crawl.dataset import Context, TableReport, crawl_dataset
from lakehouse.crawl.discover import (
    FileProblem,
    group,
    list_objects,
    nothing_under,
    table_name,
    vanished,
)
from lakehouse.crawl.record import CrawlRecord
from lakehouse.crawl.spec import CrawlerSpec, declared_crawlers, default_name, make_spec
from lakehouse.errors import CrawlError, LakehouseError

LOCK_WAIT_SECONDS = 600


@dataclass
class CrawlReport:
    """What one run found and did. ``failures``: files left out, each with its reason."""

    crawler: str
    run_id: str
    path: str
    namespace: str
    seconds: float = 0.0
    files_seen: int = 0
    tables: list[TableReport] = field(default_factory=list)
    failures: list[FileProblem] = field(default_factory=list)

    @property
    def state(self) -> str:
        """SUCCEEDED, or PARTIAL when some file or table failed."""
        failed = self.failures or any(t.error for t in self.tables)
        return "PARTIAL" if failed else "SUCCEEDED"

    @property
    def files_added(self) -> int:
        return sum(t.files_added for t in self.tables)

    @property
    def rows_added(self) -> int:
        return sum(t.rows_added for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, plus state and totals."""
        data = asdict(self)
        data.update(state=self.state, files_added=self.files_added, rows_added=self.rows_added)
        return data


def crawl(settings: Settings, path: str | None = None, namespace: str | None = None,
          name: str | None = None) -> CrawlReport:  # fmt: skip
    """Crawl ``path`` (s3://BUCKET/PREFIX) into ``namespace`` (default: the bucket's name).

    ``name`` picks a declared crawler (then ``path`` and ``namespace``, if given, must
    match its own) or names this ad hoc crawler (default: from the path). Raises
    CrawlError when the crawl cannot start; file-level problems are in the report.
    """
    declared = declared_crawlers()
    if name is not None and name in declared:
        spec = declared[name]
        if (path and path.rstrip("/") != spec.path.rstrip("/")) or (
            namespace and namespace != spec.namespace
        ):
            raise CrawlError(
                f"Crawler {name} is declared in lakehouse.toml with path {spec.path} and "
                f"namespace {spec.namespace}; this crawl asked for {path} into {namespace}.",
                hint=f"Run `lakehouse crawl --name {name}` alone, or pick another --name.",
            )
    elif path is None:
        raise CrawlError(
            f"No crawler {name!r} is declared and no s3:// path was given.",
            hint="Pass s3://BUCKET/PREFIX, or declare [crawlers.NAME] in lakehouse.toml.",
        )
    else:
        spec = make_spec("the command line", name=name or default_name(path), path=path,
                         namespace=namespace)  # fmt: skip
        CrawlRecord(settings).remember(spec.name, spec.model_dump())
    return run_crawler(settings, spec)


def run_crawler(settings: Settings, spec: CrawlerSpec) -> CrawlReport:
    """Run ``spec`` once (waiting for a run of it already going); record and return it."""
    record = CrawlRecord(settings)
    lock = FileLock(str(record.path.parent / f"{spec.name}.lock"))
    record.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(timeout=LOCK_WAIT_SECONDS)
    except Timeout as exc:
        raise CrawlError(
            f"Crawler {spec.name} is still running after {LOCK_WAIT_SECONDS} s of waiting.",
            hint="Wait for it to finish (`lakehouse crawler show NAME`), then crawl again.",
        ) from exc
    try:
        record.interrupt_stale(spec.name)
        return _recorded_run(settings, spec, record)
    finally:
        lock.release()


def _recorded_run(settings: Settings, spec: CrawlerSpec, record: CrawlRecord) -> CrawlReport:
    run = record.start_run(spec.name, spec.path)
    started = time.monotonic()
    try:
        report = _run(settings, spec, record, run)
    except LakehouseError as exc:
        record.finish_run(run, "FAILED", None, str(exc))
        raise
    except BaseException as exc:
        record.finish_run(run, "FAILED", None, f"stopped: {exc!r}")
        raise
    report.seconds = round(time.monotonic() - started, 3)
    record.finish_run(run, report.state, report.as_dict())
    return report


def _run(settings: Settings, spec: CrawlerSpec, record: CrawlRecord, run: str) -> CrawlReport:
    from lakehouse.lake.catalog import open_catalog

    namespace = spec.namespace or table_name(spec.bucket)
    report = CrawlReport(spec.name, run, spec.path, namespace)
    files = list_objects(settings, spec.bucket, spec.prefix)
    report.files_seen = len(files)
    datasets, problems = group(files, spec.bucket, spec.prefix)
    report.failures += problems
    where = f"s3://{spec.bucket}/{spec.prefix}"
    present = {f"{namespace}.{d.table}" for d in datasets}
    for table, known in record.tables_under(where).items():
        if table.split(".", 1)[0] == namespace and table not in present:
            datasets.append(vanished(table, known))  # every file gone: handle the deletions
    if not datasets:
        raise nothing_under(where)
    ctx = Context(settings, spec, open_catalog(settings), record, run, namespace)
    for dataset in datasets:
        report.tables.append(crawl_dataset(ctx, dataset))
    report.failures += ctx.failures
    return report
