"""The sample's landing zone: raw clickstream as Firehose lands it, and its crawler.

``land_clickstream`` writes gzipped JSON Lines under
``s3://landing/clickstream/dt=YYYY-MM-DD/`` with Firehose-style object names
(``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<id>.gz``), deterministic for a
day and a seed; ``load_landing_sample`` lands the sample's days (when absent)
and runs the crawler declared for them (``[crawlers.landing_clickstream]`` in
the repository's lakehouse.toml; the same definition when none is declared),
which registers them as ``landing.clickstream``.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta

from lakehouse.config import Settings
from lakehouse.crawl.spec import CrawlerSpec

LANDING_BUCKET = "landing"
CLICKSTREAM_PREFIX = "clickstream/"
SAMPLE_DAYS = (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3))
FILES_PER_DAY = 2
EVENTS_PER_FILE = 150
STREAM = "lakehouse-clickstream"
SAMPLE_CRAWLER = CrawlerSpec(
    name="landing_clickstream",
    path=f"s3://{LANDING_BUCKET}/{CLICKSTREAM_PREFIX}",
    namespace="landing",
    schedule="rate(15 minutes)",
)
EVENT_TYPES = ("page_view", "page_view", "page_view", "product_view", "add_to_cart", "purchase")
PAGES = ("/", "/search", "/product", "/cart", "/checkout")
DEVICES = ("desktop", "mobile", "tablet")
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT")


def _events(day: date, part: int, count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(f"{seed}-{day.isoformat()}-{part}")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=part * 12)
    events = []
    for _ in range(count):
        moment = start + timedelta(seconds=rng.randrange(12 * 3600))
        events.append({
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "event_time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "session_id": f"s-{rng.randrange(10_000):05d}",
            "customer_id": rng.randrange(1, 500),
            "event_type": rng.choice(EVENT_TYPES),
            "page": rng.choice(PAGES),
            "device": rng.choice(DEVICES),
            "country": rng.choice(COUNTRIES),
        })  # fmt: skip
    return sorted(events, key=lambda e: str(e["event_time"]))


def _object_name(day: date, part: int, seed: int) -> str:
    moment = datetime(day.year, day.month, day.day, part * 12, tzinfo=UTC)
    token = uuid.UUID(int=random.Random(f"{seed}-{day}-{part}-name").getrandbits(128))
    stamp = moment.strftime("%Y-%m-%d-%H-%M-%S")
    return f"{CLICKSTREAM_PREFIX}dt={day.isoformat()}/{STREAM}-1-{stamp}-{token}.gz"


def land_clickstream(settings: Settings, day: date, files: int = FILES_PER_DAY,
                     events: int = EVENTS_PER_FILE, seed: int = 42) -> list[str]:  # fmt: skip
    """Land one day of raw clickstream (``files`` gzipped JSON Lines objects of ``events``
    events each, creating the landing bucket if needed); the s3:// URIs written."""
    from lakehouse.services.s3 import s3_client

    client = s3_client(settings.s3_endpoint, settings.access_key, settings.secret_key,
                       settings.region)  # fmt: skip
    if not client.bucket_exists(LANDING_BUCKET):
        client.make_bucket(LANDING_BUCKET)
    written = []
    for part in range(files):
        lines = "".join(json.dumps(e) + "\n" for e in _events(day, part, events, seed))
        body = gzip.compress(lines.encode(), mtime=0)
        name = _object_name(day, part, seed)
        client.put_object(LANDING_BUCKET, name, io.BytesIO(body), len(body),
                          content_type="application/octet-stream")  # fmt: skip
        written.append(f"s3://{LANDING_BUCKET}/{name}")
    return written


def sample_crawler() -> CrawlerSpec:
    """The crawler declared for the landing clickstream, else the built-in definition."""
    from lakehouse.crawl.spec import declared_crawlers

    for spec in declared_crawlers().values():
        if spec.path.rstrip("/") == SAMPLE_CRAWLER.path.rstrip("/"):
            return spec
    return SAMPLE_CRAWLER


def landed(settings: Settings) -> bool:
    """Whether the landing zone already holds the sample's clickstream."""
    from lakehouse.services.s3 import s3_client

    client = s3_client(settings.s3_endpoint, settings.access_key, settings.secret_key,
                       settings.region)  # fmt: skip
    if not client.bucket_exists(LANDING_BUCKET):
        return False
    return any(True for _ in client.list_objects(LANDING_BUCKET, prefix=CLICKSTREAM_PREFIX))


def load_landing_sample(settings: Settings, force: bool = False) -> tuple[int, int]:
    """Land the sample days (when the landing zone has none, or ``force``) and crawl them;
    (files landed, rows the crawl added). Raises CrawlError when the crawl cannot run."""
    from lakehouse.crawl.record import CrawlRecord
    from lakehouse.crawl.run import run_crawler

    spec = sample_crawler()
    CrawlRecord(settings).remember(spec.name, spec.model_dump())  # listed even if not declared
    count = 0
    if force or not landed(settings):
        count = sum(len(land_clickstream(settings, day)) for day in SAMPLE_DAYS)
    report = run_crawler(settings, spec)
    return count, report.rows_added
