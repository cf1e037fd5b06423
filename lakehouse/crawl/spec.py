"""What a crawler is: a name, an s3:// path, a namespace, policies and a schedule.

Crawlers are declared in ``lakehouse.toml`` as ``[crawlers.NAME]`` tables::

    [crawlers.landing_clickstream]
    path = "s3://landing/clickstream/"
    namespace = "landing"
    schema_change = "update"      # update | log | fail (Glue: UPDATE_IN_DATABASE, LOG, FAIL)
    deleted_files = "log"         # log | delete         (Glue: LOG, DELETE_FROM_DATABASE)
    schedule = "rate(15 minutes)" # or a cron expression "*/15 * * * *"; optional

or run ad hoc (``lakehouse crawl s3://...``), which the crawl record remembers.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from lakehouse.errors import CrawlError

SchemaChange = Literal["update", "log", "fail"]
DeletedFiles = Literal["log", "delete"]
# Glue's policy names, accepted as spelled in Glue's API.
GLUE_NAMES = {
    "update_in_database": "update",
    "delete_from_database": "delete",
    "deprecate_in_database": "log",
}
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class CrawlerSpec(BaseModel):
    """One crawler: what it reads, where it registers, and what it does on change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    path: str
    namespace: str | None = None
    schema_change: SchemaChange = "update"
    deleted_files: DeletedFiles = "log"
    schedule: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(
                f"crawler name {value!r} must be lower-case letters, digits, '_' or '-' "
                "(at most 64, starting with a letter)"
            )
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ValueError(f"path {value!r} is not an s3://BUCKET/PREFIX URI")
        return value

    @field_validator("schema_change", "deleted_files", mode="before")
    @classmethod
    def _glue_spelling(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return GLUE_NAMES.get(lowered, lowered)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            from lakehouse.crawl.schedule import parse_schedule

            parse_schedule(value)  # raises ValueError with the reason
        return value

    @property
    def bucket(self) -> str:
        return self.path.removeprefix("s3://").split("/", 1)[0]

    @property
    def prefix(self) -> str:
        """The key prefix under the bucket, '' or ending in '/'."""
        rest = self.path.removeprefix("s3://").split("/", 1)
        prefix = rest[1] if len(rest) > 1 else ""
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def default_name(path: str) -> str:
    """The name of an ad hoc crawl of ``path``: its bucket and prefix, slugged."""
    slug = re.sub(r"[^a-z0-9]+", "_", path.removeprefix("s3://").lower()).strip("_")
    return ("crawl_" + slug)[:64].rstrip("_")


def make_spec(origin: str, **fields: Any) -> CrawlerSpec:
    """A CrawlerSpec from ``fields``; CrawlError naming ``origin`` and each bad field."""
    try:
        return CrawlerSpec(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'crawler'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise CrawlError(
            f"Crawler {fields.get('name', '?')!r} in {origin} is not valid: {problems}.",
            hint="A crawler has path (s3://BUCKET/PREFIX), and optionally namespace, "
            "schema_change (update|log|fail), deleted_files (log|delete) and schedule "
            "('rate(15 minutes)' or a cron expression).",
        ) from None


def declared_crawlers() -> dict[str, CrawlerSpec]:
    """The ``[crawlers.NAME]`` tables of the config file in effect, by name."""
    from lakehouse.config import CONFIG_FILE_NAME, config_file_path, read_config_file

    origin = str(config_file_path() or CONFIG_FILE_NAME)
    section = read_config_file("crawlers")
    crawlers = {}
    for name, fields in section.items():
        if not isinstance(fields, dict):
            raise CrawlError(
                f"[crawlers] in {origin} holds {name} = {fields!r}, not a table.",
                hint='Declare each crawler as [crawlers.NAME] with path = "s3://...".',
            )
        crawlers[name] = make_spec(origin, name=name, **fields)
    return crawlers
