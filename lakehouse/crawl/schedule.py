"""Declared crawlers' schedules, and running the ones that are due.

A schedule is Glue's ``rate(N minutes|hours|days)``, a cron expression of five
fields (``*/15 * * * *``, parsed by croniter), or Glue's ``cron(...)`` form of
six fields (its ``?`` and year ``*`` are accepted). Times are UTC. A crawler is
due when its next run time after its last run's start has come; a crawler that
never ran is due at once.
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from lakehouse.config import Settings

RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.I)
GLUE_CRON = re.compile(r"^cron\((.*)\)$", re.I)
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _cron_fields(text: str) -> str:
    """A five-field cron expression from ``text`` (Glue's six-field cron(...) too)."""
    glue = GLUE_CRON.fullmatch(text.strip())
    if not glue:
        return text.strip()
    fields = glue.group(1).split()
    if len(fields) == 6:
        if fields[5] not in ("*", "?"):
            raise ValueError(f"schedule {text!r}: a year other than * is not supported")
        fields = fields[:5]
    return " ".join("*" if f == "?" else f for f in fields)


def parse_schedule(text: str) -> timedelta | str:
    """A rate as a timedelta, or a five-field cron expression; ValueError saying why not."""
    rate = RATE.fullmatch(text.strip())
    if rate:
        count = int(rate.group(1))
        if count < 1:
            raise ValueError(f"schedule {text!r}: the rate must be at least 1")
        return timedelta(seconds=count * UNIT_SECONDS[rate.group(2).lower().rstrip("s")])
    from croniter import croniter

    expression = _cron_fields(text)
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(
            f"schedule {text!r} is neither rate(N minutes|hours|days) nor a cron expression "
            "of five fields (e.g. '*/15 * * * *')"
        )
    return expression


def next_run(schedule: str, after: datetime) -> datetime:
    """The first run time of ``schedule`` strictly after ``after`` (UTC)."""
    parsed = parse_schedule(schedule)
    if isinstance(parsed, timedelta):
        return after + parsed
    from croniter import croniter

    found: datetime = croniter(parsed, after.astimezone(UTC)).get_next(datetime)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def is_due(schedule: str, last_start: datetime | None, now: datetime) -> bool:
    """Whether a crawler last started at ``last_start`` (None: never) is due at ``now``."""
    return last_start is None or next_run(schedule, last_start) <= now


def run_due(settings: Settings, now: datetime) -> list[str]:
    """Run every declared crawler whose schedule is due at ``now``; the names that ran.

    A crawler that fails is recorded as a failed run (see ``lakehouse crawler show``)
    and does not stop the others. Raises CrawlError only for a crawler declaration
    that is not valid.
    """
    from lakehouse.crawl.record import CrawlRecord
    from lakehouse.crawl.run import run_crawler
    from lakehouse.crawl.spec import declared_crawlers
    from lakehouse.errors import LakehouseError

    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    record = CrawlRecord(settings)
    ran = []
    for name, spec in sorted(declared_crawlers().items()):
        if spec.schedule is None or not is_due(spec.schedule, record.last_start(name), now):
            continue
        with suppress(LakehouseError):  # the run, with its error, is in the record
            run_crawler(settings, spec)
        ran.append(name)
    return ran
