"""The crawlers there are (declared and ad hoc) and their runs, for listings."""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.config import Settings
from lakehouse.crawl.record import CrawlRecord, RunRow
from lakehouse.crawl.spec import CrawlerSpec, declared_crawlers, make_spec
from lakehouse.errors import CrawlError


@dataclass(frozen=True)
class CrawlerState:
    """A crawler, where it came from, and its last run (None: never ran)."""

    spec: CrawlerSpec
    declared: bool
    last_run: RunRow | None

    @property
    def next_run(self) -> str:
        """When the scheduler runs it next (ISO 8601 UTC), 'now', or '' without schedule."""
        if self.spec.schedule is None:
            return ""
        if self.last_run is None:
            return "now"
        from lakehouse.crawl.schedule import next_run

        return next_run(self.spec.schedule, self.last_run.started).isoformat(timespec="seconds")


def crawlers(settings: Settings) -> list[CrawlerState]:
    """Every crawler by name: those declared in lakehouse.toml, then those run ad hoc."""
    record = CrawlRecord(settings)
    specs = {name: (spec, True) for name, spec in declared_crawlers().items()}
    for name, fields in record.crawlers().items():
        if name not in specs:
            specs[name] = (make_spec(str(record.path), **fields), False)
    states = []
    for name, (spec, declared) in sorted(specs.items()):
        last = record.runs(name, limit=1)
        states.append(CrawlerState(spec, declared, last[0] if last else None))
    return states


def crawler_runs(settings: Settings, name: str, limit: int = 20
                 ) -> tuple[CrawlerState, list[RunRow]]:  # fmt: skip
    """The crawler ``name`` and its last ``limit`` runs, newest first; CrawlError if unknown."""
    found = {state.spec.name: state for state in crawlers(settings)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none yet"
        raise CrawlError(
            f"No crawler named {name!r} (crawlers: {known}).",
            hint="`lakehouse crawlers` lists them; declare one in lakehouse.toml or run "
            "`lakehouse crawl s3://BUCKET/PREFIX --name NAME`.",
        )
    return found[name], CrawlRecord(settings).runs(name, limit)
